"""The Triager: scan every field once, classify the batch once, evaluate the rules, decide."""

import hashlib
import logging
from pathlib import Path

from connectors import model_store
from core.triage.intent_model import IntentModel, model_text
from core.triage.decision import Signals, decide
from core.triage.inputs import PmsFacts, TriageInput
from core.triage.language import detect_language
from core.triage.lexicon import LexiconSet
from core.triage.context import message_context, own_quote_pattern
from core.triage.rules import RuleContext
from core.triage.ruleset import RuleSet
from core.triage.suspicious import without_spans
from data_contracts.models import TriageResult
from policy_rules.loader import Policy, load_policy
from rxinbox.settings import get_settings

__all__ = ["PmsFacts", "TriageInput", "Triager", "INJECTION_LEXICON", "NO_REPLY_LEXICON"]
log = logging.getLogger(__name__)

# Lexicons the engine itself relies on (the loader refuses a policy without them).
INJECTION_LEXICON = "prompt_injection"
NO_REPLY_LEXICON = "no_reply_signals"
REQUIRED_LEXICONS = (INJECTION_LEXICON, NO_REPLY_LEXICON)
SHORT_THANKS_WORDS = 40  # thanks in a message this short is the whole message


def _expects_no_reply(ctx: RuleContext) -> bool:
    """Automated or bulk mail, 'no need to reply', or thanks in a short message."""
    matches = [m for f in ("subject", "body") if f in ctx.scans for m in ctx.scans[f].matches.get(NO_REPLY_LEXICON, ())]
    if any(m.group != "thanks" for m in matches):
        return True
    body = ctx.scans.get("body")
    return bool(matches) and (body is None or len(body.tokens) <= SHORT_THANKS_WORDS)


class Triager:
    """Rules over model. E-mail content is only ever data: nothing in it changes how triage behaves."""

    def __init__(self, policy: Policy, model: IntentModel, own_addresses: tuple[str, ...] = ()) -> None:
        """own_addresses: the pharmacy's name, address and domain, to recognise its own quoted replies."""
        self.policy = policy
        self.model = model
        self._own_quotes = own_quote_pattern(own_addresses)
        self.lexicons = LexiconSet(list(policy.lexicons))
        self.rules = RuleSet(list(policy.rules), self.lexicons, policy.conditions)
        digest = hashlib.sha256()
        for item in (*policy.lexicons, *policy.conditions, *policy.rules):
            digest.update(item.model_dump_json().encode("utf-8"))
        self._version = f"{model.version}+rules-{digest.hexdigest()[:8]}"

    @classmethod
    def load(cls, rules_dir: Path | None = None, lexicon_dir: Path | None = None,
             model_path: Path | None = None) -> "Triager":
        """Rules and lexicons from YAML, and the model (trained and cached on first use)."""
        settings = get_settings()
        policy = load_policy(rules_dir, lexicon_dir, REQUIRED_LEXICONS)
        model = model_store.load(model_path) if model_path else model_store.load_or_train(settings.models_dir)
        domain = settings.pharmacy_email.rpartition("@")[2]
        return cls(policy, model, (settings.pharmacy_name, settings.pharmacy_email, domain))

    @property
    def version(self) -> str:
        return self._version

    def context(self, item: TriageInput) -> RuleContext:
        """Scan every field of one message against every lexicon (no model output yet)."""
        return message_context(self.lexicons, item, self._own_quotes, self.rules.fields)

    def _model_input(self, ctx: RuleContext) -> str:
        """The classifier's text, with sentences holding injected instructions cut out."""
        parts = []
        for name in ("subject", "body", "quoted"):
            text = ctx.texts[name]
            scan = ctx.scans.get(name)
            if scan is not None and INJECTION_LEXICON in scan.matches:
                text = without_spans(text, (scan.folded.span(m.start, m.end)
                                            for m in scan.matches[INJECTION_LEXICON]))
            parts.append(text)
        return model_text(*parts)

    def triage_many(self, items: list[TriageInput]) -> list[TriageResult]:
        """Triage a batch; the classifier vectorises the whole batch at once."""
        contexts = [self.context(item) for item in items]
        views = self.model.predict([self._model_input(ctx) for ctx in contexts])
        results = []
        for item, ctx, view in zip(items, contexts, views):
            ctx.model = view
            fired = self.rules.evaluate(ctx)
            signals = Signals(detect_language(f"{item.subject}\n{item.body}"), bool(item.auto_generated),
                              _expects_no_reply(ctx))
            results.append(decide(view, self.model.threshold, fired, signals, self._version,
                                  self.model.escalation_threshold, self.model.clinical_threshold))
        return results

    def triage(self, item: TriageInput) -> TriageResult:
        return self.triage_many([item])[0]
