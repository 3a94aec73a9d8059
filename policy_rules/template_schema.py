"""Schema of templates/catalog.yaml and the loader that pairs each entry with its en/da Jinja files."""

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from data_contracts.models import Intent
from policy_rules.yaml_errors import RuleFileError, load_model

TEMPLATES_DIR = Path(__file__).with_name("templates")
LANGUAGES = ("en", "da")


class ReplyOutcome(StrEnum):
    """The situation a reply answers; templates and the send policy are keyed by intent and this."""

    refill_eligible = "refill_eligible"
    refill_too_early = "refill_too_early"
    renewal_needed = "renewal_needed"
    refill_mixed = "refill_mixed"
    not_automatable = "not_automatable"
    identity_unconfirmed = "identity_unconfirmed"
    prescription_unclear = "prescription_unclear"
    answered_from_kb = "answered_from_kb"
    no_kb_answer = "no_kb_answer"
    acknowledged = "acknowledged"
    escalated = "escalated"
    escalated_urgent = "escalated_urgent"


# The facts a template may ask for, and where the planner takes them from (the vocabulary is code, not data).
FACTS: dict[str, str] = {
    "patient_first_name": "pms",
    "medicines": "pms",
    "ready": "pms",
    "too_early": "pms",
    "renewal": "pms",
    "passages": "knowledge_base",
}
PHARMACY_FACTS: frozenset[str] = frozenset({
    "name", "address", "phone", "email", "website", "booking_url", "weekday_hours", "saturday_hours",
    "service_hours", "email_response_working_days", "booking_cancel_hours", "hold_days",
    "emergency_number", "out_of_hours_doctor", "out_of_hours_doctor_phone", "poison_helpline",
    "poison_helpline_phone", "complaints_ack_days", "complaints_answer_days", "complaints_authority",
    "complaints_authority_url",
})
# Every template ends with the signature partial, which states these.
SIGNATURE_FACTS: tuple[str, ...] = ("name", "address", "phone", "email")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Serves(_Strict):
    """One (intent, outcome) pair a template answers; intent "any" is the fallback for every intent."""

    intent: Intent | Literal["any"]
    outcome: ReplyOutcome


class TemplateEntry(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)
    serves: list[Serves] = Field(min_length=1)
    facts: list[str] = Field(default_factory=list)
    pharmacy: list[str] = Field(default_factory=list, description="pharmacy.yaml facts stated besides the signature")
    subject: dict[Literal["en", "da"], str]

    @field_validator("facts")
    @classmethod
    def _known_facts(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in FACTS]
        if unknown:
            raise ValueError(f"unknown fact {unknown[0]!r}; known: {', '.join(sorted(FACTS))}")
        return value

    @field_validator("pharmacy")
    @classmethod
    def _known_pharmacy_facts(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in PHARMACY_FACTS]
        if unknown:
            raise ValueError(f"unknown pharmacy fact {unknown[0]!r}; known: {', '.join(sorted(PHARMACY_FACTS))}")
        return value

    @field_validator("subject")
    @classmethod
    def _both_languages(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [lang for lang in LANGUAGES if not value.get(lang)]
        if missing:
            raise ValueError(f"subject needs a text for {', '.join(missing)}")
        return value

    @property
    def pharmacy_facts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*SIGNATURE_FACTS, *self.pharmacy]))


class TemplateCatalog(_Strict):
    version: Literal[1]
    templates: list[TemplateEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "TemplateCatalog":
        ids = [t.id for t in self.templates]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate template id {dupes[0]!r}")
        seen: dict[tuple[str, str], str] = {}
        for entry in self.templates:
            for pair in entry.serves:
                key = (str(pair.intent), pair.outcome.value)
                if key in seen:
                    raise ValueError(f"{key[0]}/{key[1]} is served by both {seen[key]!r} and {entry.id!r}")
                seen[key] = entry.id
        return self

    def by_id(self) -> dict[str, TemplateEntry]:
        return {t.id: t for t in self.templates}

    def lookup(self, intent: Intent, outcome: ReplyOutcome) -> TemplateEntry | None:
        """The template for an intent and outcome, else the one serving "any" intent for that outcome."""
        fallback = None
        for entry in self.templates:
            for pair in entry.serves:
                if pair.outcome is outcome and pair.intent == intent:
                    return entry
                if pair.outcome is outcome and pair.intent == "any":
                    fallback = entry
        return fallback


def load_templates(directory: Path | None = None) -> tuple[TemplateCatalog, dict[str, str]]:
    """The catalog and every template text keyed "lang/file.j2"; each entry needs both languages, no strays."""
    directory = directory or TEMPLATES_DIR
    catalog = load_model(directory / "catalog.yaml", TemplateCatalog)
    texts: dict[str, str] = {}
    for lang in LANGUAGES:
        for path in sorted((directory / lang).glob("*.j2")):
            texts[f"{lang}/{path.name}"] = path.read_text(encoding="utf-8")
    ids = set(catalog.by_id())
    for entry in catalog.templates:
        for lang in LANGUAGES:
            if f"{lang}/{entry.id}.j2" not in texts:
                raise RuleFileError(directory / "catalog.yaml", None, f"templates.{entry.id}",
                                    f"missing template file {lang}/{entry.id}.j2")
    for name in texts:
        stem = name.split("/", 1)[1][: -len(".j2")]
        if not stem.startswith("_") and stem not in ids:
            raise RuleFileError(directory / name, None, "", f"template {stem!r} is not declared in catalog.yaml")
    return catalog, texts
