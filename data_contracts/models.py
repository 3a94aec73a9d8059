"""The one schema: pydantic models for every record that flows through rxinbox."""

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class Contract(BaseModel):
    """Base for all records: unknown fields are an error, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=False, use_enum_values=False)


class Intent(StrEnum):
    refill_request = "refill_request"
    prescription_transfer = "prescription_transfer"
    order_status = "order_status"
    appointment = "appointment"
    lab_followup = "lab_followup"
    billing = "billing"
    insurance = "insurance"
    clinical_question = "clinical_question"
    general_inquiry = "general_inquiry"
    complaint = "complaint"
    other = "other"


class Reason(StrEnum):
    controlled_substance = "controlled_substance"
    early_refill_controlled = "early_refill_controlled"
    adverse_reaction = "adverse_reaction"
    allergy = "allergy"
    new_symptoms = "new_symptoms"
    unclear_dosage = "unclear_dosage"
    urgent = "urgent"
    clinical_judgment = "clinical_judgment"
    missing_prior_authorization = "missing_prior_authorization"
    suspicious = "suspicious"
    low_confidence = "low_confidence"


class Priority(StrEnum):
    urgent = "urgent"
    high = "high"
    normal = "normal"
    low = "low"


class Action(StrEnum):
    escalate = "escalate"
    draft_for_approval = "draft_for_approval"
    auto_send = "auto_send"
    close_without_reply = "close_without_reply"
    quarantine = "quarantine"


Language = Literal["en", "da"]


# --- mail ---------------------------------------------------------------------------------


class InboundMessage(Contract):
    """A message as a mailbox connector hands it over: raw bytes plus where it came from."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    mailbox: str
    ref: str = Field(description="Connector-native reference: file name, IMAP UID, Graph id.")
    raw: bytes
    folder: str | None = None
    received_at: datetime | None = None


class Attachment(Contract):
    """An attachment is listed, never opened or written out."""

    filename: str | None
    content_type: str
    size: int = Field(ge=0)
    sha256: str
    inline: bool = False


class ParsedMessage(Contract):
    """RFC 822/MIME reduced to what triage and drafting need."""

    message_key: str = Field(description="Idempotency key within a mailbox: Message-ID or content hash.")
    message_id: str | None
    content_sha256: str
    sender: str | None = Field(description="Lower-cased address of From (or Sender / Reply-To).")
    sender_name: str | None = None
    reply_to: str | None = None
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    subject: str = ""
    date: datetime | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    thread_id: str = Field(description="Root of the thread: first Reference, else In-Reply-To, else own id.")
    body_text: str = Field(default="", description="The new text the sender wrote.")
    quoted_text: str = Field(default="", description="Earlier messages quoted or forwarded below it.")
    signature: str = ""
    html_only: bool = False
    hidden_text: str = Field(default="", description="Text hidden by HTML styling; scanned for injected instructions.")
    charset_repaired: bool = Field(default=False, description="Declared charset was wrong; text was re-detected.")
    attachments: list[Attachment] = Field(default_factory=list)
    auto_generated: str | None = Field(
        default=None, description="Why this looks machine-sent (auto-reply, bounce, list mail), else None."
    )
    defects: list[str] = Field(default_factory=list)


class QuarantineRecord(Contract):
    """A message that could not be parsed or failed its contract, kept raw with the reason."""

    mailbox: str
    message_key: str
    ref: str
    reason: str
    raw_path: str
    quarantined_at: datetime


# --- decisions ------------------------------------------------------------------------------


class Evidence(Contract):
    """Why a decision was taken: a rule (or the model) and the text it matched."""

    rule_id: str
    reason: Reason | None = None
    field: Literal["subject", "body", "quoted", "sender", "html", "attachment", "pms", "model"] = "body"
    matched_text: str = ""
    start: int | None = None
    end: int | None = None


class TriageResult(Contract):
    """The triage decision: intent, escalation and the evidence behind both."""

    intent: Intent
    secondary_intents: list[Intent] = Field(default_factory=list)
    escalate: bool
    reasons: list[Reason] = Field(default_factory=list)
    priority: Priority = Priority.normal
    language: Language = "en"
    confidence: float = Field(ge=0.0, le=1.0)
    needs_reply: bool = True
    evidence: list[Evidence] = Field(default_factory=list)
    model_version: str | None = None


class Source(Contract):
    """One thing a draft was built from, so a compliance officer can check every fact."""

    kind: Literal["template", "pms", "knowledge_base", "policy"]
    ref: str = Field(description="Template id, PMS record id, or knowledge-base doc#heading.")
    detail: str | None = None


class Passage(Contract):
    """A knowledge-base section retrieved for a message, with its score."""

    doc: str
    heading: str
    language: Language
    text: str
    score: float


