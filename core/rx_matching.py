"""Which of the patient's prescriptions a message names: generic or brand, English or Danish spelling."""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from core.identity import MAX_TEXT, fold
from data_contracts.models import Prescription

_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)
_DRUG_SPELLING = ((re.compile(r"ph"), "f"), (re.compile(r"th"), "t"), (re.compile(r"c"), "k"),
                  (re.compile(r"y"), "i"), (re.compile(r"(.)\1+"), r"\1"))
# Danish definite/plural endings and the English possessive: "metforminen", "Panodilen", "insulin's".
_SUFFIXES = ("", "en", "et", "er", "erne", "ens", "ets", "s", "n")
_STRENGTH = re.compile(r"(\d+(?:[.,]\d+)?)\s*(mg|mcg|µg|μg|mikrogram|microgram|g|ml|ie|iu|units?|enheder)\b",
                       re.IGNORECASE)
_NAME_SPLIT = re.compile(r"[()/,+]| og | and ")


class RxMatchStatus(StrEnum):
    matched = "matched"
    none = "none"
    ambiguous = "ambiguous"


@dataclass(frozen=True)
class RxMatch:
    """The prescriptions a message names, in the order it names them; ambiguous or none means: ask."""

    status: RxMatchStatus
    prescriptions: tuple[Prescription, ...] = ()


@lru_cache(maxsize=65536)
def drug_key(word: str) -> str:
    """Spelling-insensitive key so English and Danish INN spellings meet: 'morphine' == 'morfin'."""
    key = fold(word)
    for pattern, repl in _DRUG_SPELLING:
        key = pattern.sub(repl, key)
    return key[:-1] if key.endswith("e") and len(key) > 4 else key


def _strengths(text: str) -> set[str]:
    return {f"{float(n.replace(',', '.')):g}{u.lower().replace('μ', 'µ')}" for n, u in _STRENGTH.findall(text)}


@lru_cache(maxsize=8192)
def _words(text: str) -> tuple[str, ...]:
    """Keys of a drug or brand name (short, repeated strings: cached)."""
    return tuple(drug_key(t) for t in _TOKEN.findall(text))


class DrugAliases:
    """Brand names by the generic they stand for, keyed once so matching is a lookup."""

    def __init__(self, aliases: Mapping[str, str]) -> None:
        self.brands: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for brand, generic in aliases.items():
            self.brands.setdefault(_words(generic), []).append(_words(brand))


@lru_cache(maxsize=8192)
def _generic_names(drug: str) -> frozenset[tuple[str, ...]]:
    return frozenset(_words(part.strip()) for part in _NAME_SPLIT.split(drug) if part.strip())


def _names_for(rx: Prescription, aliases: DrugAliases) -> list[tuple[str, ...]]:
    """Token sequences that name this prescription: its name parts, a multi-word name's first word, brands."""
    generic = _generic_names(rx.drug)
    names = set(generic) | {seq[:1] for seq in generic if len(seq) > 1 and len(seq[0]) >= 5}
    for seq in generic:
        names.update(aliases.brands.get(seq, ()))
    return [seq for seq in names if seq and sum(len(t) for t in seq) >= 4]


@dataclass(frozen=True)
class _TextIndex:
    """Where each word first occurs, and each word with an inflection ending removed."""

    tokens: tuple[str, ...]
    first: dict[str, int]
    stems: dict[str, int]

    @classmethod
    def build(cls, text: str) -> "_TextIndex":
        tokens = tuple(drug_key(t) for t in _TOKEN.findall(text))  # not cached: message texts never repeat
        first: dict[str, int] = {}
        for i, token in enumerate(tokens):
            first.setdefault(token, i)
        stems: dict[str, int] = {}
        for token, i in first.items():
            for suffix in _SUFFIXES:
                if token.endswith(suffix) and len(token) > len(suffix):
                    stem = token[: len(token) - len(suffix)]
                    if stems.get(stem, i + 1) > i:
                        stems[stem] = i
        return cls(tokens, first, stems)

    def find(self, name: tuple[str, ...]) -> int | None:
        """Position of the first occurrence of the name, allowing an inflection on its last word."""
        if len(name) == 1:
            return self.stems.get(name[0])
        n = len(name)
        for i, token in enumerate(self.tokens[: len(self.tokens) - n + 1]):
            if token == name[0] and self.tokens[i + 1:i + n - 1] == name[1:-1]:
                last = self.tokens[i + n - 1]
                if last.startswith(name[-1]) and last[len(name[-1]):] in _SUFFIXES:
                    return i
        return None


def match_prescriptions(
    text: str, prescriptions: Sequence[Prescription], aliases: DrugAliases | Mapping[str, str] | None = None
) -> RxMatch:
    """Find the patient's prescriptions named in the text (generic or brand); never guess between two."""
    text = text[:MAX_TEXT]
    index = _TextIndex.build(text)
    known = aliases if isinstance(aliases, DrugAliases) else DrugAliases(aliases or {})
    by_name: dict[tuple[str, ...], list[tuple[int, Prescription]]] = {}
    for rx in prescriptions:
        for name in _names_for(rx, known):
            pos = index.find(name)
            if pos is not None:
                by_name.setdefault(name, []).append((pos, rx))
    if not by_name:
        return RxMatch(RxMatchStatus.none)
    mentioned = _strengths(text) if any(len(h) > 1 for h in by_name.values()) else set()
    chosen: dict[str, tuple[int, Prescription]] = {}
    # Most specific names first, so "insulin glargine" settles what a bare "insulin" would leave open.
    for _, hits in sorted(by_name.items(), key=lambda item: -len(item[0])):
        candidates = {rx.prescription_id: (pos, rx) for pos, rx in hits}
        active = {k: v for k, v in candidates.items() if v[1].status == "active"}
        candidates = active or candidates
        if len(candidates) > 1:
            strength = {k: v for k, v in candidates.items() if _strengths(v[1].strength) & mentioned}
            candidates = strength or candidates
        if len(candidates) > 1:
            # Two different prescriptions answer to one name (two strengths, two insulins): ask.
            if not any(k in chosen for k in candidates):
                return RxMatch(RxMatchStatus.ambiguous, tuple(v[1] for v in candidates.values()))
            continue
        key, value = next(iter(candidates.items()))
        chosen[key] = min(value, chosen.get(key, value), key=lambda item: item[0])
    ordered = sorted(chosen.values(), key=lambda item: item[0])
    return RxMatch(RxMatchStatus.matched, tuple(rx for _, rx in ordered))
