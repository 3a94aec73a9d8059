"""Per-process resources of a sweep (database, PMS, triage model, drafter, knowledge base), loaded once."""

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine

from connectors.database import load_cipher, open_database
from connectors.knowledge_base import KnowledgeBase
from connectors.local_mailbox import LocalMailbox
from connectors.mailbox import Mailbox
from connectors.pms import ReferencePMS
from connectors.store import CaseStore
from core.crypto import Cipher
from core.drafting import Drafter
from core.triage.engine import Triager
from data_contracts import tables
from rxinbox.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class SweepContext:
    """Everything a sweep's tasks share; cheap to look up, expensive to build."""

    settings: Settings
    cipher: Cipher
    engine: Engine
    store: CaseStore
    pms: ReferencePMS
    triager: Triager
    drafter: Drafter
    kb: KnowledgeBase | None


@lru_cache(maxsize=4)
def _build(settings: Settings) -> SweepContext:
    engine = open_database(settings)
    try:
        kb = KnowledgeBase(settings)
    except Exception:  # the sweep still drafts from the PMS and templates without a KB
        log.exception("knowledge base unavailable; replies needing it get a holding reply")
        kb = None
    return SweepContext(
        settings=settings,
        cipher=load_cipher(settings),
        engine=engine,
        store=CaseStore(engine),
        pms=ReferencePMS(engine),
        triager=Triager.load(),
        drafter=Drafter.load(),
        kb=kb,
    )


def sweep_context() -> SweepContext:
    """The context for the current settings (RXINBOX_* environment), built on first use."""
    ctx = _build(get_settings())
    # The cipher is process-global; another home used in this process may have replaced it.
    tables.use_cipher(ctx.cipher)
    return ctx


def default_source(settings: Settings) -> Path:
    return settings.home / "mailbox"


def open_mailbox(settings: Settings, source: str | None, name: str | None) -> Mailbox:
    """The mailbox to sweep: a local folder or Maildir (other connectors plug in here)."""
    path = Path(source).expanduser() if source else default_source(settings)
    return LocalMailbox(path, name or settings.mailbox_name, settings.home)
