"""Raw RFC 822 bytes to a ParsedMessage, or a quarantine reason; never an exception."""

import logging
import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import NamedTuple

from core.ids import body_fingerprint, message_key, normalise_message_id, sha256_hex
from core.mail_headers import (
    MemoHeaders, addresses, auto_generated, first, header_map, looks_forwarded, mailboxes, message_ids, parse_date,
    text_value,
)
from core.mime_text import hidden_html_text
from core.mime_walk import MimeContent, walk
from core.reply_split import split_reply
from data_contracts.models import ParsedMessage

__all__ = ["ParseOutcome", "hidden_html_text", "parse_many", "parse_message"]  # hidden_html_text: for triage

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 25 * 1024 * 1024
_STRICT_HEADER = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")  # what the stdlib parser takes for a header line
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_OBSOLETE_COLON = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]+:")  # "Subject  : x", RFC 822 obsolete syntax
_ESSENTIAL_HEADER = re.compile(rb"(?:from|to|subject|date|message-id|content-type|mime-version|reply-to)[ \t]*:", re.I)
_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_BOUNDARY_DEFECTS = frozenset(
    {"StartBoundaryNotFoundDefect", "NoBoundaryInMultipartDefect", "MultipartInvariantViolationDefect"}
)
_SIGNATURES = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Outlook .msg (OLE compound file), not an RFC 822 message"),
    (b"%PDF-", "PDF document, not an RFC 822 message"),
    (b"PK\x03\x04", "ZIP archive, not an RFC 822 message"),
    (b"\x1f\x8b", "gzip data, not an RFC 822 message"),
    (b"{\\rtf", "RTF document, not an RFC 822 message"),
)


@dataclass(frozen=True)
class ParseOutcome:
    """A parsed message, or None with the reason it was quarantined; the key is always set."""

    message_key: str
    content_sha256: str
    message: ParsedMessage | None
    reason: str | None


def _raw_key(raw: bytes) -> str:
    return "sha256:" + sha256_hex(raw)[:40]


def _header_end(data: bytes) -> int:
    """Index where the header block ends (the blank line), or the length when there is none."""
    ends = [i for i in (data.find(b"\n\n"), data.find(b"\n\r\n")) if i >= 0]
    return min(ends) if ends else len(data)


def _precheck(raw: bytes) -> str | None:
    """Why these bytes cannot be an e-mail at all, or None."""
    if len(raw) > MAX_MESSAGE_BYTES:
        return f"message larger than 25 MB ({len(raw)} bytes)"
    if not raw:
        return "empty message (0 bytes)"
    if raw.isspace():
        return "message contains only whitespace"
    for magic, reason in _SIGNATURES:
        if raw.startswith(magic):
            return reason
    data = _strip_leading(raw)
    head = data[: _header_end(data)]
    if b"\x00" in head:
        return "NUL byte in the message headers"
    lines = head.split(b"\n", 2)
    first_line = lines[1] if lines[0].startswith(b"From ") and len(lines) > 1 else lines[0]
    if not _HEADER_LINE.match(first_line):
        if _BINARY.search(head[:4096]):
            return "binary data, not an RFC 822 message"
        return "no RFC 822 header lines at the start (text without headers)"
    return None


def _strip_leading(raw: bytes) -> bytes:
    data = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    return data.lstrip(b"\r\n\t ")


def _prepare(raw: bytes, defects: list[str]) -> bytes:
    """Bytes the stdlib parser reads as intended: no BOM or blank lines first, no space before a header colon."""
    data = _strip_leading(raw)
    if len(data) != len(raw):
        defects.append("leading_whitespace_or_bom")
    cut = _header_end(data)
    lines = data[:cut].split(b"\n")
    if all(_STRICT_HEADER.match(line) or line[:1] in b" \t" for line in lines):
        return data  # what the stdlib parser reads as headers already: the usual case
    for index, line in enumerate(lines):
        if _OBSOLETE_COLON.match(line):
            lines[index] = _OBSOLETE_COLON.sub(rb"\1:", line, count=1)
            defects.append("obsolete_header_syntax")
    last_essential = max((i for i, line in enumerate(lines) if _ESSENTIAL_HEADER.match(line)), default=0)
    stray = [i for i in range(1, last_essential) if not _HEADER_LINE.match(lines[i]) and lines[i][:1] not in b" \t"]
    # A stray line mid-header would end the headers there and push From/Subject into the body;
    # when essential headers follow it, it is folded into the header above instead.
    for index in stray:
        lines[index] = b" " + lines[index]
    if stray:
        defects.append("stray_line_in_headers")
    return b"\n".join(lines) + data[cut:]


def _walk_with(data: bytes, chosen: policy.Policy) -> tuple[Message, MimeContent]:
    message = BytesParser(policy=chosen).parsebytes(data)
    content = MimeContent()
    walk(message, content)
    return message, content


def _parse_structure(data: bytes, registry: MemoHeaders, defects: list[str]) -> tuple[Message, MimeContent]:
    """policy.default first; compat32 when the modern header parser breaks or cannot read a boundary."""
    try:
        parsed = _walk_with(data, policy.default.clone(header_factory=registry))
    except Exception as exc:  # the modern parser has crash bugs on hostile headers; compat32 is the fallback
        log.info("policy.default failed (%s); retrying with compat32", type(exc).__name__)
        defects.append("compat32_fallback")
        return _walk_with(data, policy.compat32)
    if _BOUNDARY_DEFECTS.isdisjoint(parsed[1].defects):
        return parsed
    # compat32 reads some unquoted boundaries ("boundary=----=_Part_1") that the modern parser cuts short.
    try:
        retry = _walk_with(data, policy.compat32)
    except Exception:  # keep the modern result, defects and all
        return parsed
    if len(_BOUNDARY_DEFECTS.intersection(retry[1].defects)) < len(_BOUNDARY_DEFECTS.intersection(parsed[1].defects)):
        defects.append("compat32_boundary")
        return retry
    return parsed


