"""Identity gate: is the sender exactly one patient, writing for themself under their own name?"""

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Sequence

from data_contracts.models import ParsedMessage, Patient


# What the sender wrote themself comes first; a long tail (forwarded threads, pasted leaflets) is not read.
MAX_TEXT = 10_000


class IdentityStatus(StrEnum):
    verified = "verified"
    no_sender = "no_sender"
    unknown_sender = "unknown_sender"
    shared_address = "shared_address"
    name_mismatch = "name_mismatch"
    third_party = "third_party"


@dataclass(frozen=True)
class IdentityCheck:
    """The gate's verdict; detail names the rule, never the patient (it goes into the audit trail)."""

    status: IdentityStatus
    patient: Patient | None
    rule_id: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.status is IdentityStatus.verified


_LETTER_MAP = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "ß": "ss"})
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)
_NAME_LINE = re.compile(r"^[^\W\d_][\w'’.\-]*(?:[ ,]+[^\W\d_][\w'’.\-]*){0,3}$", re.UNICODE)
_CLOSING_WORDS = (
    r"(?:(?:best|kind|warm|many)?\s*regards|thanks?(?: you)?|thank you|cheers|sincerely|yours(?: sincerely)?|"
    r"best(?: wishes)?|all the best|mvh\.?|m\.v\.h\.?|med venlig hilsen|venlig hilsen|(?:mange |de bedste )?hilsner?|"
    r"kh\.?|k\.h\.?|kærlig hilsen|tak(?: på forhånd)?|på forhånd tak)"
)
_CLOSING = re.compile(rf"^{_CLOSING_WORDS}[\s,.!]*$", re.IGNORECASE)
_CLOSING_INLINE = re.compile(rf"^{_CLOSING_WORDS}[\s,.!-]+(.+)$", re.IGNORECASE)
# The lead-in is case-insensitive, the name itself must be capitalised ("this is urgent" names nobody).
_SELF_INTRO = re.compile(
    r"\b(?i:my name is|this is|mit navn er|jeg hedder)\s+"
    r"([A-ZÆØÅÄÖÜÉ][\w'’\-]*(?:\s+[A-ZÆØÅÄÖÜÉ][\w'’\-]*){0,2})"
)
_RELATIVE_EN = r"(?:mother|mum|mom|father|dad|wife|husband|partner|son|daughter|child|kid|baby|grandmother|" \
               r"grandfather|grandma|grandpa|brother|sister|neighbou?r|friend|aunt|uncle)"
_RELATIVE_DA = r"(?:mor|far|kone|mand|hustru|kæreste|søn|datter|barn|mormor|morfar|farmor|farfar|bror|søster|" \
               r"nabo|veninde|ven|moster|faster|onkel)"
_THIRD_PARTY = re.compile(
    rf"\b(?:on behalf of|på vegne af|(?:for|to) my {_RELATIVE_EN}\b|my {_RELATIVE_EN}'?s\b|"
    rf"(?:for|til) (?:min|mit) {_RELATIVE_DA}\b|(?:min|mit) {_RELATIVE_DA}s\b)",
    re.IGNORECASE,
)


def fold(text: str) -> str:
    """Lower-case, Danish letters spelled out in ASCII, accents removed: 'Søren' == 'Soren'."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(_LETTER_MAP))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


_ASCII_SPELLINGS = (("aa", "a"), ("oe", "o"), ("ae", "a"))


def _name_key(token: str) -> str:
    """'Søren', 'Soren' and 'Soeren' are one name; 'Aase' and 'Åse' too."""
    key = fold(token)
    for ascii_form, letter in _ASCII_SPELLINGS:
        key = key.replace(ascii_form, letter)
    return key


def _name_tokens(name: str) -> list[str]:
    return [_name_key(t) for t in _TOKEN.findall(name)]


_NOT_NAMES = frozenset(_name_key(word) for word in (
    "hi hello dear hej kære thanks thank tak regards hilsen hilsner mange venlig med mvh kh best sent from iphone "
    "android mobile privat "
    "private home work phone mail email e-mail".split()
))


def _looks_like_name(line: str) -> bool:
    line = line.strip()
    if not line or "@" in line or len(line) > 60 or not _NAME_LINE.match(line):
        return False
    tokens = _name_tokens(line)
    return bool(tokens) and line[0].isupper() and not any(t in _NOT_NAMES for t in tokens)


def claimed_names(parsed: ParsedMessage) -> list[str]:
    """Names the sender gives for themself: From display name, signature, sign-off, self-introduction."""
    names: list[str] = []
    if parsed.sender_name and _looks_like_name(parsed.sender_name.strip().strip('"\'')):
        names.append(parsed.sender_name.strip().strip('"\''))
    signature_lines = [line.strip().lstrip("- ").strip() for line in parsed.signature.splitlines() if line.strip()]
    first = signature_lines[0] if signature_lines else ""
    if first and not (_CLOSING.match(first) or _CLOSING_INLINE.match(first)) and _looks_like_name(first):
        names.append(first)
    body = parsed.body_text[:MAX_TEXT]
    # A sign-off may close the body or open the signature block ("Mange hilsner" / "Hanne Larsen").
    lines = [line.strip() for line in body.splitlines() if line.strip()] + signature_lines
    for i, line in enumerate(lines):
        inline = _CLOSING_INLINE.match(line)
        if inline and _looks_like_name(inline.group(1)):
            names.append(inline.group(1))
        elif i + 1 < len(lines) and _CLOSING.match(line) and _looks_like_name(lines[i + 1]):
            names.append(lines[i + 1])
    names.extend(m.group(1) for m in _SELF_INTRO.finditer(body) if _looks_like_name(m.group(1)))
    return list(dict.fromkeys(names))


def name_matches(claimed: str, patient: Patient) -> bool:
    """Every word of the claimed name is one of the patient's names (or its initial)."""
    record = _name_tokens(f"{patient.first_name} {patient.last_name}")
    tokens = _name_tokens(claimed)
    if not tokens:
        return True
    for token in tokens:
        if token in record:
            continue
        if len(token) == 1 and any(r.startswith(token) for r in record):
            continue
        return False
    return True


def check_identity(parsed: ParsedMessage, patients: Sequence[Patient]) -> IdentityCheck:
    """Exactly one patient on the sender's address, and nothing in the mail contradicting their name."""
    if not parsed.sender:
        return IdentityCheck(IdentityStatus.no_sender, None, "identity.no_sender", "no sender address")
    if not patients:
        return IdentityCheck(IdentityStatus.unknown_sender, None, "identity.unknown_sender",
                             "the sender address belongs to no patient")
    if len({p.patient_id for p in patients}) > 1:
        return IdentityCheck(IdentityStatus.shared_address, None, "identity.shared_address",
                             f"{len(patients)} patients share the sender address")
    patient = patients[0]
    for name in claimed_names(parsed):
        if not name_matches(name, patient):
            return IdentityCheck(IdentityStatus.name_mismatch, None, "identity.name_mismatch",
                                 "a name in the mail does not match the patient record")
    if _THIRD_PARTY.search(f"{parsed.subject}\n{parsed.body_text[:MAX_TEXT]}"):
        return IdentityCheck(IdentityStatus.third_party, None, "identity.third_party",
                             "the mail is written for someone else")
    return IdentityCheck(IdentityStatus.verified, patient, "identity.verified", "one patient, name consistent")
