"""Records a sweep writes for one message, as one unit."""

from dataclasses import dataclass, field

from data_contracts.models import AuditEvent, Case, OutboundMessage, PmsRequest, QuarantineRecord


@dataclass
class StoredItem:
    """Everything one message produces, written together or not at all."""

    ref: str
    message_key: str
    content_sha256: str
    case: Case | None = None
    quarantine: QuarantineRecord | None = None
    outbound: list[OutboundMessage] = field(default_factory=list)
    pms_requests: list[PmsRequest] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)
