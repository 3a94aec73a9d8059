"""The trained intent model at inference time: TF-IDF features and a linear layer in plain numpy.

Training uses scikit-learn (core/triage/classifier.py); the artefact it leaves behind holds only
vocabularies and arrays, so triaging never imports scikit-learn, scipy or pandas (about 2 s of a
command's start-up). tests/unit/test_triage_intent_model.py checks that both give the same scores.
"""

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from core.triage.normalise import fold
from core.triage.rules import ModelView
from data_contracts.models import Intent

# Everything that shapes the model; part of its version, so a change retrains.
PIPELINE_CONFIG: dict = {
    "char": {"analyzer": "char_wb", "ngram_range": [2, 5], "min_df": 2, "sublinear_tf": True, "max_features": 150000},
    "word": {"analyzer": "word", "ngram_range": [1, 2], "min_df": 1, "sublinear_tf": True,
             "token_pattern": r"(?u)\b\w+\b"},
    "classifier": "logreg",  # logreg | svm (both give decision scores that the temperature calibrates)
    "logreg": {"C": 20.0, "max_iter": 300, "tol": 1e-3, "class_weight": "balanced"},
    "svm": {"C": 1.0, "class_weight": "balanced"},
    "cv_folds": 5,
    "subject_repeats": 2,  # the subject line says most about the intent: weigh it twice
    "quoted_chars": 600,
    # low_confidence: the top probability below which a message escalates, chosen by cross-validation on
    # the training split so that at most this share of routine training messages is flagged.
    "low_confidence_budget": 0.04,
    "seed": 7,
}

_WHITE_SPACES = re.compile(r"\s\s+")


def model_text(subject: str, body: str, quoted: str = "", config: dict = PIPELINE_CONFIG) -> str:
    """What the classifier reads: subject, new text and the start of any quoted text, whitespace-collapsed."""
    quoted_part = quoted[: config["quoted_chars"]]
    subject_part = "\n".join([subject] * config["subject_repeats"])
    return " ".join(f"{subject_part}\n{body}\n{quoted_part}".split())


@dataclass
class TfidfFeatures:
    """One fitted TF-IDF block (scikit-learn's char_wb or word analyzer, sublinear tf, L2-normalised)."""

    analyzer: Literal["char_wb", "word"]
    ngram_range: tuple[int, int]
    vocabulary: dict[str, int]
    idf: np.ndarray
    token_pattern: str | None = None
    _token_re: re.Pattern | None = field(default=None, init=False, repr=False, compare=False)

    def terms(self, text: str) -> list[str]:
        """The n-grams of a text, exactly as scikit-learn's analyzer makes them (after `fold`)."""
        low, high = self.ngram_range
        text = fold(text)
        if self.analyzer == "char_wb":
            grams = []
            for word in _WHITE_SPACES.sub(" ", text).split():
                word = f" {word} "
                for n in range(low, high + 1):
                    grams.extend(word[i:i + n] for i in range(max(len(word) - n + 1, 1)))
                    if len(word) <= n:  # a short word counts once, not once per longer n
                        break
            return grams
        if self._token_re is None:
            self._token_re = re.compile(self.token_pattern or r"(?u)\b\w\w+\b")
        tokens = self._token_re.findall(text)
        grams = list(tokens) if low == 1 else []
        for n in range(max(low, 2), min(high, len(tokens)) + 1):
            grams.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        return grams

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(column indices, L2-normalised sublinear tf-idf values) of one text's known terms."""
        counts = Counter(index for index in map(self.vocabulary.get, self.terms(text)) if index is not None)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        values = (np.log(np.fromiter(counts.values(), dtype=np.float32, count=len(counts))) + 1) * self.idf[columns]
        return columns, values / np.linalg.norm(values)


@dataclass
class IntentModel:
    """A trained classifier with its temperature, low-confidence threshold and provenance (the artefact)."""

    features: list[TfidfFeatures]
    coef: np.ndarray          # (classes, features), the feature blocks side by side
    intercept: np.ndarray     # (classes,)
    classes: tuple[str, ...]
    temperature: float
    threshold: float
    version: str
    sklearn_version: str
    trained_rows: int = 0
    metrics: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[Intent]:
        return [Intent(c) for c in self.classes]

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Linear scores, one row per text (what scikit-learn's pipeline.decision_function gives)."""
        scores = np.tile(self.intercept.astype(np.float64), (len(texts), 1))
        offsets = np.cumsum([0] + [len(block.idf) for block in self.features])
        for i, text in enumerate(texts):
            for block, offset in zip(self.features, offsets):
                columns, values = block.row(text)
                if columns.size:
                    scores[i] += self.coef[:, offset + columns] @ values
        return scores

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated class probabilities, one row per text (columns in `labels` order)."""
        logits = self.decision_function(list(texts)) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> list[ModelView]:
        """The model's view of a batch of texts."""
        if not texts:
            return []
        labels = self.labels
        views = []
        for row in self.probabilities(texts):
            best = int(row.argmax())
            views.append(ModelView(labels[best], float(row[best]), dict(zip(labels, row.tolist()))))
        return views
