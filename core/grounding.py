"""Grounding verifier: every fact in a draft must come from the facts, passages or template it was built from."""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from core import grounding_claims as gc
from core.grounding_claims import Claim
from data_contracts.models import Contract, Passage
from policy_rules.yaml_errors import load_model

LEXICON_PATH = Path(__file__).resolve().parents[1] / "policy_rules" / "lexicons" / "grounding_drugs.yaml"
_WORD = re.compile(r"[^\W\d_][\w-]*[^\W\d_]|[^\W\d_]", re.UNICODE)
_STEM_MIN_PREFIX = 3  # 'april' ends in '-pril' but is no ACE inhibitor: a stem needs a real word in front
_DRUG_FACT_KEYS = ("drug", "medicine", "medication", "prescription", "product")
# Words of a medicine fact ('Estradot 50 mikrogram/24 timer') that are units, not the medicine's name.
_NOT_DRUG_WORDS = frozenset(gc.UNITS) | frozenset(gc.STRENGTH_UNITS) | {"depot", "retard", "mite", "forte"}
_PRICE_FACT_KEYS = ("price", "amount", "cost", "fee", "total", "balance", "pris", "beløb")
_NUMERIC_FACT = re.compile(r"^\s*\+?\d[\d\s]*(?:[.,]\d+)?\s*$")


class DrugLexicon(Contract):
    """policy_rules/lexicons/grounding_drugs.yaml: known medicine names and INN stems."""

    version: int = Field(1, ge=1, le=1)
    names: list[str]
    stems: list[str] = Field(default_factory=list)


class GroundingVerdict(Contract):
    """Whether a text states only supported facts; `unsupported` lists the ones that are not."""

    ok: bool
    claims: list[Claim]
    unsupported: list[Claim]

    @property
    def unsupported_kinds(self) -> list[str]:
        """Kinds only (no values): safe for an audit event, which must not carry PHI."""
        return sorted({c.kind for c in self.unsupported})


@lru_cache(maxsize=4)
def load_lexicon(path: Path = LEXICON_PATH) -> DrugLexicon:
    return load_model(path, DrugLexicon)


@dataclass(frozen=True)
class _Lexicon:
    names: frozenset[str]
    stems: tuple[str, ...]

    def is_medicine(self, word: str) -> bool:
        folded = word.casefold()
        if folded in self.names:
            return True
        return folded.endswith(self.stems) and any(
            folded.endswith(stem) and len(folded) - len(stem) >= _STEM_MIN_PREFIX for stem in self.stems)


@lru_cache(maxsize=1)
def _base_lexicon() -> _Lexicon:
    base = load_lexicon()
    return _Lexicon(frozenset(w.casefold() for w in base.names), tuple(s.casefold() for s in base.stems))


def _lexicon(extra: Iterable[str] = ()) -> _Lexicon:
    base = _base_lexicon()
    words = {w.casefold() for value in extra for w in _WORD.findall(value) if len(w) >= 4}
    words -= _NOT_DRUG_WORDS
    return _Lexicon(base.names | words, base.stems) if words else base


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def extract_claims(text: str, language: str | None = None, drug_words: Iterable[str] = ()) -> list[Claim]:
    """Every checkable fact in `text`; each span is claimed once (URLs before e-mails before dates ...)."""
    return list(_extract(text, language, _lexicon(drug_words)))


