"""Per-process resources of a sweep (database, PMS, triage model, drafter, knowledge base), loaded once."""

import gc
import importlib
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from sqlalchemy import Engine

from connectors.database import load_cipher, open_database
from connectors.knowledge_base import KnowledgeBase
from connectors.llm import build_chat_model
from connectors.local_mailbox import LocalMailbox
from connectors.mailbox import Mailbox
from connectors.mailbox_config import LocalMailboxConfig, load_mailboxes
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
    chat_model: BaseChatModel | None


@lru_cache(maxsize=4)
def _build(settings: Settings) -> SweepContext:
    engine = open_database(settings)
    try:
        kb = KnowledgeBase(settings)
        kb.index()  # incremental: a no-op when nothing changed; a fresh home gets its KB at once
    except Exception:  # the sweep still drafts from the PMS and templates without a KB
        log.exception("knowledge base unavailable; replies needing it get a holding reply")
        kb = None
    ctx = SweepContext(
        settings=settings,
        cipher=load_cipher(settings),
        engine=engine,
        store=CaseStore(engine),
        pms=ReferencePMS(engine),
        triager=Triager.load(),
        drafter=Drafter.load(auto_send=settings.auto_send),
        kb=kb,
        chat_model=build_chat_model(),
    )
    # The models, lexicons and templates just loaded live as long as the process: moved out of the
    # cyclic collector's sight, they are not walked again by every full collection during a sweep.
    gc.collect()
    gc.freeze()
    return ctx


def sweep_context() -> SweepContext:
    """The context for the current settings (RXINBOX_* environment), built on first use."""
    ctx = _build(get_settings())
    # The cipher is process-global; another home used in this process may have replaced it.
    tables.use_cipher(ctx.cipher)
    return ctx


def default_source(settings: Settings) -> Path:
    return settings.home / "mailbox"


# Connectors for remote mailboxes are loaded only when configured: O365 and imaplib stay out of
# the embedded default's start-up. Each module exposes open_from_config(config, settings).
REMOTE_CONNECTORS = {"imap": "connectors.imap_mailbox", "graph": "connectors.graph_mailbox"}


def mailboxes_file(settings: Settings) -> Path:
    return settings.mailboxes_file or settings.home / "mailboxes.yaml"


def open_mailbox(settings: Settings, source: str | None, name: str | None) -> Mailbox:
    """The mailbox to sweep: a folder given as source, a mailbox named in mailboxes.yaml, or home/mailbox."""
    if source:
        return LocalMailbox(Path(source).expanduser(), name or settings.mailbox_name, settings.home)
    config_path = mailboxes_file(settings)
    if name and config_path.exists():
        _, config = load_mailboxes(config_path).find(name)
        if isinstance(config, LocalMailboxConfig):
            return LocalMailbox(config.path.expanduser(), config.name, settings.home)
        return importlib.import_module(REMOTE_CONNECTORS[config.kind]).open_from_config(config, settings)
    return LocalMailbox(default_source(settings), name or settings.mailbox_name, settings.home)
