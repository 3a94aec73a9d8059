"""Pydantic schema of a rule's example file, `<id>.examples.yaml` (extra="forbid"): what tests/rules runs."""

from typing import Literal

from pydantic import Field, model_validator

from core.identity import IdentityStatus
from data_contracts.models import Intent
from policy_rules.rule_schema import RULE_ID, _Strict


class ModelStub(_Strict):
    """The classifier output an example assumes (only needed by rules with intent conditions)."""

    intent: Intent
    probability: float = Field(default=0.9, gt=0.0, le=1.0)


class PmsStub(_Strict):
    """The PMS facts an example assumes; the identity verdict is given, or worked out from a record name."""

    known_patient: bool = True
    controlled_drugs: list[str] = Field(default_factory=list)
    drugs: list[str] = Field(default_factory=list)
    prior_auth_missing: list[str] = Field(default_factory=list)
    identity: IdentityStatus | None = None
    patient_name: str | None = Field(
        default=None, min_length=3, description="The one patient on the sender's address ('Søren Ærø'): "
        "the example's identity status is then what the real identity gate says about its text.")

    @model_validator(mode="after")
    def _one_identity(self) -> "PmsStub":
        if self.identity is not None and self.patient_name is not None:
            raise ValueError("give identity or patient_name, not both")
        if self.patient_name is not None and not self.known_patient:
            raise ValueError("patient_name needs known_patient: true")
        if self.patient_name is not None and len(self.patient_name.split()) < 2:
            raise ValueError("patient_name needs a first and a last name")
        return self


class RuleExample(_Strict):
    """A message a rule must (or must not) fire on."""

    lang: Literal["en", "da"]
    text: str = Field(description="The body.")
    subject: str = ""
    quoted: str = ""
    hidden_text: str = ""
    auto_generated: str | None = None
    attachment_names: list[str] = Field(default_factory=list)
    pms: PmsStub | None = None
    model: ModelStub | None = None
    note: str | None = None


class RuleExamples(_Strict):
    """The examples file beside a rule: `<id>.examples.yaml`."""

    rule: str = Field(pattern=RULE_ID)
    fire: list[RuleExample] = Field(min_length=2)
    no_fire: list[RuleExample] = Field(min_length=2)

    @model_validator(mode="after")
    def _both_languages(self) -> "RuleExamples":
        for name in ("fire", "no_fire"):
            langs = {e.lang for e in getattr(self, name)}
            if langs != {"en", "da"}:
                raise ValueError(f"{name} needs examples in both en and da (has {sorted(langs)})")
        return self

