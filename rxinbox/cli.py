"""The rxinbox command line: the front door to sweeps, triage, the PMS, the KB and the audit trail."""

import importlib
import logging

import click
import typer
from typer.core import TyperGroup

from rxinbox.settings import get_settings

# Each command's module is imported only when that command runs: `rxinbox triage` must start in
# well under 3 s, and Prefect, Chroma and the embedding model take seconds to import.
COMMANDS = {
    "demo": "rxinbox.commands.demo",
    "sweep": "rxinbox.commands.sweep",
    "cases": "rxinbox.commands.cases",
    "triage": "rxinbox.commands.triage",
    "train": "rxinbox.commands.triage",
    "pms": "rxinbox.commands.pms",
    "kb": "rxinbox.commands.kb",
    "audit": "rxinbox.commands.audit",
    "serve": "rxinbox.commands.serve",
}


class LazyCommands(TyperGroup):
    """A click group that builds a subcommand from its module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[name])
        holder = typer.Typer()
        module.register(holder)
        return typer.main.get_group(holder).get_command(ctx, name)


app = typer.Typer(
    name="rxinbox",
    cls=LazyCommands,
    help="An e-mail assistant for community pharmacies. Example: rxinbox demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level.")) -> None:
    """rxinbox: triage a pharmacy's mailbox, escalate anything clinical, draft the routine replies. Example: rxinbox demo"""
    level = logging.DEBUG if verbose else getattr(logging, get_settings().log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # HTTP client debug lines carry full URLs (Graph filters name Message-IDs): never below INFO.
    for noisy in ("urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))


if __name__ == "__main__":
    app()
