"""Intent classifier: char + word TF-IDF and lexicon columns, a linear model, temperature-calibrated on
out-of-fold scores, and a binary escalation head on the same features with an out-of-fold threshold."""

import functools
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sklearn
from scipy import sparse
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from core.triage.dataset import TriageRow
from core.triage.intent_model import (  # noqa: F401 (re-exported)
    PIPELINE_CONFIG, IntentModel, LexiconFeatures, TfidfFeatures, model_text,
)
from core.triage.lexicon import SUFFIXES, term_spellings
from core.triage.normalise import fold
from data_contracts.models import Intent
from policy_rules.loader import LEXICON_DIR, load_lexicons

log = logging.getLogger(__name__)


def lexicon_features(weight: float) -> LexiconFeatures:
    """The lexicon block over the policy's term lexicons as they are on disk now."""
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(LEXICON_DIR.glob("*.yaml")))
    return _lexicon_features(weight, stamp)


@functools.lru_cache(maxsize=4)
def _lexicon_features(weight: float, stamp: tuple) -> LexiconFeatures:
    """Built once per weight and state of the lexicon files (every fold of a cross-validation shares it)."""
    lexicons = [lex for lex in load_lexicons(LEXICON_DIR) if lex.kind != "negation"]
    forms: dict[str, set[str]] = defaultdict(set)
    singles: dict[str, set[int]] = defaultdict(set)
    phrases: dict[tuple[str, str], set[tuple[tuple[str, ...], int]]] = defaultdict(set)
    compounds: dict[str, set[int]] = defaultdict(set)
    for index, lex in enumerate(lexicons):
        for group in lex.groups:
            for term in group.terms:
                for words in term_spellings(term):
                    if len(words) == 1 and words[0].startswith("*"):
                        for ending in SUFFIXES[group.lang] | {""}:
                            compounds[words[0][1:] + ending].add(index)
                        continue
                    words = tuple(w if w == "*" else w.lstrip("*") for w in words)  # '*' alone: any word
                    for word in (w for w in words if w != "*"):
                        for ending in SUFFIXES[group.lang] | {""}:
                            forms[word + ending].add(word)
                    if len(words) == 1:
                        singles[words[0]].add(index)
                    else:
                        phrases[(words[0], words[1])].add((words[2:], index))
    return LexiconFeatures(
        names=tuple(lex.id for lex in lexicons), forms={k: tuple(sorted(v)) for k, v in forms.items()},
        singles={k: tuple(sorted(v)) for k, v in singles.items()},
        phrases={k: tuple(sorted(v)) for k, v in phrases.items()},
        compounds={k: tuple(sorted(v)) for k, v in compounds.items()}, weight=weight)


class LexiconColumns(BaseEstimator, TransformerMixin):
    """The lexicon block as a scikit-learn step: fixed columns (nothing to fit), made by the numpy code."""

    def __init__(self, weight: float = 0.1) -> None:
        self.weight = weight

    def fit(self, texts: Sequence[str], labels: Sequence[str] | None = None) -> "LexiconColumns":
        """Nothing is learnt from the rows: the lexicons are the prior knowledge."""
        self.features_ = lexicon_features(self.weight)
        return self

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """One 0/weight row per text."""
        return sparse.csr_matrix(np.vstack([self.features_.dense(t) for t in texts]))


def build_pipeline(config: dict = PIPELINE_CONFIG) -> Pipeline:
    """The untrained scikit-learn pipeline (features + linear model)."""
    char = {**config["char"], "ngram_range": tuple(config["char"]["ngram_range"])}
    word = {**config["word"], "ngram_range": tuple(config["word"]["ngram_range"])}
    blocks = [
        ("char", TfidfVectorizer(preprocessor=fold, dtype=np.float32, **char)),
        ("word", TfidfVectorizer(preprocessor=fold, dtype=np.float32, **word)),
    ]
    if config.get("lexicon"):
        blocks.append(("lexicon", LexiconColumns(config["lexicon"]["weight"])))
    features = FeatureUnion(blocks)
    if config.get("classifier", "logreg") == "svm":
        linear = LinearSVC(random_state=config["seed"], **config["svm"])
    else:
        linear = LogisticRegression(random_state=config["seed"], **config["logreg"])
    return Pipeline([("features", features), ("linear", linear)])


