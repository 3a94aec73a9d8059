"""Pydantic schema of lexicon files (extra="forbid"): vocabularies the escalation rules match against."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LEXICON_ID = r"^[a-z0-9]+(_[a-z0-9]+)*$"
NEGATION_GROUPS = {"before", "after", "resolved", "pseudo", "terminators"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TermGroup(_Strict):
    """Terms of one kind and language; the language decides which inflection endings match."""

    name: str = Field(pattern=LEXICON_ID)
    lang: Literal["en", "da", "any"]
    note: str | None = None
    fuzzy: bool | None = Field(default=None, description="Override the lexicon's typo tolerance for this group.")
    meta: dict[str, str] = Field(default_factory=dict, description="Facts shown in evidence, e.g. a schedule.")
    terms: list[Annotated[str, Field(min_length=1, max_length=120)]] = Field(min_length=1)

    @field_validator("terms")
    @classmethod
    def _wildcards(cls, terms: list[str]) -> list[str]:
        for term in terms:
            words = term.split()
            if words and words[0] == "*":
                raise ValueError(f"term {term!r} cannot start with the one-word wildcard '*'")
            if any("*" in w and w != "*" and not (i == 0 and w.startswith("*") and len(w) > 3)
                   for i, w in enumerate(words)):
                raise ValueError(f"term {term!r}: '*' is a whole word, or a compound head like '*smerter'")
        return terms


class Lexicon(_Strict):
    """A vocabulary file: controlled medicines, symptoms, negation cues, ..."""

    id: str = Field(pattern=LEXICON_ID)
    kind: Literal["terms", "negation", "question_starters"] = Field(
        default="terms", description="terms; negation cues; or words that open a question sentence.")
    title: str
    description: str
    sources: list[str] = Field(min_length=1)
    fuzzy: bool = Field(default=True, description="Tolerate one typo in words of fuzzy_min_length+ letters.")
    fuzzy_min_length: int = Field(default=6, ge=6, le=20, description="Shortest word a typo is forgiven in; "
                                  "ordinary words need more letters than drug names (hoster/haster).")
    negatable: bool = Field(default=True, description="A negation cue in the window suppresses a match.")
    window_before: int = Field(default=3, ge=0, le=8, description="negation lexicons: words a cue reaches forward")
    window_after: int = Field(default=1, ge=0, le=3, description="negation lexicons: words a cue reaches back")
    window_resolved: int = Field(default=4, ge=0, le=6,
                                 description="negation lexicons: words a 'has gone away' cue reaches back")
    groups: list[TermGroup] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list, description="Phrases inside which a term does not count.")
    look_alikes: list[str] = Field(default_factory=list, description="Words never taken as a typo of a term.")

    @model_validator(mode="after")
    def _negation_groups(self) -> "Lexicon":
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError("group names must be unique")
        if self.kind == "negation":
            unknown = set(names) - NEGATION_GROUPS
            if unknown:
                raise ValueError(f"negation lexicon groups must be before/after/resolved/pseudo/terminators, "
                                 f"not {unknown}")
        return self