def _extract(text: str, language: str | None, lexicon: _Lexicon) -> list[Claim]:
    claims: list[Claim] = []
    masked = text

    def add(kind: str, match: re.Match, value: str | None, alternatives: Sequence[str] = (), span=None) -> None:
        nonlocal masked
        start, end = span or match.span()
        if value is not None:
            claims.append(Claim(kind=kind, text=text[start:end], value=value, alternatives=list(alternatives),
                                start=start, end=end))
        masked = _blank(masked, start, end)

    for match in list(gc.EMAIL.finditer(masked)):
        add("email", match, match.group().casefold())
    for match in list(gc.URL.finditer(masked)):
        add("url", match, gc.url_value(match.group()))
    for regex in (gc.DATE_ISO, gc.DATE_DM, gc.DATE_MD, gc.DATE_NUM):
        for match in list(regex.finditer(masked)):
            value, alternatives, weekday = _date(match, language)
            if value is None:
                continue
            add("date", match, value, alternatives)
            if weekday is not None:
                claims[-1].alternatives.append(f"weekday:{weekday}")
    for regex in (gc.PHONE, gc.SHORT_PHONE):
        for match in list(regex.finditer(masked)):
            group = next((g for g in ("num", "bare") if g in regex.groupindex and match.group(g)), None)
            span = match.span(group) if group else None
            add("phone", match, gc.phone_value(match.group(group) if group else match.group()), span=span)
    for match in list(gc.PRICE.finditer(masked)):
        amount = gc.number(match.group("n1") or match.group("n2") or match.group("n3"))
        currency = gc.CURRENCY.get((match.group("cur1") or match.group("cur2") or "kr").casefold(), "DKK")
        add("price", match, f"{currency} {amount:.2f}" if amount is not None else None)
    for match in list(gc.STRENGTH.finditer(masked)):
        amount = gc.number(match.group("n").replace(",", "."))
        unit = gc.STRENGTH_UNITS[match.group("u").casefold()]
        per = f"/{match.group('per').casefold()}" if match.group("per") else ""
        add("strength", match, f"{gc.plain(amount)} {unit}{per}" if amount is not None else None)
    for match in list(gc.TIME.finditer(masked)):
        _times(match, add)
    for match in list(gc.QUANTITY.finditer(masked)):
        unit = gc.UNITS[" ".join(match.group("u").casefold().split())]
        add("quantity", match, f"{int(match.group('n'))} {unit}")
    for match in list(gc.WEEKDAY.finditer(masked)):
        add("weekday", match, str(gc.WEEKDAYS[match.group("wd").casefold()]))
    for match in list(_WORD.finditer(masked)):
        if lexicon.is_medicine(match.group()):
            add("medicine", match, match.group().casefold())
    return sorted(claims, key=lambda c: c.start)


def _date(match: re.Match, language: str | None) -> tuple[str | None, list[str], int | None]:
    groups = match.groupdict()
    weekday_word = groups.get("wd") or groups.get("wd2")
    weekday = gc.WEEKDAYS[weekday_word.casefold()] if weekday_word else None
    year = int(groups["y"]) if groups.get("y") else None
    if year is not None and year < 100:
        year += 2000
    if groups.get("mon"):
        return gc.date_value(year, gc.MONTHS[groups["mon"].casefold().rstrip(".")], int(groups["d"])), [], weekday
    if "m" in groups and groups.get("m"):
        return gc.date_value(year, int(groups["m"]), int(groups["d"])), [], weekday
    first, second = (groups["a"], groups["b"]) if groups.get("a") else (groups["a2"], groups["b2"])
    day_month = gc.date_value(year, int(second), int(first))
    month_day = gc.date_value(year, int(first), int(second))
    if language == "da" or month_day is None:  # Danish writes day/month only
        return day_month, [], weekday
    if day_month is None:
        return month_day, [], weekday
    return day_month, [month_day] if month_day != day_month else [], weekday


def _times(match: re.Match, add) -> None:
    groups = match.groupdict()
    if groups.get("kh") is not None:  # 'kl. 9-17' states two times
        first_end = match.end("km") if groups.get("km") else match.end("kh")
        add("time", match, gc.time_value(groups["kh"], groups["km"]), span=(match.start(), first_end))
        if groups.get("kh2") is not None:
            add("time", match, gc.time_value(groups["kh2"], groups["km2"]), span=(match.start("kh2"), match.end()))
        return
    if groups.get("ah") is not None:
        hour = int(groups["ah"]) % 12 + (12 if groups["ap"].casefold().startswith("p") else 0)
        add("time", match, gc.time_value(hour, groups["am"]))
        return
    add("time", match, gc.time_value(groups["h"], groups["m"]))


