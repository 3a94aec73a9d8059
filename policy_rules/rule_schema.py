"""Pydantic schema of escalation rule files and named conditions (extra="forbid"); example files: example_schema.py."""

import re
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from core.identity import IdentityStatus
from data_contracts.models import Intent, Priority, Reason
from policy_rules.lexicon_schema import LEXICON_ID

RULE_ID = r"^[a-z0-9]+(-[a-z0-9]+)*$"
TextField = Literal["subject", "body", "quoted", "html", "attachment", "sender"]
DEFAULT_FIELDS: tuple[TextField, ...] = ("subject", "body", "quoted")
# Detectors are code (suspicious.py); rules may only name these.
DETECTORS = ("base64_blob", "invisible_text")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- conditions (the vocabulary a rule may use) ------------------------------------------------------


class LexiconMatch(_Strict):
    """A lexicon term occurs (not negated, unless negation: ignore) in one of the fields."""

    name: str = Field(pattern=LEXICON_ID)
    groups: list[str] | None = None
    fields: list[TextField] = Field(default_factory=lambda: list(DEFAULT_FIELDS), min_length=1)
    negation: Literal["respect", "ignore"] = "respect"
    min_count: int = Field(default=1, ge=1, description="Distinct terms needed.")


class NearMatch(_Strict):
    """A term of a `left` lexicon and one of a `right` lexicon in the same clause, at most `window` words apart."""

    left: list[Annotated[str, Field(pattern=LEXICON_ID)]] = Field(min_length=1)
    right: list[Annotated[str, Field(pattern=LEXICON_ID)]] = Field(min_length=1)
    window: int = Field(default=6, ge=1, le=30)
    scope: Literal["clause", "sentence", "text"] = Field(
        default="clause", description="Where both must be: the same clause, the same sentence, or anywhere.")
    unless_in_sentence: list[Annotated[str, Field(pattern=LEXICON_ID)]] = Field(
        default_factory=list, description="Lexicons whose terms in the same sentence make the pair not count "
        "(sentence-local, so adding other sentences never removes a match).")
    fields: list[TextField] = Field(default_factory=lambda: list(DEFAULT_FIELDS), min_length=1)
    negation: Literal["respect", "ignore"] = "respect"


class QuestionMatch(_Strict):
    """A question sentence (ending in '?' or opening with a question word) holding a term of `about`,
    with no term of `unless_in_sentence` in that sentence."""

    about: list[Annotated[str, Field(pattern=LEXICON_ID)]] = Field(min_length=1)
    unless_in_sentence: list[Annotated[str, Field(pattern=LEXICON_ID)]] = Field(default_factory=list)
    fields: list[TextField] = Field(default_factory=lambda: ["subject", "body"], min_length=1)


class PatternMatch(_Strict):
    """A regular expression over the folded text (lower case, æøå as ae/oe/aa, no accents)."""

    regex: str = Field(min_length=1)
    fields: list[TextField] = Field(default_factory=lambda: list(DEFAULT_FIELDS), min_length=1)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return value


class IntentMatch(_Strict):
    """The classifier's top intent is one of these, or any of them has at least min_probability."""

    any_of: list[Intent] = Field(min_length=1)
    min_probability: float | None = Field(default=None, gt=0.0, le=1.0)


class PmsMatch(_Strict):
    """Facts from the pharmacy system about the sender; every fact given must hold."""

    known_patient: bool | None = None
    has_controlled: bool | None = None
    has_prior_auth_missing: bool | None = None
    mentions: Literal["controlled_drugs", "drugs", "prior_auth_missing"] | None = Field(
        default=None, description="The message names one of these drugs of the sender's active prescriptions."
    )
    identity: list[IdentityStatus] | None = Field(
        default=None, min_length=1,
        description="The identity gate's verdict on the mail (core/identity.py) is one of these statuses.",
    )

    @model_validator(mode="after")
    def _something(self) -> "PmsMatch":
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("a pms condition needs at least one fact")
        return self


class MessageMatch(_Strict):
    """Facts about the message itself."""

    auto_generated: bool | None = None
    has_attachments: bool | None = None


def _shorthand(key: str, model_key: str):
    def expand(value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get(key), str):
            return {key: {model_key: value[key]}}
        return value
    return expand


class LexiconCondition(_Strict):
    lexicon: LexiconMatch

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return _shorthand("lexicon", "name")(value)


class NearCondition(_Strict):
    near: NearMatch


class PatternCondition(_Strict):
    pattern: PatternMatch

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return _shorthand("pattern", "regex")(value)


class QuestionCondition(_Strict):
    question: QuestionMatch


