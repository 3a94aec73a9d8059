"""The reference PMS against a real database: SQLite, and PostgreSQL too when RXINBOX_TEST_POSTGRES_URL is set."""

import copy
import json
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from connectors.database import open_database
from connectors.pms import PmsImportError, ReferencePMS
from data_contracts import tables
from data_contracts.models import PharmacyExport, PmsRequest
from rxinbox.commands import pms as pms_commands
from rxinbox.settings import get_settings

DEMO_FILE = Path(__file__).resolve().parents[2] / "datasets" / "demo" / "pharmacy.json"
PMS_TABLES = (tables.patients, tables.prescriptions, tables.dispenses, tables.consents, tables.pms_requests)


def demo_data() -> dict:
    return json.loads(DEMO_FILE.read_text(encoding="utf-8"))


@pytest.fixture
def pms(db_home) -> ReferencePMS:
    """A migrated, empty database with its own PHI key (SQLite, and PostgreSQL when configured)."""
    return ReferencePMS(open_database(get_settings()))


def row_counts(pms: ReferencePMS) -> dict[str, int]:
    with pms.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in PMS_TABLES}


def request(request_id: str = "req-1", case_id: str = "case-1") -> PmsRequest:
    created = datetime(2026, 11, 25, 8, tzinfo=timezone.utc)
    return PmsRequest(request_id=request_id, kind="refill", prescription_id="rx-0001", patient_id="pt-0001",
                      case_id=case_id, ready_on=date(2026, 11, 26), created_at=created)


# --- import, export, idempotency -------------------------------------------------------------------


def test_import_demo_file_counts_every_record(pms):
    data = demo_data()
    report = pms.import_file(DEMO_FILE)
    for section in ("patients", "prescriptions", "dispenses", "consents"):
        counts = getattr(report, section)
        assert (counts.created, counts.updated, counts.unchanged) == (len(data[section]), 0, 0), section
    assert row_counts(pms) == {"patients": 30, "prescriptions": 81, "dispenses": 405, "consents": 18, "pms_requests": 0}


def test_export_round_trips_the_file_exactly(pms):
    pms.import_file(DEMO_FILE)
    exported = pms.export()
    assert exported == PharmacyExport.model_validate(demo_data())
    issued_on = exported.prescriptions[0].issued_on
    assert isinstance(issued_on, date) and not isinstance(issued_on, datetime)
    assert isinstance(exported.patients[0].date_of_birth, date)
    assert exported.consents[0].recorded_at.tzinfo is not None
    assert json.loads(exported.model_dump_json()) == demo_data()


def test_importing_an_export_changes_nothing(pms):
    pms.import_file(DEMO_FILE)
    before = pms.export()
    report = pms.import_data(before)
    assert report.patients.unchanged == 30 and report.dispenses.unchanged == 405 and report.consents.unchanged == 18
    assert report.prescriptions.created == report.prescriptions.updated == 0
    assert pms.export() == before


def test_reimport_is_idempotent_and_updates_changed_records(pms):
    pms.import_file(DEMO_FILE)
    again = pms.import_file(DEMO_FILE)
    assert (again.patients.created, again.patients.updated, again.patients.unchanged) == (0, 0, 30)
    assert row_counts(pms)["dispenses"] == 405

    data = demo_data()
    data["patients"][0]["phone"] = "+45 99 99 99 99"
    data["prescriptions"][3]["refills_authorized"] += 2
    data["consents"][0]["granted"] = False
    report = pms.import_data(data)
    assert (report.patients.updated, report.prescriptions.updated, report.consents.updated) == (1, 1, 1)
    assert report.consents.created == 0
    assert pms.export() == PharmacyExport.model_validate(data)
    assert row_counts(pms)["consents"] == 18


# --- rejected files: every problem named, nothing imported -------------------------------------------


def _days_supply_zero(data):
    data["prescriptions"][5]["days_supply"] = 0


def _unknown_field(data):
    data["patients"][2]["colour"] = "blue"


def _missing_prescription(data):
    data["dispenses"][7]["prescription_id"] = "rx-9999"


def _duplicate_patient(data):
    data["patients"].append(copy.deepcopy(data["patients"][4]))


