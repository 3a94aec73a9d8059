"""The mailbox-sweep flow on the demo pharmacy: every message handled once, clinical mail escalated."""

import json
import shutil

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from connectors.database import open_database
from connectors.pms import ReferencePMS
from connectors.store import CaseStore
from core.audit import verify
from data_contracts.models import SweepParams
from flows.mailbox_sweep import mailbox_sweep
from rxinbox.settings import get_settings
from tasks import context
from tests.conftest import REPO

DEMO = REPO / "datasets" / "demo"


@pytest.fixture
def demo_home(home):
    ReferencePMS(open_database(get_settings())).import_file(DEMO / "pharmacy.json")
    shutil.copytree(DEMO / "mailbox", home / "mailbox")
    return home


def labels() -> dict[str, dict]:
    rows = [json.loads(line) for line in (DEMO / "mailbox_labels.jsonl").read_text().splitlines() if line.strip()]
    return {row["file"]: row for row in rows}


def test_sweep_handles_every_message_once_and_a_second_sweep_does_nothing(demo_home):
    params = SweepParams(source=str(demo_home / "mailbox"), batch_size=7)
    first = mailbox_sweep(params)
    assert first.seen == len(list((demo_home / "mailbox").iterdir()))
    assert first.processed + first.quarantined + first.skipped_duplicates == first.seen
    assert first.processed > 0 and first.escalated > 0 and first.drafted > 0
    assert first.processed == first.escalated + first.drafted + first.auto_sent + first.closed

    second = mailbox_sweep(params)
    assert second.processed == second.quarantined == 0
    assert second.skipped_duplicates == second.seen == first.seen

    store = CaseStore(open_database(get_settings()))
    assert len(store.case_rows()) == first.processed
    assert verify(store.audit_events()).ok


def test_clinical_demo_mail_is_escalated_and_never_sent(demo_home):
    mailbox_sweep(SweepParams(source=str(demo_home / "mailbox")))
    rows = {row["ref"]: row for row in CaseStore(open_database(get_settings())).case_rows()}
    expected = labels()
    clinical = [name for name, row in expected.items() if row["escalate"]]
    assert len(clinical) >= 6, "the demo mailbox must contain clinical mail"
    missed = [name for name in clinical if not rows[name]["escalate"]]
    assert missed == []
    assert all(r["action"] == "escalate" for r in rows.values() if r["escalate"])
    assert all(set(expected[name]["reasons"]) <= set(rows[name]["reasons"]) for name in clinical)


def test_sent_and_drafted_replies_match_the_outbox(demo_home):
    summary = mailbox_sweep(SweepParams(source=str(demo_home / "mailbox")))
    drafts = list((demo_home / "drafts").rglob("*.eml")) if (demo_home / "drafts").exists() else []
    sent = list((demo_home / "outbox").rglob("*.eml"))
    assert len(sent) == summary.auto_sent
    assert len(drafts) >= summary.drafted


def test_llm_rewrite_with_an_invented_fact_is_rejected_and_audited(demo_home, monkeypatch):
    """An LLM that adds a date nobody gave it never reaches a draft; the audit trail says why."""
    invented = FakeListChatModel(responses=["Dear patient, your medicine is ready on 31 December 2026. Call 99 99 99 99."] * 200)
    monkeypatch.setattr(context, "build_chat_model", lambda: invented)
    mailbox_sweep(SweepParams(source=str(demo_home / "mailbox")))
    store = CaseStore(open_database(get_settings()))
    rejected = [e for e in store.audit_events() if e.event == "draft.llm_rejected"]
    assert rejected, "the fake model was never asked: polish is not wired into the sweep"
    assert all(e.details["reason"].startswith("unsupported_facts") for e in rejected)
    drafts = [r["draft"]["body"] for r in store.case_rows() if r["draft"]]
    assert drafts and not any("99 99 99 99" in body for body in drafts)
