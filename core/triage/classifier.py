"""Intent classifier: char + word TF-IDF and lexicon columns, a linear model, temperature-calibrated on
out-of-fold scores."""

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
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from core.triage.dataset import TriageRow
from core.triage.intent_model import (  # noqa: F401 (re-exported)
    PIPELINE_CONFIG, IntentModel, LexiconFeatures, TfidfFeatures, model_text,
)
from core.triage.lexicon import SUFFIXES, term_spellings
from core.triage.normalise import fold
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


def export(pipeline: Pipeline, temperature: float, threshold: float, version: str, **provenance) -> IntentModel:
    """The numpy-only artefact of a fitted pipeline: vocabularies, idf weights and the linear layer."""
    blocks, lexicon = [], None
    for _, vectorizer in pipeline.named_steps["features"].transformer_list:
        if isinstance(vectorizer, LexiconColumns):
            lexicon = vectorizer.features_
            continue
        blocks.append(TfidfFeatures(
            analyzer=vectorizer.analyzer, ngram_range=tuple(vectorizer.ngram_range),
            vocabulary={term: int(i) for term, i in vectorizer.vocabulary_.items()},
            idf=vectorizer.idf_.astype(np.float32), token_pattern=vectorizer.token_pattern,
        ))
    linear = pipeline.named_steps["linear"]
    return IntentModel(features=blocks, coef=np.asarray(linear.coef_, dtype=np.float64),
                       intercept=np.asarray(linear.intercept_, dtype=np.float64),
                       classes=tuple(str(c) for c in linear.classes_), temperature=temperature, threshold=threshold,
                       version=version, sklearn_version=sklearn.__version__, lexicon=lexicon, **provenance)


def fit_temperature(scores: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    """The temperature that minimises the log loss of out-of-fold scores (Guo et al. 2017)."""
    index = np.searchsorted(classes, labels)

    def loss(log_t: float) -> float:
        return -float(np.mean(log_softmax(scores / np.exp(log_t), axis=1)[np.arange(len(index)), index]))

    return float(np.exp(minimize_scalar(loss, bounds=(-4.0, 4.0), method="bounded").x))


def choose_threshold(top_probabilities: np.ndarray, routine: np.ndarray, budget: float) -> float:
    """The highest threshold that flags at most `budget` of the routine messages as low confidence."""
    routine_top = np.sort(top_probabilities[routine])
    if routine_top.size == 0:
        return 0.0
    allowed = int(np.floor(budget * routine_top.size))
    return float(routine_top[allowed]) if allowed < routine_top.size else 1.0


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold probabilities on the training rows, and what is calibrated from them."""

    classes: np.ndarray
    probabilities: np.ndarray
    temperature: float
    threshold: float
    accuracy: float


def cv_splitter(labels: np.ndarray, config: dict = PIPELINE_CONFIG) -> StratifiedKFold:
    """The folds calibration is fitted on: as many as the rarest intent allows, at most `cv_folds`."""
    classes = np.unique(labels)
    folds = min(config["cv_folds"], int(np.bincount(np.searchsorted(classes, labels)).min()))
    return StratifiedKFold(max(folds, 2), shuffle=True, random_state=config["seed"])


def cross_validate(rows: Sequence[TriageRow], config: dict = PIPELINE_CONFIG) -> CrossValidation:
    """Out-of-fold scores on the given rows: the temperature and the low-confidence threshold come from
    here, so no held-out row is ever looked at."""
    texts = [model_text(r.subject, r.body, config=config) for r in rows]
    labels = np.array([r.intent.value for r in rows])
    routine = np.array([not r.escalate for r in rows])
    classes = np.unique(labels)
    oof = cross_val_predict(build_pipeline(config), texts, labels, cv=cv_splitter(labels, config),
                            method="decision_function")
    temperature = fit_temperature(oof, labels, classes)
    proba = softmax(oof / temperature, axis=1)
    threshold = choose_threshold(proba.max(axis=1), routine, config["low_confidence_budget"])
    accuracy = float(np.mean(classes[oof.argmax(axis=1)] == labels))
    return CrossValidation(classes, proba, temperature, threshold, accuracy)


def train(rows: Sequence[TriageRow], version: str, config: dict = PIPELINE_CONFIG) -> IntentModel:
    """Fit on the given (training) rows, calibrated by cross-validation on the same rows."""
    cv = cross_validate(rows, config)
    pipeline = build_pipeline(config).fit([model_text(r.subject, r.body, config=config) for r in rows],
                                          [r.intent.value for r in rows])
    log.info("trained intent model %s on %d rows (cv accuracy %.3f, temperature %.2f, threshold %.3f)",
             version, len(rows), cv.accuracy, cv.temperature, cv.threshold)
    return export(pipeline, cv.temperature, cv.threshold, version, trained_rows=len(rows),
                  metrics={"cv_accuracy": cv.accuracy, "temperature": cv.temperature, "threshold": cv.threshold})