@dataclass
class _Support:
    """Everything the sources state, normalised for comparison."""

    values: dict[str, set[str]] = field(default_factory=dict)
    dates: list[tuple[int | None, int, int]] = field(default_factory=list)
    bare_numbers: set[str] = field(default_factory=set)
    price_amounts: set[str] = field(default_factory=set)
    words: set[str] = field(default_factory=set)

    def add_claims(self, claims: Iterable[Claim]) -> None:
        for claim in claims:
            self.values.setdefault(claim.kind, set()).add(claim.value)
            if claim.kind == "date":
                for value in (claim.value, *claim.alternatives):
                    if not value.startswith("weekday:"):
                        self.dates.append(_parts(value))

    def supports(self, claim: Claim) -> bool:
        kind, value = claim.kind, claim.value
        if kind == "date":
            return self._date_supported(claim)
        if kind == "weekday":
            return value in self.values.get("weekday", ()) or any(
                y is not None and date(y, m, d).weekday() == int(value) for y, m, d in self.dates)
        if kind == "medicine":
            return value in self.words
        if kind == "quantity":
            return value in self.values.get("quantity", ()) or value.split()[0] in self.bare_numbers
        if kind == "price":
            amount = value.split()[1]
            return value in self.values.get("price", ()) or amount in self.price_amounts
        if kind == "url":
            known = self.values.get("url", ())
            return value in known or any(u.split("/", 1)[0] == value for u in known)
        return value in self.values.get(kind, ())

    def _date_supported(self, claim: Claim) -> bool:
        readings = [v for v in (claim.value, *claim.alternatives) if not v.startswith("weekday:")]
        weekday = next((int(v[8:]) for v in claim.alternatives if v.startswith("weekday:")), None)
        for reading in readings:
            year, month, day = _parts(reading)
            for s_year, s_month, s_day in self.dates:
                if (s_month, s_day) != (month, day) or (year and s_year and year != s_year):
                    continue
                known_year = year or s_year
                if weekday is None or known_year is None or date(known_year, month, day).weekday() == weekday:
                    return True
        return False


def _parts(value: str) -> tuple[int | None, int, int]:
    """'2026-12-03' → (2026, 12, 3); '--12-03' → (None, 12, 3)."""
    if value.startswith("--"):
        month, day = value[2:].split("-")
        return None, int(month), int(day)
    year, month, day = value.split("-")
    return int(year), int(month), int(day)


@lru_cache(maxsize=4096)
def _source_claims(text: str) -> tuple[Claim, ...]:
    """Claims of a source text; passages and templates repeat across messages, so this is cached."""
    return tuple(_extract(text, None, _lexicon()))


def _support(facts: Mapping[str, str], texts: Sequence[str]) -> _Support:
    support = _Support()
    for key, raw in facts.items():
        value = str(raw)
        support.add_claims(_source_claims(value))
        support.words.update(w.casefold() for w in _WORD.findall(value))
        if _NUMERIC_FACT.match(value):  # a bare number: its key says what it is, the draft adds the unit
            amount = gc.number(value.replace(" ", ""))
            support.bare_numbers.add(gc.plain(amount))
            support.values.setdefault("phone", set()).add(gc.phone_value(value))
            if any(hint in key.casefold() for hint in _PRICE_FACT_KEYS):
                support.price_amounts.add(f"{amount:.2f}")
    for text in texts:
        support.add_claims(_source_claims(text))
        support.words.update(w.casefold() for w in _WORD.findall(text))
    return support


def verify(text: str, facts: Mapping[str, str], passages: Iterable[Passage | str] = (),
           template_text: str | Sequence[str] = "", language: str | None = None) -> GroundingVerdict:
    """Check every fact in `text` against the facts, the passages' text and the template's fixed text."""
    texts = [p.text if isinstance(p, Passage) else p for p in passages]
    texts.extend([template_text] if isinstance(template_text, str) else template_text)
    drug_words = [str(v) for k, v in facts.items() if any(h in k.casefold() for h in _DRUG_FACT_KEYS)]
    claims = extract_claims(text, language, drug_words)
    support = _support(facts, texts)
    unsupported = [claim for claim in claims if not support.supports(claim)]
    return GroundingVerdict(ok=not unsupported, claims=claims, unsupported=unsupported)


def missing_claims(required: Iterable[Claim], claims: Iterable[Claim]) -> list[Claim]:
    """Required claims (e.g. from the template draft) that `claims` (e.g. a rewrite's) no longer state."""
    support = _Support()
    claims = list(claims)
    support.add_claims(claims)
    support.words.update(c.value for c in claims if c.kind == "medicine")
    return [claim for claim in required if not support.supports(claim)]
