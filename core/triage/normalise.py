"""Text folding for matching: case, æøå → ae/oe/aa, diacritics, with a map back to original offsets."""

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

# Danish letters have no decomposition (ø) or decompose to a ring (å); fold them the way people type
# them without a Danish keyboard, before diacritics are stripped.
_SPECIAL = {
    "æ": "ae", "ø": "oe", "å": "aa", "ß": "ss", "œ": "oe", "ð": "d", "þ": "th", "ł": "l", "ı": "i",
    "\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'", "`": "'",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u00ad": "",
    "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": "",
}
DROPPED_LETTER_MIN = 6


def fold_char(char: str) -> str:
    """One character folded: lower case, Danish letters spelled out, diacritics removed (the fold table below
    caches it)."""
    lower = char.lower()
    parts = []
    for ch in lower:
        ch = _SPECIAL.get(ch, ch)
        if len(ch) == 1 and not ch.isascii():
            ch = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            ch = "".join(_SPECIAL.get(c, c) for c in ch.lower())
        parts.append(ch)
    return "".join(parts)


class _FoldTable(dict):
    """Code point -> folded text, filled on first sight, so str.translate folds a whole text in C."""

    def __missing__(self, code: int) -> str:
        folded = fold_char(chr(code))
        if len(folded) != 1:
            _UNEVEN.add(chr(code))  # kept even past the cap: an uneven text must never lose its offsets
        if len(self) < 65536:
            self[code] = folded
        return folded


_TABLE = _FoldTable()
_UNEVEN: set[str] = set()  # characters seen so far whose folded form is not one character


def fold(text: str) -> str:
    """The folded text, for classifier input and lexicon terms (no offsets kept)."""
    if text.isascii():
        return text.lower().replace("`", "'")
    return text.translate(_TABLE)


@dataclass(frozen=True, slots=True)
class Folded:
    """Folded text plus, when lengths differ, the original index of every folded character."""

    original: str
    text: str
    uneven: bool = False  # some character folded to more or fewer than one (æ → ae)
    _offsets: tuple[int, ...] | None = None

    @property
    def offsets(self) -> tuple[int, ...] | None:
        """The original index of every folded character (None when lengths are equal); built on first use,
        because only the few texts with evidence need it."""
        if not self.uneven:
            return None
        if self._offsets is None:
            # Every character of the text went through the fold table when it was folded, so any whose
            # folded form is not one character is in _UNEVEN: only those few need a length of their own
            # (folding the text a character at a time cost a twentieth of triage).
            original = self.original
            lengths = np.ones(len(original), dtype=np.int64)
            for char in _UNEVEN.intersection(original):
                size, index = len(fold(char)), original.find(char)
                while index != -1:
                    lengths[index] = size
                    index = original.find(char, index + 1)
            object.__setattr__(self, "_offsets", tuple(np.repeat(np.arange(len(original)), lengths).tolist()))
        return self._offsets

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original [start, end) of a folded span."""
        offsets = self.offsets
        if offsets is None:
            return start, end
        if start >= len(offsets):
            return len(self.original), len(self.original)
        first = offsets[start]
        last = offsets[end - 1] + 1 if end > start else first
        return first, last

    def original_text(self, start: int, end: int) -> str:
        """The original text behind a folded span (what evidence shows to a pharmacist)."""
        first, last = self.span(start, end)
        return self.original[first:last]


def fold_with_offsets(text: str) -> Folded:
    """Fold text and keep the way back to the original characters, for evidence spans."""
    if text.isascii():
        return Folded(text, text.lower().replace("`", "'"))
    folded = text.translate(_TABLE)  # fills the table for every character of the text first
    return Folded(text, folded, uneven=len(folded) != len(text) or not _UNEVEN.isdisjoint(text))


def _word_variants(word: str) -> set[str]:
    variants = {word}
    for pair, single in (("ae", "a"), ("oe", "o"), ("aa", "a")):
        variants |= {v.replace(pair, single) for v in variants if pair in v}
    # A dropped letter makes short words collide with others ('øm' → 'om', 'hævet' → 'havet').
    return {v for v in variants if v == word or len(v) >= DROPPED_LETTER_MIN}


def danish_variants(folded_term: str) -> set[str]:
    """Spellings of a folded term typed without æøå: 'foeler' is also written 'foler'."""
    variants = [""]
    for word in folded_term.split(" "):
        variants = [f"{prefix} {v}" if prefix else v for prefix in variants for v in _word_variants(word)]
    return set(variants)


_TERM_MARKS = ",;:"
_WORD_BREAK = re.compile(r"[\s\-/]+")  # between the words of a lexicon term


def term_spellings(term: str) -> list[tuple[str, ...]]:
    """The word sequences a lexicon term is indexed under: folded, with its æøå spellings and without n't;
    punctuation written in a term only says where a phrase may cross it (mark_gaps)."""
    folded = fold(term)
    spellings = danish_variants(folded) if any(c in term.lower() for c in "æøå") else {folded}
    # E-mail is often typed without apostrophes ('cant breathe', 'dont want to live').
    spellings |= {s.replace("n't", "nt") for s in spellings if "n't" in s}
    return [words for spelling in spellings
            if (words := tuple(w for w in (w.strip(_TERM_MARKS) for w in _WORD_BREAK.split(spelling)) if w))]


def mark_gaps(term: str, length: int) -> frozenset[int]:
    """The gaps (k: between word k and k + 1) where a term lets punctuation stand: after a word written with a
    mark, and on both sides of a '*'; every gap when the term's words cannot be lined up with its spelling."""
    words = [w for w in _WORD_BREAK.split(term) if w.strip(_TERM_MARKS)]
    if len(words) != length:
        return frozenset(range(length))
    return frozenset(k for k in range(length - 1)
                     if words[k][-1] in _TERM_MARKS or "*" in (words[k], words[k + 1]))
