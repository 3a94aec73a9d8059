"""One message's facts for the rules: every field scanned once, the pharmacy's own quoted words blanked."""

import re

from core.mail_headers import machine_reply
from core.triage.inputs import TriageInput
from core.triage.lexicon import LexiconSet
from core.triage.rules import RuleContext

# Longer fields are scanned up to this many characters (pathological mail must not stall a sweep).
MAX_FIELD_CHARS = 20_000
# Where a bounce or an automatic reply starts handing back the message it answers: an original-message rule,
# a bounce's copy line, a '>' quote, an attribution line or a From:/Sent: header pair.
_RETURNED_ORIGINAL = re.compile(
    r"^[ \t]*(?:-{2,}[ \t]*(?:original(?:e)?[ \t]+(?:message|meddelelse|besked)|oprindelig[ \t]+(?:meddelelse|besked)"
    r"|forwarded message|videresendt[ \t]+(?:meddelelse|besked))[ \t]*-*"
    r"|(?:-+[ \t]*)?(?:below this line is a copy of the message|this is a copy of the message|the original message"
    r"(?: was| follows)?|original message follows)\b"
    r"|>"
    # An attribution ('On 3 May, Anna wrote:'), not any line ending in 'wrote:' ('... her doctor wrote:').
    r"|(?:on|den|d\.|am|le|el)\b[^\n]{0,200}\b(?:wrote|skrev|schrieb|a écrit|escribió)[ \t]*:[ \t]*$"
    r"|(?:from|fra)[ \t]*:[^\n]*\n[ \t]*(?:sent|sendt|date|dato|subject|emne|to|til)[ \t]*:)",
    re.IGNORECASE | re.MULTILINE)


def own_quote_pattern(markers: tuple[str, ...]) -> re.Pattern | None:
    """An attribution line ('On ..., Søndergade Apotek wrote:') naming the pharmacy itself."""
    names = [re.escape(m) for m in markers if m]
    if not names:
        return None
    # Only a line that ends in 'wrote:' or is a 'From:' header: a patient's own line that names the pharmacy
    # ('Hej Søndergade Apotek, jeg har fra i morges ...') must never blank the rest of the message.
    return re.compile(rf"^[^\n]{{0,200}}(?:{'|'.join(names)})[^\n]{{0,120}}\b(?:wrote|skrev)\s*:?[ \t]*$|"
                      rf"^[ \t>]*(?:from|fra)\s*:[^\n]*(?:{'|'.join(names)})[^\n]*$", re.IGNORECASE | re.MULTILINE)


# Any attribution line or 'From:' header, quoted or not: where an earlier message of someone else begins.
_ATTRIBUTION = re.compile(r"^[ \t>]*(?:[^\n]{0,200}\b(?:wrote|skrev)\s*:?[ \t]*|(?:from|fra)\s*:[^\n]*)$",
                          re.IGNORECASE)


# A reply whose own lines say its answers stand inside our quoted text ('my answers are below in red', 'mine
# svar står med rødt nedenfor'): an Outlook inline reply puts the patient's words between our lines, unmarked,
# so blanking our quote would blank them too. Such a reply is read whole; our own advice in it may then
# escalate a mail that needed no pharmacist, which is the safe side.
_INLINE_TARGET = (r"(?:below|inline|in[\s-]?line|in\s+(?:red|blue|green|bold|capitals|caps|the\s+text"
                  r"|your\s+(?:e-?mail|message|mail|text)))")
_DA_INLINE_TARGET = (r"(?:nedenfor|herunder|nedenunder|inde\s+i|i\s+(?:teksten|din\s+mail|mailen|jeres\s+mail"
                     r"|beskeden)|med\s+(?:r(?:ø|oe|o)dt|bl(?:å|aa|a)t|gr(?:ø|oe|o)nt|fed))")
_INLINE_ANSWERS = re.compile(
    rf"\b(?:(?:my\s+)?(?:answers?|replies|reply|responses?|comments?|notes?)\s+(?:are\s+|is\s+)?{_INLINE_TARGET}"
    rf"|(?:answered|replied|commented|responded)\s+(?:\w+\s+)?{_INLINE_TARGET}"
    r"|see\s+(?:my\s+)?(?:(?:answers?|replies|comments?|notes?)\s+)?(?:below|inline)"
    rf"|(?:mine\s+)?(?:svar|kommentarer|bem(?:æ|ae)rkninger|noter)\s+(?:st(?:å|aa|a)r\s+|er\s+)?{_DA_INLINE_TARGET}"
    rf"|(?:svaret|svarer|kommenteret|skrevet)\s+(?:\w+\s+)?{_DA_INLINE_TARGET}"
    r"|se\s+(?:mine\s+(?:svar|kommentarer)\s+)?(?:nedenfor|herunder|nedenunder))\b", re.IGNORECASE)


