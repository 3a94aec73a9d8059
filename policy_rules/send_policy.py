"""Schema and loader for send_policy.yaml: per intent and outcome, auto_send, draft_for_approval or escalate."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from data_contracts.models import Action, Intent
from policy_rules.template_schema import ReplyOutcome
from policy_rules.yaml_errors import load_model

DEFAULT_PATH = Path(__file__).with_name("send_policy.yaml")
SOURCE_REF = "send_policy.yaml"

PolicyAction = Literal["auto_send", "draft_for_approval", "escalate"]

# Safety floor in code, whatever the file says: these never leave without a person reading them.
NEVER_AUTO_INTENTS = frozenset({Intent.clinical_question, Intent.lab_followup, Intent.complaint, Intent.other})
NEVER_AUTO_OUTCOMES = frozenset({
    ReplyOutcome.not_automatable, ReplyOutcome.identity_unconfirmed, ReplyOutcome.prescription_unclear,
    ReplyOutcome.no_kb_answer, ReplyOutcome.escalated, ReplyOutcome.escalated_urgent, ReplyOutcome.refill_mixed,
})
ALWAYS_ESCALATE_OUTCOMES = frozenset({ReplyOutcome.not_automatable})
ESCALATE_ONLY_INTENTS = frozenset({Intent.clinical_question})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SendRule(_Strict):
    """One line of policy: what to do with replies for this intent (and outcome, when given)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_.\-]*$")
    intent: Intent
    outcome: ReplyOutcome | None = None
    action: PolicyAction

    @model_validator(mode="after")
    def _safety_floor(self) -> "SendRule":
        if self.action == "auto_send" and self.intent in NEVER_AUTO_INTENTS:
            raise ValueError(f"{self.intent.value} replies are never sent automatically")
        if self.action == "auto_send" and self.outcome in NEVER_AUTO_OUTCOMES:
            raise ValueError(f"{self.outcome.value} replies are never sent automatically")
        if self.outcome in ALWAYS_ESCALATE_OUTCOMES and self.action != "escalate":
            raise ValueError(f"{self.outcome.value} always escalates to a pharmacist")
        if self.intent in ESCALATE_ONLY_INTENTS and self.action != "escalate":
            raise ValueError(f"{self.intent.value} always escalates to a pharmacist")
        return self


class KnowledgeBasePolicy(_Strict):
    """Which retrieved passages a reply may quote."""

    min_score: float = Field(ge=-1.0, le=1.0, description="Passages scoring below this are never quoted.")
    max_passages: int = Field(ge=1, le=5)


class SendPolicy(_Strict):
    version: Literal[1]
    default: Literal["draft_for_approval", "escalate"] = "draft_for_approval"
    escalation_acknowledgement: Literal["auto_send", "draft_for_approval"] = "draft_for_approval"
    knowledge_base: KnowledgeBasePolicy
    rules: list[SendRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "SendPolicy":
        ids: set[str] = set()
        keys: dict[tuple[Intent, ReplyOutcome | None], str] = {}
        for rule in self.rules:
            if rule.id in ids:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            ids.add(rule.id)
            key = (rule.intent, rule.outcome)
            if key in keys:
                raise ValueError(f"rules {keys[key]!r} and {rule.id!r} both cover {rule.intent.value}"
                                 f"/{rule.outcome.value if rule.outcome else 'any outcome'}")
            keys[key] = rule.id
        return self

    def decide(self, intent: Intent, outcome: ReplyOutcome) -> tuple[Action, str]:
        """The action and the id of the rule that chose it: exact intent+outcome, then intent, then default."""
        exact = next((r for r in self.rules if r.intent == intent and r.outcome == outcome), None)
        rule = exact or next((r for r in self.rules if r.intent == intent and r.outcome is None), None)
        if rule is not None:
            action, rule_id = Action(rule.action), rule.id
        else:
            action, rule_id = Action(self.default), "send.default"
        # The floor holds even for an intent-wide rule that a specific outcome must not inherit.
        if action is not Action.escalate and (outcome in ALWAYS_ESCALATE_OUTCOMES or intent in ESCALATE_ONLY_INTENTS):
            return Action.escalate, f"{rule_id}+send.floor.escalate"
        if action is Action.auto_send and (intent in NEVER_AUTO_INTENTS or outcome in NEVER_AUTO_OUTCOMES):
            return Action.draft_for_approval, f"{rule_id}+send.floor.no_auto_send"
        return action, rule_id


def load_send_policy(path: Path | None = None) -> SendPolicy:
    """Load and validate send_policy.yaml (default: the one beside this module)."""
    return load_model(path or DEFAULT_PATH, SendPolicy)
