"""The numpy intent model scores exactly as the scikit-learn pipeline (and escalation head) it was exported from."""

import numpy as np
import pytest

from core.triage.classifier import (
    PIPELINE_CONFIG, Calibration, LexiconColumns, choose_escalation_threshold, choose_threshold, export, fit,
    lexicon_features, model_text, training_arrays,
)
from core.triage.dataset import is_held_out
from connectors.model_store import training_rows

EDGE_TEXTS = [
    "", "   ", "a", "ok", "Hej", "Kan I   forny min\tmedicin?\n\nMvh", "SØREN æøå ÆØÅ soeren",
    "Zopiklon 7,5 mg – 2×dagligt!!", "https://example.dk/min-side?x=1", "x" * 40, "émigré naïve café",
    model_text("Svimmel efter Oxynorm", "Kan jeg tage losartan og ibuprofen? Jeg har feber"), "\x1f", "a \x1f b",
]


@pytest.fixture(scope="module")
def fitted():
    rows = [r for r in training_rows() if not is_held_out(r.id)][:400]
    texts, labels, escalate = training_arrays(rows)
    fitted = fit(texts, labels, escalate)
    model = export(fitted, Calibration(temperature=0.7, threshold=0.3, escalation_threshold=0.1), version="test")
    return fitted.pipeline, model, texts, fitted.head


def test_the_default_pipeline_has_lexicon_columns(fitted):
    pipeline, model, *_ = fitted
    assert PIPELINE_CONFIG["lexicon"] and model.lexicon is not None
    assert model.coef.shape[1] == sum(len(b.idf) for b in model.features) + 2 * len(model.lexicon.names)
    assert isinstance(pipeline.named_steps["features"].transformer_list[-1][1], LexiconColumns)


def test_subject_end_is_invisible_to_tfidf(fitted):
    pipeline, model, *_ = fitted
    for block in (0, 1):
        analyzer = pipeline.named_steps["features"].transformer_list[block][1].build_analyzer()
        assert analyzer(model_text("Refill", "my losartan")) == analyzer("Refill Refill my losartan")


def test_lexicon_columns_separate_subject_and_body():
    features = lexicon_features(PIPELINE_CONFIG["lexicon"]["weight"])
    names = features.names
    medicine = names.index("medicine_names")
    in_subject = set(features.columns(model_text("Oxynorm", "Hej, kan I hjælpe?")))
    in_body = set(features.columns(model_text("Hej", "Jeg mangler mine Oxynorm tabletter")))
    assert medicine in in_subject and medicine + len(names) not in in_subject
    assert medicine + len(names) in in_body and medicine not in in_body
    assert features.columns("").size == 0
    row = features.dense(model_text("", "losartanen og metoprolol"))
    assert set(np.flatnonzero(row)) == set(features.columns(model_text("", "losartanen og metoprolol")))
    np.testing.assert_allclose(row[row > 0], features.weight, rtol=1e-6)


@pytest.mark.parametrize("block", [0, 1], ids=["char_wb", "word"])
def test_terms_are_scikit_learns_analyzer_output(fitted, block):
    pipeline, model, texts, _ = fitted
    analyzer = pipeline.named_steps["features"].transformer_list[block][1].build_analyzer()
    for text in EDGE_TEXTS + texts[:50]:
        assert model.features[block].terms(text) == analyzer(text)


def test_decision_scores_match_the_pipeline(fitted):
    pipeline, model, texts, _ = fitted
    unseen = [model_text(r.subject, r.body) for r in training_rows()[400:700]]
    sample = EDGE_TEXTS + texts[:100] + unseen
    expected = pipeline.decision_function(sample)
    np.testing.assert_allclose(model.decision_function(sample), expected, rtol=1e-4, atol=1e-4)
    assert model.classes == tuple(pipeline.classes_)
    assert [v.top.value for v in model.predict(sample)] == list(pipeline.classes_[expected.argmax(axis=1)])


def test_probabilities_are_a_distribution(fitted):
    _, model, texts, _ = fitted
    probabilities = model.probabilities(texts[:20] + [""])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert (probabilities > 0).all()


def test_escalation_head_scores_match_scikit_learn(fitted):
    pipeline, model, texts, head = fitted
    assert PIPELINE_CONFIG["escalation_head"] and head is not None
    sample = EDGE_TEXTS + texts[:100] + [model_text(r.subject, r.body) for r in training_rows()[400:700]]
    expected = head.decision_function(pipeline.named_steps["features"].transform(sample))
    intent, scores = model.scores(sample)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(intent, model.decision_function(sample))
    views = model.predict(sample)
    assert [v.escalation_score for v in views] == pytest.approx(scores.tolist())
    assert model.escalation_threshold == 0.1


def test_a_model_without_head_gives_no_escalation_score():
    texts, labels, escalate = training_arrays(training_rows()[:200])
    plain = export(fit(texts, labels, escalate, {**PIPELINE_CONFIG, "escalation_head": None}),
                   Calibration(1.0, 0.0, None), version="plain")
    assert plain.escalation_coef is None and plain.scores(texts[:3])[1] is None
    assert all(v.escalation_score is None for v in plain.predict(texts[:3]))


def test_thresholds_spend_at_most_the_budget():
    rng = np.random.default_rng(0)
    scores, routine = rng.normal(size=1000), rng.random(1000) < 0.7
    for budget in (0.01, 0.04, 0.2):
        cut = choose_escalation_threshold(scores, routine, budget)
        assert (scores[routine] > cut).sum() <= budget * routine.sum()
        assert (scores[routine] >= cut).sum() == int(np.floor(budget * routine.sum())) + 1  # the highest such cut
        low = choose_threshold(scores, routine, budget)
        assert (scores[routine] < low).sum() <= budget * routine.sum()
    assert choose_escalation_threshold(scores, routine, 0.0) == float("inf")
    assert choose_threshold(scores, routine, 0.0) == 0.0  # a zero budget turns low confidence off
