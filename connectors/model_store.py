"""The trained triage model as a versioned artefact: RXINBOX_HOME/models/triage-<version>.pickle."""

import hashlib
import importlib
import importlib.metadata
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Sequence
from pathlib import Path

from core.triage.intent_model import PIPELINE_CONFIG, IntentModel
from core.triage.dataset import DATASET_DIR, TriageRow, dataset_files, is_held_out, read_rows
from policy_rules.loader import LEXICON_DIR

log = logging.getLogger(__name__)
PREFIX = "triage-"
# Plain pickle, not joblib: loading the 200k-term vocabularies took joblib ~1.1 s of the CLI start-up,
# pickle ~0.1 s. The artefact is the pharmacy's own, written and read on the same machine.
SUFFIX = ".pickle"
# Read from the package metadata: importing scikit-learn costs ~2 s and triaging does not need it.
SKLEARN_VERSION = importlib.metadata.version("scikit-learn")
# The artefact's layout (numpy vocabularies and weights); part of the version, so a change retrains.
ARTEFACT_FORMAT = "numpy-tfidf-lexicon-linear-5"
# Training (scikit-learn) is loaded only when a model must be trained, never to triage.
TRAINER_MODULE = "core.triage.classifier"


def training_rows(directory: Path = DATASET_DIR, extra: Sequence[Path] = ()) -> list[TriageRow]:
    """The training split of the labelled set (never the held-out rows), plus extra row files."""
    rows = [r for r in read_rows(dataset_files(directory)) if not is_held_out(r.id)]
    return rows + read_rows(extra)


def model_version(rows: Sequence[TriageRow], config: dict = PIPELINE_CONFIG) -> str:
    """Hash of the training data, the pipeline config, the lexicons it reads and the scikit-learn version."""
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r.id):
        digest.update(row.model_dump_json(by_alias=True).encode("utf-8") + b"\n")
    digest.update(json.dumps(config, sort_keys=True).encode("utf-8"))
    if config.get("lexicon"):  # the file bytes, not parsed YAML: a triage start-up only reads them
        for path in sorted(LEXICON_DIR.glob("*.yaml")):
            digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes())
    digest.update(f"{SKLEARN_VERSION} {ARTEFACT_FORMAT}".encode("ascii"))
    return digest.hexdigest()[:16]


def train(rows: Sequence[TriageRow], version: str) -> IntentModel:
    """Fit a model with scikit-learn, loaded here on demand (a command that only triages never pays for it)."""
    return importlib.import_module(TRAINER_MODULE).train(rows, version)


def model_path(models_dir: Path, version: str) -> Path:
    return models_dir / f"{PREFIX}{version}{SUFFIX}"


def save(model: IntentModel, path: Path) -> Path:
    """Write atomically, so a crash never leaves half a model behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            pickle.dump(model, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load(path: Path) -> IntentModel:
    with open(path, "rb") as handle:
        model = pickle.load(handle)
    if not isinstance(model, IntentModel):
        raise ValueError(f"{path} is not a triage model artefact")
    if model.sklearn_version != SKLEARN_VERSION:
        raise ValueError(f"{path} was trained with scikit-learn {model.sklearn_version}, "
                         f"this is {SKLEARN_VERSION}: run `rxinbox train`")
    return model


def train_and_save(models_dir: Path, rows: Sequence[TriageRow] | None = None) -> tuple[IntentModel, Path]:
    """Train on the training split and store the artefact under its version."""
    rows = list(rows) if rows is not None else training_rows()
    version = model_version(rows)
    model = train(rows, version)
    return model, save(model, model_path(models_dir, version))


def load_or_train(models_dir: Path) -> IntentModel:
    """The model for the current training data: loaded when cached, else trained (offline) and cached."""
    rows = training_rows()
    if not rows:
        cached = sorted(models_dir.glob(f"{PREFIX}*{SUFFIX}"), key=lambda p: p.stat().st_mtime)
        if not cached:
            raise FileNotFoundError(f"no labelled data in {DATASET_DIR} and no model in {models_dir}")
        return load(cached[-1])
    path = model_path(models_dir, model_version(rows))
    if path.exists():
        try:
            return load(path)
        except Exception:  # a corrupt or foreign artefact is rebuilt, never trusted
            log.warning("model artefact %s unusable; retraining", path.name)
    log.info("no cached triage model %s; training", path.name)
    return train_and_save(models_dir, rows)[0]