class IntentCondition(_Strict):
    intent: IntentMatch


class PmsCondition(_Strict):
    pms: PmsMatch


class DetectorCondition(_Strict):
    detector: Literal[DETECTORS]  # type: ignore[valid-type]


class MessageCondition(_Strict):
    message: MessageMatch


class AllCondition(_Strict):
    all: list["Condition"] = Field(min_length=1)


class AnyCondition(_Strict):
    any: list["Condition"] = Field(min_length=1)


class NoneCondition(_Strict):
    """Holds when none of its conditions holds: the 'but not when ...' half of a rule's `unless` gate."""

    none: list["Condition"] = Field(min_length=1)


class RefCondition(_Strict):
    """A named condition of policy_rules/conditions/ (by file stem): one definition shared by many rules."""

    ref: str = Field(pattern=RULE_ID, max_length=60)


def compound_parts(cond: Any) -> tuple[str, list] | None:
    """The key and sub-conditions of an all / any / none condition; None for any other condition."""
    for key, model in (("all", AllCondition), ("any", AnyCondition), ("none", NoneCondition)):
        if isinstance(cond, model):
            return key, getattr(cond, key)
    return None


def walk_conditions(cond: Any, loc: tuple = ()) -> Iterator[tuple[Any, tuple]]:
    """Every condition of a tree with its location in the file, the tree's root first."""
    yield cond, loc
    if (compound := compound_parts(cond)) is not None:
        key, parts = compound
        for i, part in enumerate(parts):
            yield from walk_conditions(part, loc + (key, i))


CONDITION_NAMES = ("lexicon", "near", "question", "pattern", "intent", "pms", "detector", "message", "all", "any",
                   "none", "ref")


def _condition_tag(value: Any) -> str | None:
    """The condition's name: the single key of its mapping (anything else fails as an unknown tag)."""
    if isinstance(value, dict):
        keys = list(value)
        return keys[0] if len(keys) == 1 else f"<{len(keys)} keys: one condition per list item>"
    if isinstance(value, BaseModel):
        return next(iter(type(value).model_fields))
    return None


Condition = Annotated[
    Union[
        Annotated[LexiconCondition, Tag("lexicon")],
        Annotated[NearCondition, Tag("near")],
        Annotated[QuestionCondition, Tag("question")],
        Annotated[PatternCondition, Tag("pattern")],
        Annotated[IntentCondition, Tag("intent")],
        Annotated[PmsCondition, Tag("pms")],
        Annotated[DetectorCondition, Tag("detector")],
        Annotated[MessageCondition, Tag("message")],
        Annotated[AllCondition, Tag("all")],
        Annotated[AnyCondition, Tag("any")],
        Annotated[NoneCondition, Tag("none")],
        Annotated[RefCondition, Tag("ref")],
    ],
    Discriminator(_condition_tag),
]
AllCondition.model_rebuild()
AnyCondition.model_rebuild()
NoneCondition.model_rebuild()


# --- rules and their examples -------------------------------------------------------------------------


class RuleMetadata(_Strict):
    """Why the rule exists and where its knowledge comes from."""

    why: str = Field(min_length=10)
    source: list[str] = Field(min_length=1)
    added: date
    owner: str = "pharmacy"


class NamedCondition(_Strict):
    """A condition with a name (`policy_rules/conditions/<id>.yaml`), used by rules as `ref: <id>`, so a gate
    many rules share is written and reviewed once."""

    id: str = Field(pattern=RULE_ID, max_length=60)
    title: str = Field(min_length=3, max_length=120)
    description: str = Field(min_length=10)
    when: Condition
    metadata: RuleMetadata


class Rule(_Strict):
    """One escalation rule: when `when` holds and `unless` (if given) does not, the reason is added (never
    removed)."""

    id: str = Field(pattern=RULE_ID, max_length=60)
    title: str = Field(min_length=3, max_length=120)
    description: str = Field(min_length=10)
    reason: Reason
    priority: Literal[Priority.urgent, Priority.high] = Priority.high
    enabled: bool = True
    when: Condition
    unless: Condition | None = Field(
        default=None, description="A gate: when this condition holds the rule does not fire, whatever `when` "
        "found (e.g. broadcast mail that only talks about side effects). It can keep a rule quiet, never make "
        "one fire; keep it narrow, since a wrong gate silences a clinical signal.")
    metadata: RuleMetadata

    @field_validator("reason")
    @classmethod
    def _not_model_reason(cls, value: Reason) -> Reason:
        if value == Reason.low_confidence:
            raise ValueError("low_confidence is the model's reason; a rule cannot claim it")
        return value
