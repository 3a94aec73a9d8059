"""`rxinbox demo`: load the demo pharmacy and mailbox into a fresh home and sweep it."""

import logging
import os
import shutil
from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from connectors.database import open_database
from connectors.knowledge_base import KnowledgeBase
from connectors.pms import ReferencePMS
from data_contracts.models import SweepParams
from rxinbox.commands.cases import all_cases
from rxinbox.commands.sweep import run_sweep
from rxinbox.settings import get_settings

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "datasets" / "demo"
DEMO_NOW = "2026-11-25T09:00:00+01:00"
MARKER = ".rxinbox-demo"


def reset_home(home: Path, force: bool) -> None:
    """Start from an empty home; refuse to wipe one that holds real (non-demo) data."""
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists() and not force:
            raise typer.BadParameter(f"{home} holds data that is not from a demo; use --force or another RXINBOX_HOME")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("created by rxinbox demo\n")


def count_table(title: str, counts: Counter) -> Table:
    table = Table(title=title)
    table.add_column(title.split()[-1])
    table.add_column("cases", justify="right")
    for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(key, str(value))
    return table


def show(console: Console, cases: list[dict]) -> None:
    console.print(count_table("Cases by intent", Counter(c["intent"] or "(quarantined)" for c in cases)))
    console.print(count_table("Cases by action", Counter(c["action"] for c in cases)))
    samples = [c for c in cases if c["draft"] and c["action"] == "draft_for_approval"][:1]
    samples += [c for c in cases if c["draft"] and c["action"] == "escalate"][:1]
    for case in samples:
        console.print(Panel(case["draft"], title=f"Draft ({case['action']}, {case['intent']}, {case['outcome'] or '-'})"))


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_command(force: bool = typer.Option(False, "--force", help="Wipe RXINBOX_HOME even if it is not a demo home.")) -> None:
        """Load the demo pharmacy and ~40 e-mails into a fresh RXINBOX_HOME and sweep them. Example: rxinbox demo"""
        os.environ.setdefault("RXINBOX_NOW", DEMO_NOW)
        settings = get_settings()
        console = Console()
        reset_home(settings.home, force)
        report = ReferencePMS(open_database(settings)).import_file(DEMO / "pharmacy.json")
        console.print(f"Loaded the demo pharmacy: {report}")
        shutil.copytree(DEMO / "mailbox", settings.home / "mailbox")
        indexed = KnowledgeBase(settings).index()
        console.print(f"Indexed the knowledge base: {indexed}")
        summary = run_sweep(SweepParams(source=str(settings.home / "mailbox")))
        console.print(f"Swept the demo mailbox: {summary.model_dump()}")
        show(console, all_cases())
        console.print(
            f"\nLook further: [bold]RXINBOX_HOME={settings.home} rxinbox cases[/bold] (or --json), "
            f"[bold]rxinbox audit verify[/bold]; drafts are in {settings.home / 'drafts'}; "
            "the Prefect UI: [bold]rxinbox serve[/bold], then http://127.0.0.1:4200"
        )
