"""Split a message's text into what the sender wrote now, what it quotes or forwards, and the signature."""

import re
from itertools import islice
from typing import NamedTuple

from core.mime_text import normalise_text, tidy_text

_MAIL = r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+"
_SAID = r"(?:wrote|writes|skrev|schrieb|a écrit|escribió)"
# "On Mon, 2 Apr 2012 at 18:26, Bob <bob@x> wrote:", "Den 3. apr. 2024 kl. 10.15 skrev Anna <a@x>:",
# "Anna Jensen skrev den 3. april 2024:". Each needs a digit (a date), so that a patient's own
# "Den læge, der skrev recepten, sagde:" is not taken for one; a bare "X wrote:" needs an address, time or year.
_ATTRIBUTION = re.compile(
    rf"^(?=.*\d)(?:On|Den|D\.|Am|Le|El)\s.{{1,300}}\b{_SAID}\b[^\n]{{0,200}}:$"
    rf"|^(?=.*\d).{{1,200}}\bskrev den\b.{{1,200}}:$"
    rf"|^.{{0,200}}(?:{_MAIL}|\b\d{{1,2}}[:.]\d{{2}}\b|\b(?:19|20)\d{{2}}\b).{{0,200}}\b{_SAID}\b[^:\n]{{0,100}}:$",
    re.I,
)
_ATTRIBUTION_START = re.compile(r"^(?:On|Den|D\.|Am|Le|El)\s", re.I)
_ORIGINAL = re.compile(
    r"^-{2,}\s*(?:Original Message|Oprindelig (?:meddelelse|besked|e-mail)|Original (?:meddelelse|besked)"
    r"|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}$",
    re.I,
)
_FORWARD = re.compile(
    r"^-{2,}\s*(?:Forwarded message|Videresendt (?:meddelelse|besked|e-mail|mail)|Weitergeleitete Nachricht)\s*-{2,}$"
    r"|^(?:Begin forwarded message|Start på videresendt (?:besked|meddelelse|e-mail|mail)):$",
    re.I,
)
_BLOCK_FROM = re.compile(r"^\*?(?:From|Fra|Von)\s*:\*?\s*\S", re.I)
_BLOCK_FIELD = re.compile(r"^\*?(Sent|Sendt|Date|Dato|Datum|To|Til|An|Subject|Emne|Betreff|Cc)\s*:", re.I)
_RULE = re.compile(r"^(?:_{8,}|-{8,})$")
_QUOTE = re.compile(r"^ ?>")
_SIG_DASHES = re.compile(r"^--\s?$")
_MOBILE = re.compile(
    r"^(?:Sent from my|Sent from (?:Outlook|Mail|Yahoo|Samsung)|Sendt fra min|Sendt fra (?:Outlook|Mail|Yahoo|Samsung)"
    r"|Get Outlook for|Hent Outlook til|Sent with (?:Sparrow|Spark|Airmail|BlackBerry)"
    r"|Sent via (?:BlackBerry|the Samsung)|Von meinem)",
    re.I,
)
_SIGN_OFF = re.compile(
    r"^(?:m\.?v\.?h|med venlig(?:e)? hils(?:en|ner)|venlig(?:e)? hils(?:en|ner)|vh|kh|kærlig(?:e)? hils(?:en|ner)"
    r"|(?:de )?bedste hilsner|mange hilsner|hilsen|best regards|kind regards|warm regards|warmest regards|regards"
    r"|best wishes|yours sincerely|sincerely|yours faithfully|yours truly)\b[\s,.!:-]*(?:\S.{0,40})?$",
    re.I,
)
_DATE_OR_ADDRESS = re.compile(r"@|\d")
_POSTSCRIPT = re.compile(r"^p\.?\s?s\b", re.I)
_SHORT = 60
_SIG_MAX_LINES = 15


class ReplySplit(NamedTuple):
    body: str
    quoted: str
    signature: str
    forwarded: bool  # the body is a forwarded message sent on without new text


def _is_quote(line: str) -> bool:
    return _QUOTE.match(line) is not None


def _outlook_block(lines: list[str], start: int) -> bool:
    fields = set()
    for line in lines[start + 1:start + 7]:
        match = _BLOCK_FIELD.match(line.strip())
        if match:
            fields.add(match.group(1).lower())
        elif line.strip():
            break
    return len(fields) >= 2


