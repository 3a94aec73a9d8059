"""SQL for the reference PMS: dialect-aware upserts, chunked lookups, and row <-> model conversion."""

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from data_contracts import tables
from data_contracts.models import Consent, Dispense, Patient, PmsRequest, Prescription

# Well under SQLite's and PostgreSQL's bound-parameter limits, so a big batch is a few queries, not one per id.
CHUNK = 900

PRESCRIPTION_COLUMNS = tuple(Prescription.model_fields)
DISPENSE_COLUMNS = tuple(Dispense.model_fields)
CONSENT_COLUMNS = tuple(Consent.model_fields)


def chunks(values: Iterable[str]) -> Iterator[list[str]]:
    """Distinct values in sorted slices of at most CHUNK."""
    ordered = sorted(set(values))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def utc(value: datetime) -> datetime:
    """Aware UTC; SQLite hands back naive timestamps, which rxinbox always writes in UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def dialect_insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL both do)."""
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise RuntimeError(f"the reference PMS supports SQLite and PostgreSQL, not {name}")


def upsert(conn: Connection, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, replacing every column of a row whose primary key already exists."""
    if not rows:
        return
    insert = dialect_insert(conn, table)
    updates = {column.name: insert.excluded[column.name] for column in table.columns if column.name != key}
    conn.execute(insert.on_conflict_do_update(index_elements=[key], set_=updates), list(rows))


def select_in(conn: Connection, table: Table, column: str, values: Iterable[str], *order: ColumnElement) -> list[Any]:
    """Rows whose column is one of values, fetched in chunks, each chunk sorted by order."""
    # Every value falls in exactly one chunk, so rows grouped by that column keep the order.
    rows: list[Any] = []
    for part in chunks(values):
        rows.extend(conn.execute(select(table).where(table.c[column].in_(part)).order_by(*order)).all())
    return rows


def load_by_key(conn: Connection, table: Table, key: str, values: Iterable[str], from_row: Any) -> dict[str, Any]:
    """Stored records whose key is one of values, as models keyed by that key."""
    return {getattr(row, key): from_row(row) for row in select_in(conn, table, key, values)}


def write_keyed(conn: Connection, table: Table, key: str, records: list[Any], from_row: Any, to_row: Any) -> Counter:
    """Upsert the records that are new or differ from what is stored; count created/updated/unchanged."""
    existing = load_by_key(conn, table, key, [getattr(r, key) for r in records], from_row)
    counts: Counter = Counter()
    changed = []
    for record in records:
        before = existing.get(getattr(record, key))
        if before == record:
            counts["unchanged"] += 1
            continue
        counts["created" if before is None else "updated"] += 1
        changed.append(to_row(record))
    upsert(conn, table, key, changed)
    return counts


def write_consents(conn: Connection, consents: list[Consent]) -> Counter:
    """Consents have no natural primary key: (patient, channel, purpose, recorded_at) identifies one."""
    table = tables.consents
    existing: dict[tuple, tuple[int, Consent]] = {}
    for row in select_in(conn, table, "patient_id", {c.patient_id for c in consents}, table.c.id):
        stored = consent_from_row(row)
        existing.setdefault(consent_key(stored), (row.id, stored))
    counts: Counter = Counter()
    new_rows = []
    for consent in consents:
        found = existing.get(consent_key(consent))
        if found is None:
            counts["created"] += 1
            new_rows.append(consent_row(consent))
        elif found[1] != consent:
            counts["updated"] += 1
            change = {"granted": consent.granted, "source": consent.source}
            conn.execute(table.update().where(table.c.id == found[0]).values(**change))
        else:
            counts["unchanged"] += 1
    if new_rows:
        conn.execute(table.insert(), new_rows)
    return counts


def existing_ids(conn: Connection, table: Table, column: str, values: Iterable[str]) -> set[str]:
    """Which of values are present in table.column."""
    found: set[str] = set()
    for part in chunks(values):
        found.update(conn.execute(select(table.c[column]).where(table.c[column].in_(part))).scalars())
    return found


# --- conversions ---------------------------------------------------------------------------------


def patient_row(patient: Patient) -> dict[str, Any]:
    email = str(patient.email) if patient.email is not None else None
    return {
        "patient_id": patient.patient_id,
        "first_name": patient.first_name,
        "last_name": patient.last_name,
        "date_of_birth": patient.date_of_birth.isoformat(),
        "email": email,
        "email_index": tables.active_cipher().blind_index(email),
        "phone": patient.phone,
        "preferred_language": patient.preferred_language,
        "allergies": list(patient.allergies),
    }


def patient_from_row(row: Any) -> Patient:
    return Patient(
        patient_id=row.patient_id,
        first_name=row.first_name,
        last_name=row.last_name,
        date_of_birth=date.fromisoformat(row.date_of_birth),
        email=row.email,
        phone=row.phone,
        preferred_language=row.preferred_language,
        allergies=row.allergies or [],
    )


def prescription_row(prescription: Prescription) -> dict[str, Any]:
    return prescription.model_dump()


def prescription_from_row(row: Any) -> Prescription:
    return Prescription.model_validate({name: getattr(row, name) for name in PRESCRIPTION_COLUMNS})


def dispense_row(dispense: Dispense) -> dict[str, Any]:
    return dispense.model_dump()


def dispense_from_row(row: Any) -> Dispense:
    return Dispense.model_validate({name: getattr(row, name) for name in DISPENSE_COLUMNS})


def consent_row(consent: Consent) -> dict[str, Any]:
    return {**consent.model_dump(), "recorded_at": utc(consent.recorded_at)}


def consent_from_row(row: Any) -> Consent:
    values = {name: getattr(row, name) for name in CONSENT_COLUMNS}
    values["recorded_at"] = utc(values["recorded_at"])
    return Consent.model_validate(values)


def consent_key(consent: Consent) -> tuple[str, str, str, datetime]:
    """What identifies a consent record: who, which channel and purpose, and when it was given."""
    return (consent.patient_id, consent.channel, consent.purpose, utc(consent.recorded_at))


def request_row(request: PmsRequest) -> dict[str, Any]:
    return {**request.model_dump(), "created_at": utc(request.created_at)}


def request_from_row(row: Any) -> PmsRequest:
    values = dict(row._mapping)
    values["created_at"] = utc(values["created_at"])
    return PmsRequest.model_validate(values)

