"""Generates the committed JSON Schema files from the pydantic contracts: python -m data_contracts.schema_export."""

import argparse
import json
import logging
import sys
from pathlib import Path

from data_contracts.models import PharmacyExport

log = logging.getLogger(__name__)

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# file name -> the contract it describes
SCHEMAS = {"pharmacy_export.schema.json": PharmacyExport}


def build(model: type = PharmacyExport) -> dict:
    """The JSON Schema of a contract, naming its dialect so validators and editors read it right."""
    return {"$schema": DIALECT, **model.model_json_schema()}


def render(model: type = PharmacyExport) -> str:
    """The exact text committed for a contract (stable key order, trailing newline)."""
    return json.dumps(build(model), ensure_ascii=False, indent=2) + "\n"


def stale_files(directory: Path = SCHEMA_DIR) -> list[str]:
    """Schema files whose committed text differs from what the contracts generate now."""
    stale = []
    for name, model in SCHEMAS.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != render(model):
            stale.append(name)
    return stale


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMAS.items():
        path = directory / name
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Write the schemas, or with --check only report (exit 1) which are out of date."""
    parser = argparse.ArgumentParser(description="Generate JSON Schema files from rxinbox's data contracts.")
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed schema is out of date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.check:
        stale = stale_files()
        for name in stale:
            log.error("%s is out of date: run python -m data_contracts.schema_export", name)
        return 1 if stale else 0
    for path in write_all():
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
