"""The rxinbox command line, end to end on a real SQLite file and the Prefect test server."""

import json
import shutil

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from connectors.database import open_database
from data_contracts import tables as t
from rxinbox.cli import app
from rxinbox.settings import get_settings
from tests.conftest import REPO

pytestmark = pytest.mark.e2e
runner = CliRunner()
DEMO = REPO / "datasets" / "demo"
CASE_KEYS = {"message_id", "from", "subject", "received_at", "intent", "escalate", "reasons", "priority", "action",
             "outcome", "draft", "sources"}
ACTIONS = {"escalate", "draft_for_approval", "auto_send", "close_without_reply", "quarantine"}


@pytest.mark.parametrize("command", [[], ["demo"], ["sweep"], ["cases"], ["pms", "import"], ["pms", "export"],
                                     ["triage"], ["train"], ["kb", "index"], ["audit", "verify"]])
def test_every_command_has_help_with_an_example(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_sweep_json_cases_json_and_audit_verify(home, prefect_harness):
    mail = home.parent / "mail"
    shutil.copytree(DEMO / "mailbox", mail)
    assert runner.invoke(app, ["pms", "import", str(DEMO / "pharmacy.json")]).exit_code == 0

    result = runner.invoke(app, ["sweep", "--source", str(mail), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert set(summary) == {"seen", "processed", "quarantined", "skipped_duplicates", "escalated", "drafted", "auto_sent"}
    assert all(isinstance(v, int) for v in summary.values())
    assert summary["processed"] + summary["quarantined"] == summary["seen"]

    again = json.loads(runner.invoke(app, ["sweep", "--source", str(mail), "--json"]).output.strip().splitlines()[-1])
    assert again["processed"] == 0 and again["skipped_duplicates"] == summary["seen"]

    cases = [json.loads(line) for line in runner.invoke(app, ["cases", "--json"]).output.splitlines() if line.strip()]
    assert len(cases) == summary["seen"]
    assert all(CASE_KEYS <= set(c) for c in cases)
    assert {c["action"] for c in cases} <= ACTIONS
    assert all(c["reasons"] for c in cases if c["escalate"])
    assert any(c["draft"] and c["sources"] for c in cases)

    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0 and "intact" in verified.output


def test_audit_verify_fails_on_a_tampered_event(home, prefect_harness):
    mail = home.parent / "mail"
    shutil.copytree(DEMO / "mailbox", mail)
    assert runner.invoke(app, ["sweep", "--source", str(mail)]).exit_code == 0
    with open_database(get_settings()).begin() as conn:
        conn.execute(update(t.audit_events).where(t.audit_events.c.seq == 3).values(details={"intent": "billing"}))
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "seq 3" in result.output


def test_demo_runs_end_to_end(home, prefect_harness):
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    for heading in ("Cases by intent", "Cases by action", "Draft (", "rxinbox cases"):
        assert heading in result.output
    assert (home / ".rxinbox-demo").exists()