@dataclass(frozen=True)
class Fitted:
    """A fitted intent pipeline and the binary escalation head trained on its features (None: no head)."""

    pipeline: Pipeline
    head: LinearSVC | None

    def scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Intent decision scores and escalation-head scores, from one transform of the texts."""
        features = self.pipeline.named_steps["features"].transform(texts)
        head = self.head.decision_function(features) if self.head is not None else None
        return self.pipeline.named_steps["linear"].decision_function(features), head


def fit(texts: Sequence[str], labels: np.ndarray, escalate: np.ndarray, config: dict = PIPELINE_CONFIG) -> Fitted:
    """Fit the features once, then the intent model and the escalation head on the same feature rows."""
    pipeline = build_pipeline(config)
    features = pipeline.named_steps["features"].fit_transform(texts, labels)
    pipeline.named_steps["linear"].fit(features, labels)
    head_config = config.get("escalation_head")
    head = None
    if head_config:
        head = LinearSVC(random_state=config["seed"], **head_config["svm"]).fit(features, escalate)
    return Fitted(pipeline, head)


@dataclass(frozen=True)
class Calibration:
    """What out-of-fold scores decide: the temperature and the two thresholds that escalate."""

    temperature: float
    threshold: float                      # low confidence: top probability below this escalates
    escalation_threshold: float | None    # escalation head: a score above this escalates (None: no head)
    clinical_threshold: float | None = None  # clinical doubt: P(clinical_question) above this escalates


def export(fitted: Fitted, calibration: Calibration, version: str, **provenance) -> IntentModel:
    """The numpy-only artefact of a fitted pipeline: vocabularies, idf weights, the linear layer and the head."""
    blocks, lexicon = [], None
    for _, vectorizer in fitted.pipeline.named_steps["features"].transformer_list:
        if isinstance(vectorizer, LexiconColumns):
            lexicon = vectorizer.features_
            continue
        blocks.append(TfidfFeatures(
            analyzer=vectorizer.analyzer, ngram_range=tuple(vectorizer.ngram_range),
            vocabulary={term: int(i) for term, i in vectorizer.vocabulary_.items()},
            idf=vectorizer.idf_.astype(np.float32), token_pattern=vectorizer.token_pattern,
        ))
    linear, head = fitted.pipeline.named_steps["linear"], fitted.head
    return IntentModel(
        features=blocks, coef=np.asarray(linear.coef_, dtype=np.float64),
        intercept=np.asarray(linear.intercept_, dtype=np.float64), classes=tuple(str(c) for c in linear.classes_),
        temperature=calibration.temperature, threshold=calibration.threshold, version=version,
        sklearn_version=sklearn.__version__, lexicon=lexicon,
        escalation_coef=None if head is None else np.asarray(head.coef_[0], dtype=np.float64),
        escalation_intercept=0.0 if head is None else float(head.intercept_[0]),
        escalation_threshold=calibration.escalation_threshold, clinical_threshold=calibration.clinical_threshold,
        **provenance)


def fit_temperature(scores: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    """The temperature that minimises the log loss of out-of-fold scores (Guo et al. 2017)."""
    index = np.searchsorted(classes, labels)

    def loss(log_t: float) -> float:
        return -float(np.mean(log_softmax(scores / np.exp(log_t), axis=1)[np.arange(len(index)), index]))

    return float(np.exp(minimize_scalar(loss, bounds=(-4.0, 4.0), method="bounded").x))


def choose_threshold(top_probabilities: np.ndarray, routine: np.ndarray, budget: float) -> float:
    """The highest threshold that flags at most `budget` of the routine messages as low confidence (0: none)."""
    routine_top = np.sort(top_probabilities[routine])
    if routine_top.size == 0 or budget <= 0:  # a zero budget turns low-confidence escalation off
        return 0.0
    allowed = int(np.floor(budget * routine_top.size))
    return float(routine_top[allowed]) if allowed < routine_top.size else 1.0


def choose_escalation_threshold(scores: np.ndarray, routine: np.ndarray, budget: float) -> float:
    """The lowest head score above which at most `budget` of the routine messages lie."""
    routine_scores = np.sort(scores[routine])[::-1]
    if routine_scores.size == 0 or budget <= 0:  # nothing to spend: the head never escalates
        return float("inf")
    allowed = int(np.floor(budget * routine_scores.size))
    return float(routine_scores[allowed]) if allowed < routine_scores.size else float("-inf")


def cv_splitter(labels: np.ndarray, config: dict = PIPELINE_CONFIG) -> StratifiedKFold:
    """The folds calibration is fitted on: as many as the rarest intent allows, at most `cv_folds`."""
    classes = np.unique(labels)
    folds = min(config["cv_folds"], int(np.bincount(np.searchsorted(classes, labels)).min()))
    return StratifiedKFold(max(folds, 2), shuffle=True, random_state=config["seed"])


def training_arrays(rows: Sequence[TriageRow],
                    config: dict = PIPELINE_CONFIG) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The model's text, the intent label and the escalate flag of every labelled row."""
    return ([model_text(r.subject, r.body, config=config) for r in rows], np.array([r.intent.value for r in rows]),
            np.array([r.escalate for r in rows]))


