"""Header fields decoded from their raw form: addresses, text, dates, message ids, machine-sent signs."""

import re
from datetime import datetime, timezone
from email.headerregistry import HeaderRegistry
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import ClassVar, NamedTuple

from core.charsets import decode_words, repair_8bit_all
from core.ids import normalise_message_id

MAX_ADDRESSES = 500
MAX_REFERENCES = 100
STRICT_ADDRESS_CHARS = 2000  # the RFC 5322 parser is quadratic: ~100 addresses take 10 ms, 1000 take 120 ms
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")
_LINE_BREAK = re.compile(r"[\r\n]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
# One plain "Name <a@b>" or bare address: the full RFC 5322 parser would give the same answer, slower.
_SIMPLE_ADDRESS = re.compile(
    r"""^\s*(?:"([^"\\\r\n=]*)"|([A-Za-z0-9' _-]*?))\s*<([A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>\s*$"""
    r"|^\s*([A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\s*$"
)
_FORWARD_SUBJECT = re.compile(r"^\s*(?:\[[^\]]{0,40}\]\s*)?(?:fwd?|vs|wg|tr|fw)\s*:", re.I)
_BOUNCE_SENDER = re.compile(r"^(?:mailer-daemon|postmaster)(?:@|$)", re.I)
DELIVERY_REPORT = "delivery status report"  # mime_walk's reason for a message/delivery-status part
# The reasons auto_generated gives for an answer to a message (an auto-reply, a bounce, a delivery report); list
# mail and 'auto-generated' notifications such as a web form's answer nothing.
_REPLY_REASONS = ("Auto-Submitted: auto-replied", "x-autoreply", "x-autorespond", "Precedence: auto_reply",
                  DELIVERY_REPORT, "bounce sender", "automatic subject")
# Subjects that mail systems put on automatic mail; anchored, so "Out of office hours pick-up?" stays human.
_AUTO_SUBJECTS = (
    (
        "out of office",
        re.compile(
            r"^(?:auto(?:matic)?\s*(?:reply|response)\s*:\s*)?out of (?:the )?office\b\s*(?:[:(\-]|$|(?:auto)?-?reply|re\s*:)",
            re.I,
        ),
    ),
    ("automatic reply", re.compile(r"^(?:automatic reply|auto(?:-|\s)?reply|autoreply|auto response)\s*(?::|$)", re.I)),
    ("autosvar", re.compile(r"^(?:autosvar|automatisk svar)\s*(?::|$)", re.I)),
    ("fraværsmeddelelse", re.compile(r"^(?:[\w ]{0,20}:\s*)?fraværsmeddelelse\b", re.I)),
    ("undeliverable", re.compile(r"^(?:undeliverable|undelivered mail|kan ikke leveres|ikke leveret)\b", re.I)),
    ("delivery status notification", re.compile(r"^delivery status notification\b", re.I)),
    ("mail delivery failed", re.compile(r"^(?:mail delivery failed|delivery failure|failure notice)\b", re.I)),
    ("returned mail", re.compile(r"^returned mail\b", re.I)),
)


class Address(NamedTuple):
    name: str
    address: str  # lower-cased addr-spec; may lack a domain when the header had none


class MemoHeaders(HeaderRegistry):
    """Parses each distinct header once per message; the MIME parser asks for Content-Type a dozen times."""

    _classes: ClassVar[dict[str, type]] = {}  # the base registry builds a new class on every lookup; names hold no data

    def __init__(self) -> None:
        super().__init__()
        self._memo: dict[tuple[str, str], object] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(key)
        return cls

    def __call__(self, name: str, value: str):  # type: ignore[override]
        key = (name.lower(), value)
        header = self._memo.get(key)
        if header is None:
            header = self._memo[key] = super().__call__(name, value)
        return header


class Headers(NamedTuple):
    fields: dict[str, list[str]]  # lower-case name -> values unfolded onto one line, encoded words still encoded
    raw_8bit: bool  # some value carried bytes above 127 outside any encoded word
    repaired: bool  # ...and they were not UTF-8, so their charset had to be guessed


def header_map(message: Message) -> Headers:
    """Header values by lower-case name, unfolded, with raw 8-bit bytes decoded to text."""
    items = [(name, value if isinstance(value, str) else str(value)) for name, value in message.raw_items()]
    values = [value for _, value in items]
    raw_8bit = not all(value.isascii() for value in values)
    repaired = False
    if raw_8bit:
        values, repaired = repair_8bit_all(values)
    fields: dict[str, list[str]] = {}
    for (name, _), value in zip(items, values, strict=True):
        fields.setdefault(name.strip().lower(), []).append(_LINE_BREAK.sub(" ", _UNFOLD.sub("", value)).strip())
    return Headers(fields, raw_8bit, repaired)


def first(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values else None


def text_value(raw: str | None) -> tuple[str, bool]:
    """Unstructured header (Subject, display names) decoded, with runs of whitespace folded to one space."""
    if not raw:
        return "", False
    text, repaired = decode_words(raw)
    return " ".join(_CONTROL.sub(" ", text).split()), repaired


def addresses(registry: HeaderRegistry, name: str, raw: str | None, defects: list[str]) -> list[Address]:
    """Parse an address header with the RFC 5322 parser, falling back to the lenient compat32 splitter."""
    if not raw:
        return []
    value = raw  # encoded words stay encoded: decoded first, a "," inside a name would split the address
    simple = _SIMPLE_ADDRESS.match(value)
    if simple:
        display = " ".join((simple.group(1) or simple.group(2) or "").split())
        return [Address(display, (simple.group(3) or simple.group(4)).lower())]
    if len(value) > STRICT_ADDRESS_CHARS:
        defects.append("address_header_too_long")
        found = getaddresses([value])
    else:
        try:
            header = registry(name, value)
            defects.extend(type(defect).__name__ for defect in header.defects)
            found = [(a.display_name, a.addr_spec) for a in header.addresses]
        except Exception:  # the RFC 5322 parser has crash bugs on hostile input; compat32's splitter does not
            defects.append("address_header_unparseable")
            found = getaddresses([value])
    result = []
    for display, spec in found[:MAX_ADDRESSES]:
        spec = _CONTROL.sub("", "".join(spec.split())).strip("<>").lower()
        if spec:
            result.append(Address(text_value(display)[0] if display else "", spec))
    return result


def mailboxes(found: list[Address]) -> list[str]:
    """Addresses with a domain, in order, without repeats."""
    return list(dict.fromkeys(a.address for a in found if "@" in a.address))


def parse_date(raw: str | None) -> datetime | None:
    """Aware datetime from a Date header; a missing zone ("-0000") is taken as UTC; None when unreadable."""
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(raw)
    except Exception:  # the stdlib raises TypeError, ValueError or IndexError depending on the damage
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def message_ids(raw: str | None, limit: int = MAX_REFERENCES) -> list[str]:
    """Message ids in a References / In-Reply-To header, normalised, in order, without repeats."""
    if not raw:
        return []
    found = _MSG_ID.findall(raw) or [token for token in raw.split() if "@" in token]
    ids = (normalise_message_id(f"<{token}>") for token in found)
    return list(dict.fromkeys(i for i in ids if i))[:limit]


def looks_forwarded(subject: str) -> bool:
    return _FORWARD_SUBJECT.match(subject) is not None


def auto_generated(fields: dict[str, list[str]], sender: str | None, subject: str, report: str | None) -> str | None:
    """A short reason when the message was sent by a machine (auto-reply, bounce, list mail), else None."""
    auto = (first(fields, "auto-submitted") or "").strip().lower()
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto.split(';')[0].strip()[:40]}"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if name in fields:
            return f"{name} header"
    precedence = (first(fields, "precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    for name in ("list-id", "list-unsubscribe"):
        if name in fields:
            return f"mailing list ({name} header)"
    if report:
        return report
    if bounce := _bounce_sender(sender):
        return bounce
    if (first(fields, "return-path") or "").strip() == "<>":
        return "empty Return-Path (bounce or auto-reply)"
    return _automatic_subject(subject)


def machine_reply(sender: str | None, subject: str, reason: str | None = None) -> str | None:
    """A short reason when the message is a bounce or an automatic reply, by auto_generated's reason or by the
    sender or subject alone, else None: such mail hands back, below its own few lines, the message it answers."""
    if reason and reason.startswith(_REPLY_REASONS):
        return reason
    return _bounce_sender(sender) or _automatic_subject(subject)


def _bounce_sender(sender: str | None) -> str | None:
    return f"bounce sender ({sender.split('@')[0]})" if sender and _BOUNCE_SENDER.match(sender) else None


def _automatic_subject(subject: str) -> str | None:
    for label, pattern in _AUTO_SUBJECTS:
        if pattern.match(subject):
            return f'automatic subject ("{label}")'
    return None
