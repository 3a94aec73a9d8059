"""Walk a MIME tree: pick the text a person wrote, list attachments, note forwarded messages and defects."""

import binascii
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from core.charsets import decode_text, decode_words
from core.ids import sha256_hex
from core.mail_headers import DELIVERY_REPORT, first, header_map, text_value
from core.mime_text import clean_text, html_to_text, may_hide_text
from data_contracts.models import Attachment

MAX_DEPTH = 40
MAX_TEXT_BYTES = 2 * 1024 * 1024  # longer text parts are logs or spam; the start is what a reader acts on
MAX_HTML_CHARS = 512 * 1024  # the stdlib HTML parser manages ~1 MB/s of dense markup
_REPORTS = {
    "message/delivery-status": DELIVERY_REPORT,
    "message/disposition-notification": "read receipt (disposition notification)",
}
_SUMMARY_FIELDS = (("From", "from"), ("Date", "date"), ("Subject", "subject"), ("To", "to"))


@dataclass
class MimeContent:
    """What the walk found; lists are shared with nested walks so attachments and defects add up."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)  # markup, converted only if it ends up as the text
    forwarded: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    charset_repaired: bool = False
    report: str | None = None  # why the MIME structure itself says "machine-sent"

    def nested(self) -> "MimeContent":
        return MimeContent(attachments=self.attachments, defects=self.defects, hidden=self.hidden)

    def adopt_flags(self, other: "MimeContent") -> None:
        self.charset_repaired = self.charset_repaired or other.charset_repaired
        self.report = self.report or other.report

    def has_plain(self) -> bool:
        return any(part.strip() for part in self.plain)

    def text(self) -> tuple[str, bool]:
        """The best text: plain parts joined, else the HTML parts converted; and whether it came from HTML."""
        if self.has_plain():
            scan_hidden(self.html, self)
            return "\n\n".join(self.plain), False
        converted = [html_to_text(markup) for markup in self.html]
        self.hidden.extend(c.hidden for c in converted if c.hidden)
        return "\n\n".join(c.text for c in converted), bool(self.html)


def _safe(call, default=None):
    try:
        return call()
    except Exception:  # a damaged parameter must cost only that parameter, not the message
        return default


def _filename(part: Message) -> str | None:
    name = _safe(part.get_filename)
    if not name:
        return None
    text, _ = decode_words(name)
    return clean_text(text).replace("\n", " ")[:255] or None


def _payload(part: Message) -> bytes:
    data = _safe(lambda: part.get_payload(decode=True), b"")
    return data if isinstance(data, bytes) else b""


def walk(part: Message, content: MimeContent, depth: int = 0) -> None:
    """Collect the text, attachments and forwarded messages of part into content."""
    if depth > MAX_DEPTH:
        content.defects.append("mime_nesting_too_deep")
        return
    ctype = _safe(part.get_content_type, "text/plain")
    if part.is_multipart():
        children = [child for child in part.get_payload() if isinstance(child, Message)]
        if ctype == "multipart/alternative":
            _alternative(children, content, depth)
        elif ctype in ("message/rfc822", "message/global"):
            for child in children:
                _attached_message(_base64_message(part, child), content, depth)
        elif ctype == "message/external-body":
            # Only a pointer to a file stored elsewhere; listed so the pointer is not mistaken for text.
            name = _safe(lambda: part.get_param("name"))
            filename = decode_words(str(name))[0] if name else None
            pointer = Attachment(filename=filename, content_type=ctype, size=0, sha256=sha256_hex(b""))
            content.attachments.append(pointer)
        elif ctype in _REPORTS:
            content.report = content.report or _REPORTS[ctype]
        else:
            if ctype == "multipart/report" and "delivery-status" in str(_safe(lambda: part.get_param("report-type"))):
                content.report = _REPORTS["message/delivery-status"]
            for child in children:
                walk(child, content, depth + 1)
        _note_defects(part, content)
        return
    _leaf(part, ctype, content, depth)
    _note_defects(part, content)


def _note_defects(part: Message, content: MimeContent) -> None:
    content.defects.extend(type(defect).__name__ for defect in getattr(part, "defects", ()))


def _alternative(children: list[Message], content: MimeContent, depth: int) -> None:
    """Prefer the richest plain-text version; the others still give their attachments and hidden text."""
    versions = []
    for child in children:
        version = content.nested()
        walk(child, version, depth + 1)
        content.adopt_flags(version)
        versions.append(version)
    with_plain = [v for v in versions if v.has_plain()]
    chosen = with_plain[-1] if with_plain else next((v for v in reversed(versions) if v.html), None)
    for version in versions:
        if version is chosen:
            content.plain.extend(version.plain)
            content.html.extend(version.html)
            content.forwarded.extend(version.forwarded)
        else:
            scan_hidden(version.html, content)


def _base64_message(part: Message, child: Message) -> Message:
    """The real message when Outlook base64-encoded an attached mail (the parser sees headerless base64)."""
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    payload = child.get_payload()
    if encoding != "base64" or child.keys() or not isinstance(payload, str):
        return child
    data = _safe(lambda: binascii.a2b_base64(payload.encode("ascii", "ignore")))
    inner = _safe(lambda: BytesParser(policy=compat32).parsebytes(data)) if data else None
    return inner if isinstance(inner, Message) else child


def _attached_message(inner: Message, content: MimeContent, depth: int) -> None:
    """A message/rfc822 part: a short header summary plus its text, kept as a forwarded message."""
    nested = content.nested()
    walk(inner, nested, depth + 1)
    content.adopt_flags(nested)
    fields = header_map(inner).fields
    summary = []
    for label, name in _SUMMARY_FIELDS:
        value, _ = text_value(first(fields, name))
        if value:
            summary.append(f"{label}: {value}")
    text, _ = nested.text()
    parts = ["\n".join(summary), text, *nested.forwarded]
    content.forwarded.append(clean_text("\n\n".join(p for p in parts if p.strip())))


def _leaf(part: Message, ctype: str, content: MimeContent, depth: int) -> None:
    disposition = _safe(part.get_content_disposition)
    filename = _filename(part)
    if ctype.startswith("multipart/"):
        # A multipart the parser could not split (no or wrong boundary): its raw text is all there is.
        _text(part, "text/plain", content)
        return
    # Inline text/plain with a file name is shown in the body by mail clients, so it is read as body too.
    shown = filename is None or (disposition == "inline" and ctype == "text/plain")
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and shown:
        _text(part, ctype, content)
        if filename is None:
            return
    data = _payload(part)
    inline = disposition == "inline" or (disposition is None and part.get("content-id") is not None)
    content.attachments.append(
        Attachment(filename=filename, content_type=ctype, size=len(data), sha256=sha256_hex(data), inline=inline)
    )


def _text(part: Message, ctype: str, content: MimeContent) -> None:
    data = _payload(part)
    if not data.strip():
        return
    truncated = len(data) > MAX_TEXT_BYTES
    decoded = decode_text(data[:MAX_TEXT_BYTES] if truncated else data, _safe(part.get_content_charset))
    if truncated:
        content.defects.append("text_part_truncated")
    if decoded.lossy:
        content.defects.append("undecodable_text_bytes")
    content.charset_repaired = content.charset_repaired or decoded.repaired
    if ctype == "text/plain":
        content.plain.append(decoded.text)
    elif len(decoded.text) > MAX_HTML_CHARS:
        content.html.append(decoded.text[:MAX_HTML_CHARS])
        content.defects.append("html_part_truncated")
    else:
        content.html.append(decoded.text)


def scan_hidden(markup_parts: list[str], content: MimeContent) -> None:
    """Hidden text of HTML versions that were not chosen for the body (the plain version won)."""
    for markup in markup_parts:
        if may_hide_text(markup):
            hidden = html_to_text(markup).hidden
            if hidden:
                content.hidden.append(hidden)
