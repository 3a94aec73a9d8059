"""Shared by the triage tests: one Triager per test process, its model trained on the training split."""

from functools import lru_cache
from pathlib import Path

from connectors import model_store
from core.triage.engine import TriageInput, Triager
from rxinbox.settings import get_settings


@lru_cache(maxsize=1)
def trained_model() -> Path:
    """The model for the current training split, trained once into the suite's model cache (RXINBOX_MODEL_CACHE)."""
    models_dir = get_settings().models_dir
    return model_store.model_path(models_dir, model_store.load_or_train(models_dir).version)


@lru_cache(maxsize=1)
def triager() -> Triager:
    return Triager.load(model_path=trained_model())


def message(body: str, subject: str = "", **extra) -> TriageInput:
    return TriageInput(id="t", sender="patient@example.com", subject=subject, body=body, **extra)
