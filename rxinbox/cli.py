"""The rxinbox command line: the front door to sweeps, triage, the PMS, the KB and the audit trail."""

import logging

import typer

from rxinbox.commands import audit, cases, demo, kb, pms, sweep, triage
from rxinbox.settings import get_settings

app = typer.Typer(
    name="rxinbox",
    help="An e-mail assistant for community pharmacies. Example: rxinbox demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (demo, sweep, cases, pms, triage, kb, audit):
    module.register(app)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level.")) -> None:
    """rxinbox: triage a pharmacy's mailbox, escalate anything clinical, draft the routine replies."""
    level = logging.DEBUG if verbose else getattr(logging, get_settings().log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    app()
