"""`rxinbox cases`: the stored cases (and quarantined mail), as a table or JSON lines."""

import json

import typer
from rich.console import Console
from rich.table import Table

from connectors.database import open_database
from connectors.store import CaseStore
from core.audit import utc
from rxinbox.settings import get_settings


def message_id_of(key: str) -> str | None:
    return key.split("#", 1)[0] if key.startswith("<") else None


def iso(value) -> str | None:
    return utc(value).isoformat() if value is not None else None


def case_json(row: dict) -> dict:
    draft = row["draft"]
    return {
        "case_id": row["case_id"],
        "message_id": message_id_of(row["message_key"]),
        "from": row["sender"],
        "subject": row["subject"],
        "received_at": iso(row["received_at"]),
        "intent": row["intent"],
        "secondary_intents": row["secondary_intents"],
        "escalate": row["escalate"],
        "reasons": row["reasons"],
        "priority": row["priority"],
        "language": row["language"],
        "confidence": row["confidence"],
        "evidence": row["evidence"],
        "action": row["action"],
        "action_reason": row["action_reason"],
        "outcome": row["outcome"],
        "draft": draft["body"] if draft else None,
        "template_id": draft["template_id"] if draft else None,
        "sources": draft["sources"] if draft else [],
    }


def quarantine_json(row: dict) -> dict:
    return {
        "case_id": None, "message_id": message_id_of(row["message_key"]), "from": None, "subject": None,
        "received_at": None, "intent": None, "secondary_intents": [], "escalate": False, "reasons": [],
        "priority": None, "language": None, "confidence": None, "evidence": [], "action": "quarantine",
        "action_reason": row["reason"], "outcome": None, "draft": None, "template_id": None, "sources": [],
    }


def all_cases() -> list[dict]:
    store = CaseStore(open_database(get_settings()))
    return [case_json(r) for r in store.case_rows()] + [quarantine_json(r) for r in store.quarantine_rows()]


def register(app: typer.Typer) -> None:
    @app.command("cases")
    def cases_command(as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
        """List stored cases with intent, escalation and action. Example: rxinbox cases --json"""
        rows = all_cases()
        if as_json:
            for row in rows:
                typer.echo(json.dumps(row, ensure_ascii=False))
            return
        table = Table(title=f"{len(rows)} cases")
        for column in ("received", "from", "subject", "intent", "escalate", "reasons", "action", "outcome"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row((row["received_at"] or "")[:16], row["from"] or "", (row["subject"] or "")[:50], row["intent"] or "",
                          "yes" if row["escalate"] else "", ", ".join(row["reasons"]), row["action"], row["outcome"] or "")
        Console().print(table)
