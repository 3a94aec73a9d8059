"""Render reply templates in a Jinja2 sandbox; a missing fact is an error, never a blank in a reply."""

import re
from datetime import date, time
from typing import Any, Iterable, Mapping

from jinja2 import DictLoader, StrictUndefined, TemplateError, UndefinedError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "da": ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober",
           "november", "december"),
}
WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "da": ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"),
}
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


class MissingFact(TemplateError):
    """A template was asked to render without a fact it declares (or uses)."""


def date_en(day: date) -> str:
    """'Thursday 3 December 2026'."""
    return f"{WEEKDAYS['en'][day.weekday()]} {day.day} {MONTHS['en'][day.month - 1]} {day.year}"


def date_da(day: date) -> str:
    """'torsdag den 3. december 2026'."""
    return f"{WEEKDAYS['da'][day.weekday()]} den {day.day}. {MONTHS['da'][day.month - 1]} {day.year}"


def clock(value: time) -> str:
    """'15:00' in both languages (as the knowledge base writes times)."""
    return f"{value.hour:02d}:{value.minute:02d}"


def count_en(n: int, singular: str, plural: str) -> str:
    """'one working day' / '2 working days'."""
    return f"one {singular}" if n == 1 else f"{n} {plural}"


def count_da(n: int, singular: str, plural: str) -> str:
    """'én hverdag' / '2 hverdage' (the nouns used are all of common gender)."""
    return f"én {singular}" if n == 1 else f"{n} {plural}"


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.strip().splitlines())


def make_environment(texts: Mapping[str, str]) -> ImmutableSandboxedEnvironment:
    """A sandbox that cannot reach Python internals, mutate facts, or leave a fact silently empty."""
    env = ImmutableSandboxedEnvironment(
        loader=DictLoader(dict(texts)),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(date_en=date_en, date_da=date_da, clock=clock, quote=_quote, count_en=count_en,
                       count_da=count_da)
    return env


class TemplateRenderer:
    """Every template compiled once; render() is then a dictionary lookup and a render call."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        self._texts = dict(texts)
        self.env = make_environment(self._texts)
        self._compiled = {name: self.env.get_template(name) for name in self._texts if not self.is_partial(name)}

    @staticmethod
    def is_partial(name: str) -> bool:
        return name.rsplit("/", 1)[-1].startswith("_")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._compiled)

    def variables(self, name: str) -> set[str]:
        """Top-level names a template (and the partials it includes) reads."""
        seen: set[str] = set()
        found: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            ast = self.env.parse(self._texts[current])
            found |= meta.find_undeclared_variables(ast)
            pending.extend(ref for ref in meta.find_referenced_templates(ast) if ref)
        return found

    def template_sources(self, template_id: str, language: str) -> list[str]:
        """The source of lang/template_id.j2 and of every partial it includes (its fixed wording)."""
        name = f"{language}/{template_id}.j2"
        sources, pending, seen = [], [name], set()
        while pending:
            current = pending.pop()
            if current in seen or current not in self._texts:
                continue
            seen.add(current)
            sources.append(self._texts[current])
            pending.extend(ref for ref in meta.find_referenced_templates(self.env.parse(self._texts[current])) if ref)
        return sources

    def render(self, template_id: str, language: str, context: Mapping[str, Any],
               required: Iterable[str] = ()) -> str:
        """Render lang/template_id.j2; every required name must be present and not None."""
        missing = [key for key in required if context.get(key) is None]
        if missing:
            raise MissingFact(f"{language}/{template_id}: missing fact(s) {', '.join(missing)}")
        name = f"{language}/{template_id}.j2"
        try:
            template = self._compiled[name]
        except KeyError as exc:
            raise TemplateError(f"no template {name}") from exc
        try:
            text = template.render(context)
        except UndefinedError as exc:
            raise MissingFact(f"{name}: {exc}") from exc
        text = _TRAILING_SPACE.sub("\n", text)
        return _BLANK_LINES.sub("\n\n", text).strip() + "\n"
