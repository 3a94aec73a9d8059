"""`rxinbox pms import|export`: load the pharmacy's PMS file into rxinbox, or write it back out."""

import os
from pathlib import Path

import typer

from connectors.database import open_database
from connectors.pms import PmsImportError, ReferencePMS
from rxinbox.settings import get_settings

HELP = (
    "The reference pharmacy management system: patients, prescriptions, dispenses, consents. "
    "Example: rxinbox pms import datasets/demo/pharmacy.json\n\n"
    "The file format is data_contracts/schemas/pharmacy_export.schema.json, "
    "explained in data_contracts/schemas/README.md."
)


def open_pms() -> ReferencePMS:
    return ReferencePMS(open_database(get_settings()))


def register(app: typer.Typer) -> None:
    pms_app = typer.Typer(name="pms", help=HELP, no_args_is_help=True)
    app.add_typer(pms_app, name="pms")

    @pms_app.command("import")
    def import_command(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A PharmacyExport JSON file."),
    ) -> None:
        """Import a PMS file, all or nothing (re-importing is safe). Example: rxinbox pms import pharmacy.json

        Every record is checked first (fields, ids, references). If anything is wrong, each problem is
        printed with its record and field, nothing is imported, and the exit code is 1.
        """
        pms = open_pms()
        try:
            report = pms.import_file(file)
        except PmsImportError as exc:
            typer.echo(f"{file}: {exc}", err=True)
            typer.echo("Nothing was imported.", err=True)
            raise typer.Exit(1) from None
        if report.pharmacy != pms.pharmacy_name:
            typer.echo(
                f"warning: the file is for {report.pharmacy!r}, this rxinbox is set up for {pms.pharmacy_name!r} "
                "(RXINBOX_PHARMACY_NAME)",
                err=True,
            )
        typer.echo(f"Imported {file.name}:")
        for name in ("patients", "prescriptions", "dispenses", "consents"):
            counts = getattr(report, name)
            line = f"{counts.created:>6} new {counts.updated:>6} updated {counts.unchanged:>6} unchanged"
            typer.echo(f"  {name:<14}{line}")

    @pms_app.command("export")
    def export_command(
        output: Path = typer.Option(None, "--output", "-o", dir_okay=False, help="Write here instead of stdout."),
    ) -> None:
        """Write everything the PMS holds as a JSON import file. Example: rxinbox pms export -o backup.json

        The output contains patient data (PHI): keep it where only authorised staff can read it.
        """
        text = open_pms().export().model_dump_json(indent=2) + "\n"
        if output is None:
            typer.echo(text, nl=False)
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        # Created private from the first byte: the file holds PHI.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        output.chmod(0o600)
        typer.echo(f"Wrote {output}", err=True)