def _consent_unknown_patient(data):
    data["consents"][1]["patient_id"] = "pt-9999"


def _prescription_unknown_patient(data):
    data["prescriptions"][10]["patient_id"] = "pt-0404"


def _too_many_refills(data):
    data["prescriptions"][0]["refills_used"] = data["prescriptions"][0]["refills_authorized"] + 1


def _bad_date(data):
    data["dispenses"][0]["dispensed_on"] = "25/11/2026"


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (_days_supply_zero, "prescriptions[5] (prescription_id=rx-0006).days_supply: Input should be greater than 0"),
        (_unknown_field, "patients[2] (patient_id=pt-0003).colour: Extra inputs are not permitted"),
        (_missing_prescription,
         "dispenses[7] (dispense_id=dsp-00008).prescription_id: unknown prescription 'rx-9999'"),
        (_duplicate_patient, "patients[30] (patient_id=pt-0005).patient_id: duplicate id, first used by patients[4]"),
        (_consent_unknown_patient, "consents[1] (patient_id=pt-9999).patient_id: unknown patient 'pt-9999'"),
        (_prescription_unknown_patient,
         "prescriptions[10] (prescription_id=rx-0011).patient_id: unknown patient 'pt-0404'"),
        (_too_many_refills, "prescriptions[0] (prescription_id=rx-0001).refills_used:"),
        (_bad_date, "dispenses[0] (dispense_id=dsp-00001).dispensed_on: Input should be a valid date"),
    ],
)
def test_a_bad_record_is_named_and_nothing_is_imported(pms, corrupt, expected):
    data = demo_data()
    corrupt(data)
    with pytest.raises(PmsImportError) as caught:
        pms.import_data(data)
    assert expected in str(caught.value)
    assert row_counts(pms) == dict.fromkeys((t.name for t in PMS_TABLES), 0)


def test_all_problems_are_listed_and_good_records_in_the_same_file_are_not_written(pms):
    pms.import_file(DEMO_FILE)
    before = pms.export()
    data = demo_data()
    data["patients"][0]["first_name"] = "Changed"  # valid, but must not be written
    _days_supply_zero(data)
    _unknown_field(data)
    with pytest.raises(PmsImportError) as caught:
        pms.import_data(data)
    assert caught.value.errors == [
        "patients[2] (patient_id=pt-0003).colour: Extra inputs are not permitted",
        "prescriptions[5] (prescription_id=rx-0006).days_supply: Input should be greater than 0",
    ]
    assert pms.export() == before


def test_a_reference_to_an_already_imported_record_is_valid(pms):
    pms.import_file(DEMO_FILE)
    dispense = {"dispense_id": "dsp-90001", "prescription_id": "rx-0001", "dispensed_on": "2026-11-25",
                "quantity": 100, "days_supply": 50}
    extra = {"pharmacy": "Søndergade Apotek", "dispenses": [dispense]}
    assert pms.import_data(extra).dispenses.created == 1
    assert pms.dispenses_for(["rx-0001"])["rx-0001"][0].dispense_id == "dsp-90001"


def test_a_file_that_is_not_json_names_the_line(pms, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "pharmacy": "x",\n  "patients": [,]\n}\n', encoding="utf-8")
    with pytest.raises(PmsImportError, match=r"broken.json: not valid JSON: .* line 3"):
        pms.import_file(broken)


# --- batch lookups -----------------------------------------------------------------------------------


def test_patients_by_email_finds_the_family_and_ignores_case(pms):
    pms.import_file(DEMO_FILE)
    found = pms.patients_by_email(["Familien.Andersen@EXAMPLE.dk", "mette.jensen@example.dk", "nobody@example.com"])
    assert set(found) == {"familien.andersen@example.dk", "mette.jensen@example.dk", "nobody@example.com"}
    assert [p.patient_id for p in found["familien.andersen@example.dk"]] == ["pt-0007", "pt-0008"]
    assert [p.last_name for p in found["mette.jensen@example.dk"]] == ["Jensen"]
    assert found["nobody@example.com"] == []