def _find_header(lines: list[str]) -> tuple[int, int, str] | None:
    """(first line, first line after the marker, kind) of the first reply or forward header."""
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line or _is_quote(raw):
            continue
        if _FORWARD.match(line):
            return index, index + 1, "forward"
        if _ORIGINAL.match(line):
            return index, index + 1, "original"
        if _BLOCK_FROM.match(line) and _outlook_block(lines, index):
            start = index - 1 if index and _RULE.match(lines[index - 1].strip()) else index
            return start, index, "outlook"
        if line.endswith(":") and _ATTRIBUTION.match(line):
            return index, index + 1, "reply"
        if _ATTRIBUTION_START.match(line) and not line.endswith(":"):
            for extra in (1, 2):  # clients wrap a long attribution line: "On ... <a@b>\nwrote:"
                joined = " ".join(part.strip() for part in lines[index:index + extra + 1])
                if joined.endswith(":") and _ATTRIBUTION.match(joined):
                    return index, index + extra + 1, "reply"
    return None


def _trailing_quote_start(lines: list[str]) -> int | None:
    """Start of a '>' block that runs to the end, taking an unrecognised 'X wrote:' line above it along."""
    start = None
    for index in range(len(lines) - 1, -1, -1):
        if _is_quote(lines[index]):
            start = index
        elif lines[index].strip():
            break
    if start is None:
        return None
    above = start - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    line = lines[above].rstrip() if above >= 0 else ""
    if not (line.endswith(":") and len(line) <= 250 and _DATE_OR_ADDRESS.search(line)):
        return start
    wrapped = lines[above - 1].rstrip() if above > 0 else ""
    if wrapped.endswith(("<", '"', ",")) or wrapped.count("<") > wrapped.count(">"):
        return above - 1  # the attribution was wrapped mid-address: "... <\nbob@x> wrote:"
    return above


def _short_tail(lines: list[str], limit: int) -> bool:
    rest = [line.strip() for line in lines if line.strip()]
    return len(rest) <= limit and all(len(line) <= _SHORT and not _POSTSCRIPT.match(line) for line in rest)


def _signature_start(lines: list[str]) -> int | None:
    """Where the signature begins: '-- ', a mobile footer, or a sign-off followed by a few short lines."""
    for index, line in enumerate(lines):
        if line == "-- " or (_SIG_DASHES.match(line) and len(lines) - index <= _SIG_MAX_LINES):
            return index
    # A sign-off is followed by at most four lines, so only the last five non-blank lines can start one.
    candidates = list(islice((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), 5))
    for index in reversed(candidates):
        stripped = lines[index].strip()
        if len(stripped) > _SHORT or not _short_tail(lines[index + 1:], 4):
            continue
        if _MOBILE.match(stripped) or _SIGN_OFF.match(stripped):
            return index
    return None


def _separate(lines: list[str], forward_hint: bool, depth: int = 0) -> tuple[list[str], list[str], list[str] | None]:
    """(new lines, quoted lines, forwarded lines when the quoted part is a forward) of a message's text."""
    header = _find_header(lines)
    cut = header[0] if header else len(lines)
    trailing = _trailing_quote_start(lines[:cut])
    if trailing is not None:
        cut = trailing
    body = [line for line in lines[:cut] if not _is_quote(line)]
    quoted = [line for line in lines[:cut] if _is_quote(line)]
    if header is None:
        return body, quoted + lines[cut:], None
    start, after, kind = header
    if kind == "reply" and cut == start and depth < 8:
        # "X wrote:" and a '>' block with text under it: bottom-posting or inline answers, which are new text.
        end = after
        while end < len(lines) and (not lines[end].strip() or _is_quote(lines[end])):
            end += 1
        if end < len(lines) and any(_is_quote(line) for line in lines[after:end]):
            more_body, more_quoted, forwarded = _separate(lines[end:], forward_hint, depth + 1)
            return body + [""] + more_body, quoted + lines[cut:end] + more_quoted, forwarded
    forwarded = lines[after:] if kind == "forward" or (forward_hint and kind != "reply") else None
    return body, quoted + lines[cut:], forwarded


def split_reply(text: str, forward_hint: bool = False) -> ReplySplit:
    """Split text into new text, quoted/forwarded text and signature; a bare forward keeps its content as body."""
    body, quoted, forwarded = _separate(normalise_text(text).split("\n"), forward_hint)
    while body and not body[-1].strip():
        body.pop()
    sig_at = _signature_start(body)
    signature = tidy_text("\n".join(body[sig_at:])) if sig_at is not None else ""
    new_text = tidy_text("\n".join(body[:sig_at] if sig_at is not None else body))
    if forwarded is not None and not new_text:
        # Nothing new above a forward: the forwarded message is the request itself.
        return ReplySplit(tidy_text("\n".join(forwarded)), "", signature, True)
    return ReplySplit(new_text, tidy_text("\n".join(quoted)), signature, False)
