"""SQLAlchemy tables for what rxinbox stores; PHI columns are encrypted by the column type."""

import json
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from core.crypto import Cipher

metadata = MetaData()

_cipher: Cipher | None = None


def use_cipher(cipher: Cipher) -> None:
    """Install the cipher the encrypted column types use (done once by the database connector)."""
    global _cipher
    _cipher = cipher


def active_cipher() -> Cipher:
    if _cipher is None:
        raise RuntimeError("no cipher installed: open the database through connectors.database")
    return _cipher


class EncryptedText(TypeDecorator):
    """Text encrypted with the installed cipher; the database only ever sees ciphertext."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return active_cipher().encrypt(value)

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        return active_cipher().decrypt(value)


class EncryptedJSON(TypeDecorator):
    """A JSON document encrypted as a whole (evidence with matched text, drafts)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return active_cipher().encrypt(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        plain = active_cipher().decrypt(value)
        return None if plain is None else json.loads(plain)


TS = DateTime(timezone=True)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mailbox", String(200), nullable=False),
    Column("message_key", String(600), nullable=False),
    Column("ref", String(1000), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("status", String(20), nullable=False),  # processed | quarantined
    Column("processed_at", TS, nullable=False),
    Column("marked", Boolean, nullable=False, default=False),  # mailbox told it is done
    UniqueConstraint("mailbox", "message_key", name="uq_messages_mailbox_key"),
)

cases = Table(
    "cases",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("mailbox", String(200), nullable=False),
    Column("message_key", String(600), nullable=False),
    Column("sender", EncryptedText),
    Column("sender_index", String(64), index=True),
    Column("subject", EncryptedText),
    Column("received_at", TS),
    Column("intent", String(40), nullable=False, index=True),
    Column("secondary_intents", JSON, nullable=False),
    Column("escalate", Boolean, nullable=False, index=True),
    Column("reasons", JSON, nullable=False),
    Column("priority", String(20), nullable=False),
    Column("language", String(5), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("needs_reply", Boolean, nullable=False),
    Column("evidence", EncryptedJSON),
    Column("action", String(40), nullable=False, index=True),
    Column("action_reason", Text, nullable=False),
    Column("outcome", String(60)),
    Column("patient_id", String(64), index=True),
    Column("draft", EncryptedJSON),
    Column("summary", EncryptedJSON),
    Column("status", String(20), nullable=False, default="open"),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("mailbox", "message_key", name="uq_cases_mailbox_key"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mailbox", String(200), nullable=False),
    Column("message_key", String(600), nullable=False),
    Column("ref", String(1000), nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw_path", Text, nullable=False),
    Column("quarantined_at", TS, nullable=False),
    UniqueConstraint("mailbox", "message_key", name="uq_quarantine_mailbox_key"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("outbound_id", String(64), primary_key=True),  # idempotency key
    Column("case_id", String(64), ForeignKey("cases.case_id"), nullable=False, index=True),
    Column("kind", String(10), nullable=False),  # send | draft
    Column("to_addr", EncryptedText, nullable=False),
    Column("subject", EncryptedText, nullable=False),
    Column("body", EncryptedText, nullable=False),
    Column("in_reply_to", Text),
    Column("references", JSON, nullable=False),
    Column("status", String(20), nullable=False, default="pending", index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", TS, nullable=False),
    Column("sent_at", TS),
    # Delivery claims the oldest pending replies in small batches: walked in this order, not sorted each time.
    Index("ix_outbox_status_created", "status", "created_at", "outbound_id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", TS, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("event", String(100), nullable=False, index=True),
    Column("subject", String(600), nullable=False, index=True),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
)

# One row; writers lock it so the chain stays linear under concurrent sweeps.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

patients = Table(
    "patients",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("first_name", EncryptedText, nullable=False),
    Column("last_name", EncryptedText, nullable=False),
    Column("date_of_birth", EncryptedText, nullable=False),
    Column("email", EncryptedText),
    Column("email_index", String(64), index=True),
    Column("phone", EncryptedText),
    Column("preferred_language", String(5), nullable=False),
    Column("allergies", EncryptedJSON, nullable=False),
)

prescriptions = Table(
    "prescriptions",
    metadata,
    Column("prescription_id", String(64), primary_key=True),
    Column("patient_id", String(64), ForeignKey("patients.patient_id"), nullable=False, index=True),
    Column("drug", String(200), nullable=False),
    Column("strength", String(100), nullable=False),
    Column("form", String(60), nullable=False),
    Column("directions", EncryptedText, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("days_supply", Integer, nullable=False),
    Column("refills_authorized", Integer, nullable=False),
    Column("refills_used", Integer, nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("prescriber", EncryptedText, nullable=False),
    Column("controlled_schedule", String(5)),
    Column("dk_dispensing_group", String(10)),
    Column("payer", String(100), nullable=False),
    Column("prior_auth_required", Boolean, nullable=False),
    Column("prior_auth_status", String(20)),
    Column("in_stock", Boolean, nullable=False),
    Column("status", String(20), nullable=False),
)

dispenses = Table(
    "dispenses",
    metadata,
    Column("dispense_id", String(64), primary_key=True),
    Column("prescription_id", String(64), ForeignKey("prescriptions.prescription_id"), nullable=False),
    Column("dispensed_on", Date, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("days_supply", Integer, nullable=False),
    Index("ix_dispenses_rx_date", "prescription_id", "dispensed_on"),
)

consents = Table(
    "consents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("patient_id", String(64), ForeignKey("patients.patient_id"), nullable=False, index=True),
    Column("channel", String(10), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("recorded_at", TS, nullable=False),
    Column("source", String(100), nullable=False),
)

pms_requests = Table(
    "pms_requests",
    metadata,
    Column("request_id", String(64), primary_key=True),  # idempotency key from case + prescription
    Column("kind", String(20), nullable=False),
    Column("prescription_id", String(64), ForeignKey("prescriptions.prescription_id"), nullable=False),
    Column("patient_id", String(64), ForeignKey("patients.patient_id"), nullable=False, index=True),
    Column("case_id", String(64), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("ready_on", Date),
    Column("created_at", TS, nullable=False),
)
