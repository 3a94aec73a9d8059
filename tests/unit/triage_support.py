"""Shared by the triage tests: one Triager per test process, its model trained on the training split."""

import tempfile
from functools import lru_cache
from pathlib import Path

from connectors import model_store
from core.triage.engine import TriageInput, Triager


@lru_cache(maxsize=1)
def trained_model() -> Path:
    """Train once per process (a few seconds) into a private temp dir; never touches RXINBOX_HOME."""
    return model_store.train_and_save(Path(tempfile.mkdtemp(prefix="rxinbox-triage-model-")))[1]


@lru_cache(maxsize=1)
def triager() -> Triager:
    return Triager.load(model_path=trained_model())


def message(body: str, subject: str = "", **extra) -> TriageInput:
    return TriageInput(id="t", sender="patient@example.com", subject=subject, body=body, **extra)