def test_prescriptions_dispenses_and_consents_come_back_grouped(pms):
    pms.import_file(DEMO_FILE)
    rx = pms.prescriptions_for(["pt-0013", "pt-0404"])
    assert {p.prescription_id for p in rx["pt-0013"]} == {"rx-0012", "rx-0013"} and rx["pt-0404"] == []
    issued = [p.issued_on for p in pms.prescriptions_for(["pt-0001"])["pt-0001"]]
    assert issued == sorted(issued, reverse=True)

    dispensed = pms.dispenses_for(["rx-0001", "rx-0008"])
    dates = [d.dispensed_on for d in dispensed["rx-0001"]]
    assert dates[0] == date(2026, 10, 8) and dates == sorted(dates, reverse=True)
    assert dispensed["rx-0008"] == []

    consents = pms.consents_for(["pt-0009", "pt-0003"])
    assert [(c.purpose, c.granted) for c in consents["pt-0009"]] == [("marketing", False), ("marketing", True)]
    assert consents["pt-0003"] == []
    assert pms.patients_by_id(["pt-0017", "pt-0404"])["pt-0017"].email is None


# --- PMS requests --------------------------------------------------------------------------------------


def test_create_request_is_idempotent(pms):
    pms.import_file(DEMO_FILE)
    assert pms.create_request(request()) is True
    assert pms.create_request(request()) is False
    stored = pms.requests_for_cases(["case-1"])["case-1"]
    assert stored == [request()]


def test_create_request_uses_the_callers_transaction(pms):
    pms.import_file(DEMO_FILE)
    with pms.engine.connect() as conn:
        transaction = conn.begin()
        assert pms.create_request(request("req-2", "case-2"), conn) is True
        assert pms.create_request(request("req-2", "case-2"), conn) is False
        transaction.rollback()
    assert pms.requests_for_cases(["case-2"])["case-2"] == []
    with pms.engine.begin() as conn:
        assert pms.create_request(request("req-2", "case-2"), conn) is True
    assert len(pms.requests_for_cases(["case-2"])["case-2"]) == 1


# --- PHI at rest -------------------------------------------------------------------------------------


def test_no_patient_data_in_plaintext_in_the_sqlite_file(home, monkeypatch):
    monkeypatch.delenv("RXINBOX_DATABASE_URL", raising=False)
    engine = open_database(get_settings())
    ReferencePMS(engine).import_file(DEMO_FILE)
    engine.dispose()  # checkpoints the WAL into the main file
    stored = b"".join(p.read_bytes() for p in home.glob("rxinbox.db*"))
    assert "Metformin Sandoz".encode() in stored  # the search works: drug names are not PHI here
    for secret in ("Whitfield", "Sørensen", "james.whitfield@example.com", "familien.andersen@example.dk",
                   "1958-04-12", "+45 21 43 65 01", "Lægehuset Søndergade", "1 tablet 2 gange dagligt til måltid"):
        assert secret.encode() not in stored, secret


# --- the CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    pms_commands.register(app)

    @app.callback()
    def main() -> None:
        """Test app."""

    return app


def test_cli_import_prints_counts_and_export_writes_the_file(pms, cli, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["pms", "import", str(DEMO_FILE)])
    assert result.exit_code == 0, result.output
    assert "patients" in result.stdout and "30 new" in result.stdout and "405 new" in result.stdout

    result = runner.invoke(cli, ["pms", "export"])
    assert result.exit_code == 0
    assert PharmacyExport.model_validate_json(result.stdout) == PharmacyExport.model_validate(demo_data())

    target = tmp_path / "backup" / "pharmacy.json"
    result = runner.invoke(cli, ["pms", "export", "--output", str(target)])
    assert result.exit_code == 0 and json.loads(target.read_text(encoding="utf-8")) == demo_data()
    assert target.stat().st_mode & 0o077 == 0


def test_cli_import_of_a_bad_file_exits_1_and_imports_nothing(pms, cli, tmp_path):
    data = demo_data()
    _missing_prescription(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    result = CliRunner().invoke(cli, ["pms", "import", str(bad)])
    assert result.exit_code == 1
    assert "dispenses[7] (dispense_id=dsp-00008).prescription_id" in result.stderr
    assert "Nothing was imported" in result.stderr and result.stdout == ""
    assert row_counts(pms)["patients"] == 0
