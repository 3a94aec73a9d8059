"""What triage reads about one message: its texts, machine-sent flag and the sender's PMS facts."""

from dataclasses import dataclass

from core.identity import IdentityStatus


@dataclass(frozen=True)
class PmsFacts:
    """Facts from the PMS about the sender: drug names and the identity gate's verdict, never a patient's name."""

    known_patient: bool
    controlled_drugs: tuple[str, ...] = ()    # active prescriptions with a controlled schedule
    drugs: tuple[str, ...] = ()               # all active prescription drug names
    prior_auth_missing: tuple[str, ...] = ()  # drugs whose prior authorisation is missing or denied
    identity: IdentityStatus | None = None    # check_identity's status for the mail; None when not checked


@dataclass(frozen=True)
class TriageInput:
    """One message as triage sees it; e-mail content is data and never instructions."""

    id: str
    sender: str | None
    subject: str
    body: str                   # the new text (ParsedMessage.body_text)
    quoted: str = ""            # quoted or forwarded text: clinical signals here still escalate
    hidden_text: str = ""       # text hidden in the HTML part
    attachment_names: tuple[str, ...] = ()
    auto_generated: str | None = None
    pms: PmsFacts | None = None
