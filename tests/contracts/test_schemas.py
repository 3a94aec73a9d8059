"""The committed JSON Schema is what the contracts generate, and it accepts and rejects what the model does."""

import copy
import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from data_contracts import schema_export
from data_contracts.models import PharmacyExport

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "data_contracts" / "schemas" / "pharmacy_export.schema.json"
README = REPO / "data_contracts" / "schemas" / "README.md"
DEMO_FILE = REPO / "datasets" / "demo" / "pharmacy.json"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_committed_schema_equals_the_generated_one():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_export.render(PharmacyExport), (
        "regenerate with: python -m data_contracts.schema_export"
    )
    assert schema_export.stale_files() == []


def test_check_mode_reports_a_stale_schema(tmp_path):
    (tmp_path / "pharmacy_export.schema.json").write_text("{}\n", encoding="utf-8")
    assert schema_export.stale_files(tmp_path) == ["pharmacy_export.schema.json"]
    schema_export.write_all(tmp_path)
    assert schema_export.stale_files(tmp_path) == []


def test_demo_file_is_valid_against_the_schema(validator):
    errors = list(validator.iter_errors(json.loads(DEMO_FILE.read_text(encoding="utf-8"))))
    assert errors == []


def test_readme_example_is_a_valid_import_file(validator):
    block = re.search(r"## A small example\s+```json\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block, "README.md lost its example"
    example = json.loads(block.group(1))
    assert list(validator.iter_errors(example)) == []
    PharmacyExport.model_validate(example)


@pytest.mark.parametrize(
    ("section", "index", "field", "value"),
    [
        ("prescriptions", 5, "days_supply", 0),
        ("patients", 2, "colour", "blue"),
        ("prescriptions", 0, "dk_dispensing_group", "C"),
        ("prescriptions", 0, "controlled_schedule", "I"),
        ("patients", 0, "preferred_language", "de"),
        ("dispenses", 0, "dispensed_on", "yesterday"),
    ],
)
def test_schema_and_model_reject_the_same_bad_values(validator, section, index, field, value):
    data = copy.deepcopy(json.loads(DEMO_FILE.read_text(encoding="utf-8")))
    data[section][index][field] = value
    assert list(validator.iter_errors(data)), f"schema accepted {section}[{index}].{field}={value!r}"
    with pytest.raises(ValueError):
        PharmacyExport.model_validate(data)