def announces_inline_answers(body: str, body_quote: re.Match | None) -> bool:
    """The reply's own lines, above our quote in its body (all of the body when our quote is in its quoted
    part), say its answers stand inside that quote."""
    return _INLINE_ANSWERS.search(body, 0, body_quote.start() if body_quote else len(body)) is not None


def blank_own_quotes(text: str, pattern: re.Pattern | None, match: re.Match | None) -> str:
    """The pharmacy's own earlier words quoted in a reply are blanked (same length, so offsets hold):
    our advice ('if you have chest pain, call 112') is not a signal from the patient. The blanking stops at
    the next attribution line that does not name the pharmacy ('>> On 19 Nov, Wendy Carr wrote:'): the
    patient's own earlier message, quoted inside our reply, is still the patient's words and still escalates
    ('his voice has gone hoarse since the new inhaler' under 'Tuesday at 4 is perfect')."""
    if pattern is None or match is None:  # match: the pattern's first match in the text
        return text
    lines = text[match.end():].split("\n")[1:]
    quoted = [line for line in lines if line.strip()]
    # A '>' block ends at its first unquoted line; any quote ends where someone else's earlier message begins.
    in_block = bool(quoted) and quoted[0].lstrip().startswith(">")
    end = match.end()
    for line in lines:
        if (in_block and line.strip() and not line.lstrip().startswith(">")
                or _ATTRIBUTION.match(line) and not pattern.match(line)):
            break
        end += len(line) + 1
    return blank(text, match.start(), min(end + 1, len(text)))


def blank(text: str, start: int, end: int) -> str:
    """The text with [start, end) blanked (same length, newlines kept, so offsets hold)."""
    return text[:start] + "".join(c if c == "\n" else " " for c in text[start:end]) + text[end:]


def is_machine_reply(item: TriageInput) -> bool:
    """A bounce or an automatic reply, by the parser's verdict or by its sender or subject alone."""
    return machine_reply(item.sender, item.subject, item.auto_generated) is not None


def blank_returned_original(text: str) -> str:
    """Everything a bounce or an automatic reply hands back below its own lines is blanked: it is the pharmacy's
    own mail ('your Elvanse is ready'), not the sender's words. The machine's own lines stay scanned."""
    match = _RETURNED_ORIGINAL.search(text)
    return text if match is None else blank(text, match.start(), len(text))


def message_context(lexicons: LexiconSet, item: TriageInput, own_quotes: re.Pattern | None = None,
                    fields: frozenset[str] | None = None) -> RuleContext:
    """Scan the fields of one message that are read (None: all) against every lexicon (the model's view is
    added later). A machine reply's context has what it hands back blanked, and keeps the whole text as
    `unblanked` for the suspicious rules: a bounce can be forged, and what it claims we sent can be a lure."""
    body, quoted = item.body[:MAX_FIELD_CHARS], item.quoted[:MAX_FIELD_CHARS]
    # Where our own quote starts, found once for the inline check and the blanking both.
    body_quote = own_quotes.search(body) if own_quotes is not None and body else None
    quoted_quote = own_quotes.search(quoted) if own_quotes is not None and quoted else None
    if (body_quote or quoted_quote) and announces_inline_answers(body, body_quote):
        body_quote = quoted_quote = None  # the patient wrote between our lines: nothing of the reply is blanked
    texts = {
        "subject": item.subject[:MAX_FIELD_CHARS],
        "body": blank_own_quotes(body, own_quotes, body_quote),
        "quoted": blank_own_quotes(quoted, own_quotes, quoted_quote),
        "html": item.hidden_text[:MAX_FIELD_CHARS],
        "attachment": "\n".join(item.attachment_names), "sender": item.sender or "",
    }
    ctx = _scanned(lexicons, texts, item, fields)
    if not is_machine_reply(item):
        return ctx
    subject = texts["subject"]
    # 'Autosvar: Your Elvanse is ready': past the machine's own prefix, the subject is ours too.
    handed_back = {**texts, "body": blank_returned_original(texts["body"]), "quoted": "",
                   "subject": blank(subject, subject.find(":") + 1, len(subject)) if ":" in subject else subject}
    machine = _scanned(lexicons, handed_back, item, fields)
    machine.unblanked = ctx
    return machine


def _scanned(lexicons: LexiconSet, texts: dict[str, str], item: TriageInput,
             fields: frozenset[str] | None) -> RuleContext:
    scans = {name: lexicons.scan(text) for name, text in texts.items() if text and (fields is None or name in fields)}
    return RuleContext(scans=scans, texts=texts, pms=item.pms, auto_generated=bool(item.auto_generated),
                       has_attachments=bool(item.attachment_names))
