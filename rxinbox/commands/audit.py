"""`rxinbox audit`: verify the tamper-evident audit chain."""

import typer

from connectors.database import open_database
from connectors.store import CaseStore
from core.audit import verify
from rxinbox.settings import get_settings


def register(app: typer.Typer) -> None:
    audit_app = typer.Typer(help="The audit trail. Example: rxinbox audit verify", no_args_is_help=True)
    app.add_typer(audit_app, name="audit")

    @audit_app.command("verify")
    def verify_command() -> None:
        """Recompute every hash of the audit chain; exit 1 at the first break. Example: rxinbox audit verify"""
        verdict = verify(CaseStore(open_database(get_settings())).audit_events())
        if verdict.ok:
            typer.echo(f"audit chain intact: {verdict.checked} events verified")
            return
        typer.echo(f"audit chain BROKEN at seq {verdict.first_bad_seq}: {verdict.problem}", err=True)
        raise typer.Exit(1)