class _Sender(NamedTuple):
    address: str | None  # lower-cased, with a domain: From, else Sender, else Reply-To
    name: str | None
    reply_to: str | None
    from_address: str | None  # From as written, even without a domain ("MAILER-DAEMON")


def _sender(fields: dict[str, list[str]], registry: MemoHeaders, defects: list[str]) -> _Sender:
    found_from = addresses(registry, "from", first(fields, "from"), defects)
    reply_to = mailboxes(addresses(registry, "reply-to", first(fields, "reply-to"), defects))
    candidates = mailboxes(found_from) or mailboxes(addresses(registry, "sender", first(fields, "sender"), defects))
    candidates = candidates or reply_to
    return _Sender(
        candidates[0] if candidates else None,
        next((a.name for a in found_from if a.name), None),
        reply_to[0] if reply_to else None,
        found_from[0].address if found_from else None,
    )


class _Texts(NamedTuple):
    body: str
    quoted: str
    signature: str
    html_only: bool


def _texts(content: MimeContent, subject: str) -> _Texts:
    """New text, quoted text and signature; an attached message stands in for a missing body."""
    text, from_html = content.text()
    split = split_reply(text, forward_hint=looks_forwarded(subject))
    body, quoted = split.body, split.quoted
    forwarded = "\n\n".join(content.forwarded)
    if forwarded and not body:
        body = forwarded  # a message forwarded as an attachment with nothing written above it is the request
    elif forwarded:
        quoted = "\n\n".join(q for q in (quoted, forwarded) if q)
    return _Texts(body, quoted, split.signature, from_html)


def _build(raw: bytes, content_sha: str) -> ParseOutcome:
    reason = _precheck(raw)
    if reason:
        return ParseOutcome(_raw_key(raw), content_sha, None, reason)
    defects: list[str] = []
    data = _prepare(raw, defects)
    registry = MemoHeaders()
    try:
        message, content = _parse_structure(data, registry, defects)
    except Exception as exc:  # compat32 failed too: nothing more the email package can do
        reason = f"email package cannot parse the message ({type(exc).__name__})"
        return ParseOutcome(_raw_key(raw), content_sha, None, reason)
    headers = header_map(message)
    fields = headers.fields
    subject, subject_repaired = text_value(first(fields, "subject"))
    sender = _sender(fields, registry, defects)
    texts = _texts(content, subject)
    if sender.address is None and not (texts.body or texts.quoted or texts.signature or subject):
        return ParseOutcome(_raw_key(raw), content_sha, None, "no sender address and no text")
    date_raw = first(fields, "date")
    date = parse_date(date_raw)
    if date_raw and date is None:
        defects.append("date_unparseable")
    if headers.raw_8bit:
        defects.append("raw_8bit_header_bytes")
    if content.hidden:
        defects.append("hidden_html_text")

    own_id = normalise_message_id(first(fields, "message-id"))
    key = message_key(own_id, body_fingerprint(raw, sender.address, date_raw, subject))
    references = message_ids(" ".join(fields.get("references", [])))
    in_reply_to = next(iter(message_ids(first(fields, "in-reply-to"), limit=1)), None)
    parsed = ParsedMessage(
        message_key=key,
        message_id=own_id,
        content_sha256=content_sha,
        sender=sender.address,
        sender_name=sender.name,
        reply_to=sender.reply_to,
        to=mailboxes(addresses(registry, "to", ", ".join(fields.get("to", [])), defects)),
        cc=mailboxes(addresses(registry, "cc", ", ".join(fields.get("cc", [])), defects)),
        subject=subject,
        date=date,
        in_reply_to=in_reply_to,
        references=references,
        thread_id=(references[:1] or [in_reply_to or own_id or key])[0],
        body_text=texts.body,
        quoted_text=texts.quoted,
        signature=texts.signature,
        html_only=texts.html_only,
        charset_repaired=content.charset_repaired or headers.repaired or subject_repaired,
        attachments=content.attachments,
        auto_generated=auto_generated(fields, sender.from_address or sender.address, subject, content.report),
        defects=list(dict.fromkeys(defects + content.defects)),
        hidden_text="\n".join(content.hidden)[:20_000],
    )
    return ParseOutcome(key, content_sha, parsed, None)


def parse_message(raw: bytes) -> ParseOutcome:
    """Parse one message; anything that cannot be a usable e-mail comes back quarantined with a reason."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):  # a caller bug, still an outcome, not an exception
        empty = sha256_hex(b"")
        return ParseOutcome("sha256:" + empty[:40], empty, None, "parser error: TypeError")
    raw = bytes(raw)
    content_sha = sha256_hex(raw)
    try:
        return _build(raw, content_sha)
    except Exception as exc:  # one hostile message must not stop a sweep; it is quarantined instead
        log.warning("parser error: %s", type(exc).__name__)
        return ParseOutcome(_raw_key(raw), content_sha, None, f"parser error: {type(exc).__name__}")


def parse_many(raws: list[bytes]) -> list[ParseOutcome]:
    """Parse a batch in order; one outcome per input."""
    return [parse_message(raw) for raw in raws]
