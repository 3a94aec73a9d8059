"""The model artefact: versioned by data, config and scikit-learn; trained once and cached; split by id hash."""

import json

import numpy as np
import pytest

from connectors import model_store
from core.triage.classifier import PIPELINE_CONFIG
from core.triage.dataset import HELD_OUT_BUCKETS, TriageRow, is_held_out, load_split
from core.triage.engine import Triager


def _rows():
    return [TriageRow.model_validate({"id": f"r{i}", "language": "en", "from": "a@example.com", "subject": s,
                                      "body": b, "intent": intent, "escalate": intent == "clinical_question"})
            for i, (s, b, intent) in enumerate([
                ("Refill", "Please refill my metformin", "refill_request"),
                ("Refill", "Could you renew my statin", "refill_request"),
                ("Refill", "Need my inhaler refilled", "refill_request"),
                ("Hours", "When do you open on Saturday", "general_inquiry"),
                ("Hours", "Are you open on Sunday", "general_inquiry"),
                ("Hours", "What are your opening hours", "general_inquiry"),
                ("Question", "Can I take ibuprofen with warfarin", "clinical_question"),
                ("Question", "Is this rash a side effect", "clinical_question"),
                ("Question", "Can I drink alcohol on metronidazole", "clinical_question"),
            ])]


def test_split_is_deterministic_and_about_a_quarter():
    train, held_out = load_split()
    assert train and held_out and not {r.id for r in train} & {r.id for r in held_out}
    assert all(is_held_out(r.id) for r in held_out) and not any(is_held_out(r.id) for r in train)
    share = len(held_out) / (len(train) + len(held_out))
    assert abs(share - 1 / HELD_OUT_BUCKETS) < 0.08
    assert is_held_out("da-0001") == is_held_out("da-0001")


def test_version_depends_on_data_and_config():
    rows = _rows()
    assert model_store.model_version(rows) == model_store.model_version(list(reversed(rows)))
    assert model_store.model_version(rows) != model_store.model_version(rows[:-1])
    assert model_store.model_version(rows) != model_store.model_version(rows, {**PIPELINE_CONFIG, "seed": 8})
    head = {**PIPELINE_CONFIG["escalation_head"], "budget": 0.5}
    assert model_store.model_version(rows) != model_store.model_version(rows,
                                                                        {**PIPELINE_CONFIG, "escalation_head": head})


def test_the_artefact_format_is_part_of_the_version(monkeypatch):
    rows = _rows()
    before = model_store.model_version(rows)
    monkeypatch.setattr(model_store, "ARTEFACT_FORMAT", "numpy-tfidf-lexicon-linear-3")
    assert model_store.model_version(rows) != before  # artefacts without the head are retrained, never loaded


def test_training_rows_never_include_held_out():
    assert not any(is_held_out(r.id) for r in model_store.training_rows())


def test_save_load_round_trip_and_cached_model_is_reused(tmp_path, monkeypatch):
    rows = _rows()
    model, path = model_store.train_and_save(tmp_path, rows)
    assert path.name == f"triage-{model.version}.pickle" and path.exists()
    again = model_store.load(path)
    texts = ["please refill my statin", "is a rash normal"]
    assert [v.top for v in again.predict(texts)] == [v.top for v in model.predict(texts)]
    # The escalation head travels with the artefact: coefficients, intercept, threshold and so its scores.
    assert model.escalation_coef is not None and model.escalation_threshold is not None
    np.testing.assert_array_equal(again.escalation_coef, model.escalation_coef)
    assert (again.escalation_intercept, again.escalation_threshold) == (model.escalation_intercept,
                                                                        model.escalation_threshold)
    assert [v.escalation_score for v in again.predict(texts)] == [v.escalation_score for v in model.predict(texts)]
    assert again.metrics["escalation_threshold"] == model.escalation_threshold
    # So does the clinical-doubt threshold, a calibrated clinical_question probability.
    assert model.clinical_threshold is not None and 0.0 < model.clinical_threshold < 1.0
    assert again.clinical_threshold == model.clinical_threshold == model.metrics["clinical_threshold"]
    monkeypatch.setattr(model_store, "training_rows", lambda *a, **k: rows)
    monkeypatch.setattr(model_store, "train", lambda *a, **k: pytest.fail("retrained although cached"))
    assert model_store.load_or_train(tmp_path).version == model.version


def test_load_or_train_trains_when_missing(tmp_path, monkeypatch):
    rows = _rows()
    monkeypatch.setattr(model_store, "training_rows", lambda *a, **k: rows)
    model = model_store.load_or_train(tmp_path / "models")
    assert (tmp_path / "models" / f"triage-{model.version}.pickle").exists()
    assert 0.0 <= model.threshold <= 1.0 and model.temperature > 0


def test_triager_load_trains_into_rxinbox_home(tmp_path, monkeypatch):
    monkeypatch.setenv("RXINBOX_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RXINBOX_MODEL_CACHE", raising=False)  # the default place, not the test suite's shared cache
    monkeypatch.setattr(model_store, "training_rows", lambda *a, **k: _rows())
    triager = Triager.load()
    assert list((tmp_path / "home" / "models").glob("triage-*.pickle"))
    assert triager.version.startswith(triager.model.version)


def test_corrupt_artefact_is_rebuilt(tmp_path, monkeypatch):
    rows = _rows()
    monkeypatch.setattr(model_store, "training_rows", lambda *a, **k: rows)
    path = model_store.model_path(tmp_path, model_store.model_version(rows))
    path.write_bytes(b"not a model")
    assert model_store.load_or_train(tmp_path).version == model_store.model_version(rows)
    assert json.dumps(model_store.load(path).metrics)
