"""One message's facts for the rules: every field scanned once, the pharmacy's own quoted words blanked."""

import re

from core.triage.inputs import TriageInput
from core.triage.lexicon import LexiconSet
from core.triage.rules import RuleContext

# Longer fields are scanned up to this many characters (pathological mail must not stall a sweep).
MAX_FIELD_CHARS = 20_000


def own_quote_pattern(markers: tuple[str, ...]) -> re.Pattern | None:
    """An attribution line ('On ..., Søndergade Apotek wrote:') naming the pharmacy itself."""
    names = [re.escape(m) for m in markers if m]
    if not names:
        return None
    # Only a line that ends in 'wrote:' or is a 'From:' header: a patient's own line that names the pharmacy
    # ('Hej Søndergade Apotek, jeg har fra i morges ...') must never blank the rest of the message.
    return re.compile(rf"^[^\n]{{0,200}}(?:{'|'.join(names)})[^\n]{{0,120}}\b(?:wrote|skrev)\s*:?[ \t]*$|"
                      rf"^[ \t>]*(?:from|fra)\s*:[^\n]*(?:{'|'.join(names)})[^\n]*$", re.IGNORECASE | re.MULTILINE)


def blank_own_quotes(text: str, pattern: re.Pattern | None) -> str:
    """The pharmacy's own earlier words quoted in a reply are blanked (same length, so offsets hold):
    our advice ('if you have chest pain, call 112') is not a signal from the patient."""
    match = pattern.search(text) if pattern is not None and text else None
    if match is None:
        return text
    start = match.start()
    lines = text[match.end():].split("\n")[1:]
    quoted = [line for line in lines if line.strip()]
    if quoted and quoted[0].lstrip().startswith(">"):
        end = match.end()
        for line in lines:
            if line.strip() and not line.lstrip().startswith(">"):
                break
            end += len(line) + 1
        end = min(end + 1, len(text))
    else:
        end = len(text)
    blanked = "".join(c if c == "\n" else " " for c in text[start:end])
    return text[:start] + blanked + text[end:]


def message_context(lexicons: LexiconSet, item: TriageInput, own_quotes: re.Pattern | None = None) -> RuleContext:
    """Scan every field of one message against every lexicon (the model's view is added later)."""
    texts = {
        "subject": item.subject[:MAX_FIELD_CHARS],
        "body": blank_own_quotes(item.body[:MAX_FIELD_CHARS], own_quotes),
        "quoted": blank_own_quotes(item.quoted[:MAX_FIELD_CHARS], own_quotes),
        "html": item.hidden_text[:MAX_FIELD_CHARS],
        "attachment": "\n".join(item.attachment_names), "sender": item.sender or "",
    }
    scans = {name: lexicons.scan(text) for name, text in texts.items() if text}
    return RuleContext(scans=scans, texts=texts, pms=item.pms, auto_generated=bool(item.auto_generated),
                       has_attachments=bool(item.attachment_names))