@dataclass(frozen=True)
class OutOfFold:
    """Every row scored by the fold model that never saw it, and the fold models (one per fold)."""

    fold_of: np.ndarray
    scores: np.ndarray                 # intent decision scores, one row per training row
    head_scores: np.ndarray | None     # escalation-head scores (None: no head)
    models: list[Fitted]


def out_of_fold(texts: Sequence[str], labels: np.ndarray, escalate: np.ndarray,
                config: dict = PIPELINE_CONFIG) -> OutOfFold:
    """Fit a model per stratified fold on the other folds and score the fold's rows with it."""
    fold_of = np.zeros(len(texts), dtype=int)
    scores = np.zeros((len(texts), len(np.unique(labels))))
    head_scores = np.zeros(len(texts)) if config.get("escalation_head") else None
    models = []
    for k, (train_idx, test_idx) in enumerate(cv_splitter(labels, config).split(texts, labels)):
        fitted = fit([texts[i] for i in train_idx], labels[train_idx], escalate[train_idx], config)
        scores[test_idx], head = fitted.scores([texts[i] for i in test_idx])
        if head_scores is not None:
            head_scores[test_idx] = head
        fold_of[test_idx] = k
        models.append(fitted)
    return OutOfFold(fold_of, scores, head_scores, models)


def calibrate(oof: OutOfFold, labels: np.ndarray, escalate: np.ndarray, config: dict = PIPELINE_CONFIG,
              rows: np.ndarray | slice = slice(None)) -> Calibration:
    """Temperature and thresholds from the out-of-fold scores of `rows` (a fold's model: the other folds')."""
    labels, routine = labels[rows], ~escalate[rows]
    classes = np.unique(labels)
    temperature = fit_temperature(oof.scores[rows], labels, classes)
    probabilities = softmax(oof.scores[rows] / temperature, axis=1)
    threshold = choose_threshold(probabilities.max(axis=1), routine, config["low_confidence_budget"])
    clinical_threshold = None
    clinical = Intent.clinical_question.value
    if config.get("clinical_doubt_budget") and clinical in classes:
        clinical_threshold = choose_escalation_threshold(probabilities[:, np.searchsorted(classes, clinical)],
                                                         routine, config["clinical_doubt_budget"])
    escalation_threshold = None
    if oof.head_scores is not None:
        escalation_threshold = choose_escalation_threshold(oof.head_scores[rows], routine,
                                                           config["escalation_head"]["budget"])
    return Calibration(temperature, threshold, escalation_threshold, clinical_threshold)


def train(rows: Sequence[TriageRow], version: str, config: dict = PIPELINE_CONFIG,
          oof: OutOfFold | None = None) -> IntentModel:
    """Fit on the given (training) rows, calibrated by cross-validation on the same rows (`oof`: already run),
    so no held-out row is ever looked at."""
    texts, labels, escalate = training_arrays(rows, config)
    oof = oof or out_of_fold(texts, labels, escalate, config)
    calibration = calibrate(oof, labels, escalate, config)
    accuracy = float(np.mean(np.unique(labels)[oof.scores.argmax(axis=1)] == labels))
    log.info("trained intent model %s on %d rows (cv accuracy %.3f, temperature %.2f, threshold %.3f, "
             "clinical threshold %s, escalation threshold %s)", version, len(rows), accuracy,
             calibration.temperature, calibration.threshold, calibration.clinical_threshold,
             calibration.escalation_threshold)
    return export(fit(texts, labels, escalate, config), calibration, version, trained_rows=len(rows),
                  metrics={"cv_accuracy": accuracy, "temperature": calibration.temperature,
                           "threshold": calibration.threshold,
                           "clinical_threshold": calibration.clinical_threshold,
                           "escalation_threshold": calibration.escalation_threshold})
