"""Detectors for hostile content (base64 blobs, invisible characters) and quarantine of injected text."""

import base64
import binascii
import re
from collections.abc import Callable, Iterable

Span = tuple[int, int]

_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4}\s?){12,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_URLISH = re.compile(r"(?:https?://|www\.|[\w.-]+@)\S*$")
# Characters that hide or reorder text: zero-width marks, bidi overrides and Unicode tag characters.
_HIDDEN_STRONG = re.compile("[\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]+")
_HIDDEN_WEAK = re.compile("[\u200b\u200c\u200e\u200f\u2060-\u2064\u180e]")
_SENTENCE_END = re.compile(r"[.!?\n]")
MIN_BASE64 = 64


def base64_blobs(text: str) -> list[Span]:
    """Long base64 runs in the text (encoded payloads smuggled past a reader), not URLs or ids."""
    spans = []
    for m in _BASE64.finditer(text):
        blob = re.sub(r"\s", "", m.group())
        if len(blob) < MIN_BASE64:
            continue
        line_start = text.rfind("\n", 0, m.start()) + 1
        if _URLISH.search(text[line_start:m.start()].split(" ")[-1] if m.start() > line_start else ""):
            continue
        classes = sum((any(c.islower() for c in blob), any(c.isupper() for c in blob), any(c.isdigit() for c in blob)))
        if classes < 3:
            continue
        usable = blob[: len(blob) - len(blob) % 4]
        try:
            base64.b64decode(usable, validate=True)
        except (binascii.Error, ValueError):
            continue
        spans.append((m.start(), m.end()))
    return spans


def invisible_text(text: str) -> list[Span]:
    """Bidi overrides and tag characters anywhere, or several zero-width marks: text meant not to be seen."""
    spans = [(m.start(), m.end()) for m in _HIDDEN_STRONG.finditer(text)]
    weak = [(m.start(), m.end()) for m in _HIDDEN_WEAK.finditer(text)]
    if len(weak) >= 3:
        spans += weak
    return sorted(spans)


# Detectors a rule may name (policy_rules.rule_schema.DETECTORS lists the same names).
DETECTORS: dict[str, Callable[[str], list[Span]]] = {
    "base64_blob": base64_blobs,
    "invisible_text": invisible_text,
}


def sentence_bounds(text: str, start: int, end: int) -> Span:
    """The sentence (or line) around a span."""
    left = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    right_match = _SENTENCE_END.search(text, end)
    right = right_match.end() if right_match else len(text)
    return left, right


def without_spans(text: str, spans: Iterable[Span]) -> str:
    """The text with the sentences holding these spans removed: injected instructions never reach the model."""
    cuts = sorted(sentence_bounds(text, s, e) for s, e in spans)
    if not cuts:
        return text
    out, position = [], 0
    for left, right in cuts:
        if right <= position:
            continue
        out.append(text[position:max(left, position)])
        position = right
    out.append(text[position:])
    return " ".join(part.strip() for part in out if part.strip())
