"""The reference pharmacy management system: patients, prescriptions, dispenses, consents in rxinbox's DB."""

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from sqlalchemy import Connection, Engine, Table, select

from connectors import pms_queries as q
from connectors.database import reading
from data_contracts import tables
from data_contracts.models import Consent, Contract, Dispense, Patient, PharmacyExport, PmsRequest, Prescription
from rxinbox.settings import get_settings

log = logging.getLogger(__name__)

# The field that names a record in an error message; consents have no id of their own.
RECORD_KEYS = {
    "patients": "patient_id",
    "prescriptions": "prescription_id",
    "dispenses": "dispense_id",
    "consents": "patient_id",
}
MAX_LISTED_ERRORS = 50

# Tables with a primary key, in foreign-key order: (section, table, key, from_row, to_row).
SECTIONS = (
    ("patients", tables.patients, "patient_id", q.patient_from_row, q.patient_row),
    ("prescriptions", tables.prescriptions, "prescription_id", q.prescription_from_row, q.prescription_row),
    ("dispenses", tables.dispenses, "dispense_id", q.dispense_from_row, q.dispense_row),
)


class PmsImportError(ValueError):
    """An import file was rejected; every problem names its record and field. Nothing was imported."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        listed = errors[:MAX_LISTED_ERRORS]
        if len(errors) == 1:
            message = errors[0]
        else:
            message = f"{len(errors)} problems in the import file:\n" + "\n".join(f"  {e}" for e in listed)
            if len(errors) > len(listed):
                message += f"\n  ... and {len(errors) - len(listed)} more"
        super().__init__(message)


class ImportCounts(Contract):
    """What an import did to one table."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0


class ImportReport(Contract):
    """What an import did, per table (counts only: safe to log and print)."""

    pharmacy: str
    patients: ImportCounts = Field(default_factory=ImportCounts)
    prescriptions: ImportCounts = Field(default_factory=ImportCounts)
    dispenses: ImportCounts = Field(default_factory=ImportCounts)
    consents: ImportCounts = Field(default_factory=ImportCounts)

    def summary(self) -> str:
        parts = []
        for name in RECORD_KEYS:
            counts: ImportCounts = getattr(self, name)
            parts.append(f"{name}: {counts.created} new, {counts.updated} updated, {counts.unchanged} unchanged")
        return "; ".join(parts)

    def __str__(self) -> str:
        return self.summary()


# --- validation ------------------------------------------------------------------------------------


def record_label(data: Any, section: str, index: int) -> str:
    """'prescriptions[12] (prescription_id=rx-0013)', or without the id where the record has none."""
    label = f"{section}[{index}]"
    records = data.get(section) if isinstance(data, dict) else None
    if isinstance(records, list) and 0 <= index < len(records) and isinstance(records[index], dict):
        key = RECORD_KEYS[section]
        value = records[index].get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            label += f" ({key}={value})"
    return label


