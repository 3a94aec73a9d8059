"""`rxinbox sweep`: run the mailbox-sweep flow over a folder of .eml files or a Maildir."""

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from data_contracts.models import SweepParams, SweepSummary
from flows.mailbox_sweep import mailbox_sweep

JSON_KEYS = ("seen", "processed", "quarantined", "skipped_duplicates", "escalated", "drafted", "auto_sent")


def run_sweep(params: SweepParams) -> SweepSummary:
    """Run the flow in-process (Prefect starts a temporary API server when none is configured)."""
    return mailbox_sweep(params)


def summary_table(summary: SweepSummary) -> Table:
    table = Table(title="Sweep")
    table.add_column("count")
    table.add_column("value", justify="right")
    for key, value in summary.model_dump().items():
        table.add_row(key, str(value))
    return table


def register(app: typer.Typer) -> None:
    @app.command("sweep")
    def sweep_command(
        source: Path = typer.Option(None, "--source", exists=True, file_okay=False, help="Folder of .eml files or a Maildir."),
        mailbox: str = typer.Option(None, "--mailbox", help="A mailbox named in mailboxes.yaml, or the name for --source."),
        batch_size: int = typer.Option(None, "--batch-size", min=1, max=5000, help="Messages per task call."),
        as_json: bool = typer.Option(False, "--json", help="Print the counts as one JSON object on the last line."),
    ) -> None:
        """Sweep a mailbox once. Example: rxinbox sweep --source ./mail --json  (or: rxinbox sweep --mailbox apotek-inbox)"""
        params = SweepParams(source=str(source) if source else None, mailbox=mailbox, batch_size=batch_size)
        summary = run_sweep(params)
        if as_json:
            typer.echo(json.dumps({k: getattr(summary, k) for k in JSON_KEYS}))
        else:
            Console().print(summary_table(summary))