class PmsRequest(Contract):
    """A request rxinbox files in the PMS (refill or renewal); its id makes it idempotent."""

    request_id: str
    kind: Literal["refill", "renewal"]
    prescription_id: str
    patient_id: str
    case_id: str
    status: Literal["open", "done", "cancelled"] = "open"
    ready_on: date | None = None
    created_at: datetime


class Draft(Contract):
    """A reply drafted for a case, with everything it was built from."""

    template_id: str
    language: Language
    subject: str
    body: str
    facts: dict[str, str] = Field(default_factory=dict)
    sources: list[Source] = Field(default_factory=list)


class Case(Contract):
    """What rxinbox decided for one message."""

    case_id: str
    mailbox: str
    message_key: str
    sender: str | None
    subject: str
    received_at: datetime | None
    triage: TriageResult
    action: Action
    action_reason: str
    outcome: str | None = None
    patient_id: str | None = None
    draft: Draft | None = None
    summary: dict | None = Field(default=None, description="Pharmacist summary of an escalated case (PHI).")
    created_at: datetime


class OutboundMessage(Contract):
    """A reply waiting in (or sent from) the outbox; the idempotency key stops double sends."""

    outbound_id: str
    case_id: str
    kind: Literal["send", "draft"] = Field(description="send: deliver to the patient; draft: put in Drafts for review.")
    to: str
    subject: str
    body: str
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    status: Literal["pending", "sent", "failed"] = "pending"


class AuditEvent(Contract):
    """One link of the tamper-evident audit chain. Details carry ids and reasons, never PHI."""

    seq: int | None = None
    at: datetime
    actor: str
    event: str
    subject: str = Field(description="What the event is about: a message key, case id or record id.")
    details: dict = Field(default_factory=dict)
    prev_hash: str | None = None
    hash: str | None = None


# --- pharmacy management system ---------------------------------------------------------------


class Patient(Contract):
    """A patient of the pharmacy (PHI: stored encrypted)."""

    patient_id: str
    first_name: str
    last_name: str
    date_of_birth: date
    email: EmailStr | None = None
    phone: str | None = None
    preferred_language: Language = "da"
    allergies: list[str] = Field(default_factory=list)


class Prescription(Contract):
    """A prescription on file, with the facts refill eligibility needs."""

    prescription_id: str
    patient_id: str
    drug: str
    strength: str
    form: str = "tablet"
    directions: str
    quantity: int = Field(gt=0)
    days_supply: int = Field(gt=0)
    refills_authorized: int = Field(ge=0)
    refills_used: int = Field(ge=0)
    issued_on: date
    expires_on: date
    prescriber: str
    controlled_schedule: Literal["II", "III", "IV", "V"] | None = None
    dk_dispensing_group: Literal["A§4", "A", "B", "BEGR", "HA", "HX"] | None = None
    payer: str = "self"
    prior_auth_required: bool = False
    prior_auth_status: Literal["approved", "pending", "denied", "missing"] | None = None
    in_stock: bool = True
    status: Literal["active", "expired", "cancelled"] = "active"


class Dispense(Contract):
    """One dispensing of a prescription."""

    dispense_id: str
    prescription_id: str
    dispensed_on: date
    quantity: int = Field(gt=0)
    days_supply: int = Field(gt=0)


class Consent(Contract):
    """A patient's consent (or its withdrawal) for a channel and purpose."""

    patient_id: str
    channel: Literal["email", "sms"]
    purpose: Literal["refill_reminder", "appointment_reminder", "pickup_followup", "marketing"]
    granted: bool
    recorded_at: datetime
    source: str = "pharmacy"


class PharmacyExport(Contract):
    """The PMS import/export file: everything the reference PMS holds, validated as a whole."""

    schema_version: Literal[1] = 1
    pharmacy: str
    patients: list[Patient] = Field(default_factory=list)
    prescriptions: list[Prescription] = Field(default_factory=list)
    dispenses: list[Dispense] = Field(default_factory=list)
    consents: list[Consent] = Field(default_factory=list)


class SweepParams(Contract):
    """Parameters of the mailbox-sweep flow (shown as a form in the Prefect UI)."""

    source: str | None = Field(default=None, description="Folder of .eml files or a Maildir; default: home/mailbox.")
    mailbox: str | None = Field(default=None, description="Mailbox name; default from settings.")
    batch_size: int | None = Field(default=None, ge=1, le=5000)
    limit: int | None = Field(default=None, ge=1, description="Stop after this many new messages.")


class SweepSummary(Contract):
    """What a sweep did, as counts."""

    seen: int = 0
    processed: int = 0
    quarantined: int = 0
    skipped_duplicates: int = 0
    escalated: int = 0
    drafted: int = 0
    auto_sent: int = 0
    closed: int = 0