def describe_loc(data: Any, loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a readable path that names the record by its id."""
    path, rest = "", loc
    if len(loc) >= 2 and loc[0] in RECORD_KEYS and isinstance(loc[1], int):
        path, rest = record_label(data, loc[0], loc[1]), loc[2:]
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(file)"


def parse_export(data: Any) -> PharmacyExport:
    """Validate a whole import document or raise PmsImportError listing every problem."""
    try:
        return PharmacyExport.model_validate(data)
    except ValidationError as exc:
        errors = [f"{describe_loc(data, tuple(e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise PmsImportError(errors) from None


def _duplicates(section: str, records: list[Any], key: str, errors: list[str]) -> set[str]:
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        value = getattr(record, key)
        if value in seen:
            first = f"{section}[{seen[value]}]"
            errors.append(f"{section}[{index}] ({key}={value}).{key}: duplicate id, first used by {first}")
        else:
            seen[value] = index
    return set(seen)


def integrity_errors(export: PharmacyExport, conn: Connection) -> list[str]:
    """Duplicate ids, dangling references and impossible values, checked against the file and the database."""
    errors: list[str] = []
    patient_ids = _duplicates("patients", export.patients, "patient_id", errors)
    rx_ids = _duplicates("prescriptions", export.prescriptions, "prescription_id", errors)
    _duplicates("dispenses", export.dispenses, "dispense_id", errors)

    referenced = {r.patient_id for r in [*export.prescriptions, *export.consents]} - patient_ids
    known_patients = patient_ids | q.existing_ids(conn, tables.patients, "patient_id", referenced)
    referenced_rx = {d.prescription_id for d in export.dispenses} - rx_ids
    known_rx = rx_ids | q.existing_ids(conn, tables.prescriptions, "prescription_id", referenced_rx)
    missing = "(not in this file or the database)"

    for index, rx in enumerate(export.prescriptions):
        label = f"prescriptions[{index}] (prescription_id={rx.prescription_id})"
        if rx.patient_id not in known_patients:
            errors.append(f"{label}.patient_id: unknown patient {rx.patient_id!r} {missing}")
        if rx.expires_on < rx.issued_on:
            errors.append(f"{label}.expires_on: {rx.expires_on} is before issued_on {rx.issued_on}")
        if rx.refills_used > rx.refills_authorized:
            authorized = rx.refills_authorized
            errors.append(f"{label}.refills_used: {rx.refills_used} is more than refills_authorized {authorized}")
    for index, dispense in enumerate(export.dispenses):
        if dispense.prescription_id not in known_rx:
            label = f"dispenses[{index}] (dispense_id={dispense.dispense_id})"
            errors.append(f"{label}.prescription_id: unknown prescription {dispense.prescription_id!r} {missing}")
    first_consent: dict[tuple, int] = {}
    for index, consent in enumerate(export.consents):
        label = f"consents[{index}] (patient_id={consent.patient_id})"
        if consent.patient_id not in known_patients:
            errors.append(f"{label}.patient_id: unknown patient {consent.patient_id!r} {missing}")
        earlier = first_consent.setdefault(q.consent_key(consent), index)
        if earlier != index:
            errors.append(f"{label}.recorded_at: duplicate of consents[{earlier}] (same channel, purpose and time)")
    return errors


# --- the PMS ---------------------------------------------------------------------------------------


class ReferencePMS:
    """The PMS rxinbox ships with: imported from a JSON file, read in batches by the sweep."""

    def __init__(self, engine: Engine, pharmacy_name: str | None = None) -> None:
        self.engine = engine
        self.pharmacy_name = pharmacy_name or get_settings().pharmacy_name

    def import_file(self, path: Path | str) -> ImportReport:
        """Import a PharmacyExport JSON file (all or nothing)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            problem = f"{path.name}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            raise PmsImportError([problem]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PmsImportError([f"{path.name}: cannot be read: {exc}"]) from None
        return self.import_data(data)

    def import_data(self, data: Any) -> ImportReport:
        """Validate everything, then upsert everything in one transaction; on any problem write nothing."""
        export = data if isinstance(data, PharmacyExport) else parse_export(data)
        report = ImportReport(pharmacy=export.pharmacy)
        with self.engine.begin() as conn:
            errors = integrity_errors(export, conn)
            if errors:
                raise PmsImportError(errors)
            for section, table, key, from_row, to_row in SECTIONS:
                counts = q.write_keyed(conn, table, key, getattr(export, section), from_row, to_row)
                setattr(report, section, ImportCounts(**counts))
            report.consents = ImportCounts(**q.write_consents(conn, export.consents))
        log.info("PMS import done: %s", report.summary())
        return report

    def export(self) -> PharmacyExport:
        """Everything the PMS holds, as an import file (sorted by id, so exports are comparable)."""
        p, rx, d, c = (tables.patients.c, tables.prescriptions.c, tables.dispenses.c, tables.consents.c)
        with reading(self.engine) as conn:
            patients = conn.execute(select(tables.patients).order_by(p.patient_id)).all()
            prescriptions = conn.execute(select(tables.prescriptions).order_by(rx.prescription_id)).all()
            dispenses = conn.execute(select(tables.dispenses).order_by(d.dispense_id)).all()
            order = (c.patient_id, c.recorded_at, c.channel, c.purpose, c.id)
            consents = conn.execute(select(tables.consents).order_by(*order)).all()
        return PharmacyExport(
            pharmacy=self.pharmacy_name,
            patients=[q.patient_from_row(r) for r in patients],
            prescriptions=[q.prescription_from_row(r) for r in prescriptions],
            dispenses=[q.dispense_from_row(r) for r in dispenses],
            consents=[q.consent_from_row(r) for r in consents],
        )

    # --- batch lookups for the sweep: one query per call (per 900 keys), never one per message ---

    def patients_by_email(self, addresses: Iterable[str]) -> dict[str, list[Patient]]:
        """Patients per lower-cased address, found by blind index (every address asked for is a key)."""
        cipher = tables.active_cipher()
        wanted = {a.strip().lower() for a in addresses if a and a.strip()}
        by_index = {cipher.blind_index(a): a for a in wanted}
        result: dict[str, list[Patient]] = {a: [] for a in wanted}
        with reading(self.engine) as conn:
            rows = q.select_in(conn, tables.patients, "email_index", by_index, tables.patients.c.patient_id)
        for row in rows:
            result[by_index[row.email_index]].append(q.patient_from_row(row))
        return result

    def patients_by_id(self, patient_ids: Iterable[str]) -> dict[str, Patient]:
        """The patients with these ids (unknown ids are left out)."""
        with reading(self.engine) as conn:
            return q.load_by_key(conn, tables.patients, "patient_id", patient_ids, q.patient_from_row)

    def prescriptions_for(self, patient_ids: Iterable[str]) -> dict[str, list[Prescription]]:
        """Each patient's prescriptions, newest issued first (every id asked for is a key)."""
        c = tables.prescriptions.c
        order = (c.issued_on.desc(), c.prescription_id)
        return self._grouped(tables.prescriptions, "patient_id", patient_ids, q.prescription_from_row, order)

    def dispenses_for(self, prescription_ids: Iterable[str]) -> dict[str, list[Dispense]]:
        """Each prescription's dispenses, newest first (every id asked for is a key)."""
        c = tables.dispenses.c
        order = (c.dispensed_on.desc(), c.dispense_id.desc())
        return self._grouped(tables.dispenses, "prescription_id", prescription_ids, q.dispense_from_row, order)

    def consents_for(self, patient_ids: Iterable[str]) -> dict[str, list[Consent]]:
        """Each patient's consent records, newest first: the first per channel and purpose decides."""
        c = tables.consents.c
        order = (c.recorded_at.desc(), c.id.desc())
        return self._grouped(tables.consents, "patient_id", patient_ids, q.consent_from_row, order)

    def requests_for_cases(self, case_ids: Iterable[str]) -> dict[str, list[PmsRequest]]:
        """The refill/renewal requests filed for each case, oldest first (every id asked for is a key)."""
        c = tables.pms_requests.c
        order = (c.created_at, c.request_id)
        return self._grouped(tables.pms_requests, "case_id", case_ids, q.request_from_row, order)

    def _grouped(self, table: Table, column: str, ids: Iterable[str], convert: Any, order: tuple) -> dict[str, list]:
        wanted = set(ids)
        result: dict[str, list[Any]] = {key: [] for key in wanted}
        with reading(self.engine) as conn:
            for row in q.select_in(conn, table, column, wanted, *order):
                result[getattr(row, column)].append(convert(row))
        return result

    def create_request(self, req: PmsRequest, conn: Connection | None = None) -> bool:
        """File a refill/renewal request; True if new, False if one with this id already existed."""
        if conn is None:
            with self.engine.begin() as own:
                return self.create_request(req, own)
        insert = q.dialect_insert(conn, tables.pms_requests).values(q.request_row(req))
        insert = insert.on_conflict_do_nothing(index_elements=["request_id"])
        insert = insert.returning(tables.pms_requests.c.request_id)
        # RETURNING, not rowcount: SQLAlchemy reports rowcount -1 for this insert under psycopg.
        created = conn.execute(insert).first() is not None
        outcome = "created" if created else "already filed"
        log.info("PMS request %s for prescription %s: %s", req.request_id, req.prescription_id, outcome)
        return created

