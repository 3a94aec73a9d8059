"""Experiment: does a binary escalation head (or a lower clinical_question threshold) add escalation recall at
an acceptable false-escalation cost? Out-of-fold on the TRAINING split only; the held-out split is never read.

`python -m evals.escalation_head_experiment [--budgets 0.01 0.02 ...] [--examples-budget 0.03]`

The rows are cut into the same folds as evals/triage_dev.py; per fold one feature union is fitted and shared by
the intent model (exported as fold_models() did before the head) and three binary LinearSVC heads:
`head:escalate` (the `escalate` label), `head:escalate_unweighted` (the same without class weights) and
`head:clinical` (escalate with any reason besides suspicious). The variant
`cheap:p_clin` has no head: it lowers the intent model's own clinical_question-as-second-intent cut (0.40).
A variant flags a row when its score is above a threshold chosen, per fold, on the OTHER folds' out-of-fold
scores so that at most B of their routine rows are flagged (cheap: B counts routine rows whose top intent is
not clinical_question). MODEL-ONLY: the model's own escalations (clinical_question, low confidence) OR the
variant (mo_clin: its recall of clinical escalations; rule_only: of escalations today caught by rules alone);
FULL: that OR every escalation rule, i.e. what `triage_eval --dev` reports (+FE: net new false escalations).

`--grid` swaps the low-confidence budget (0: no low-confidence escalation) against the head budget B and picks
the point with the highest MODEL-ONLY recall whose FULL dev false escalation is at most `--max-fe` (ties: lower FE).
Its pick (head:escalate, low-confidence budget 0, B 0.04) is deployed: core/triage/classifier.py trains the head
and PIPELINE_CONFIG holds the budgets; this script stays the record, run against the configuration before that.
"""

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy.special import softmax
from sklearn.svm import LinearSVC

from connectors import model_store
from core.triage.classifier import (
    PIPELINE_CONFIG, Calibration, Fitted, build_pipeline, choose_escalation_threshold, choose_threshold, cv_splitter,
    export, fit_temperature, model_text,
)
from core.triage.decision import CLINICAL_SECONDARY_MIN
from core.triage.engine import REQUIRED_LEXICONS, TriageInput, Triager
from data_contracts.models import Intent, Reason
from policy_rules.loader import load_policy
from rxinbox.settings import get_settings

BUDGETS = (0.01, 0.02, 0.03, 0.05, 0.08)
HEADS = ("head:escalate", "head:clinical", "head:escalate_unweighted")
GRID_LOW = (0.0, 0.01, 0.02, 0.03)
GRID_HEAD = (0.0, 0.01, 0.02, 0.03, 0.04)
GRID_HEADS = ("head:escalate", "head:escalate_unweighted")
# The configuration the experiment compared against: before the head was deployed (low-confidence budget 0.03).
CONFIG = {**PIPELINE_CONFIG, "low_confidence_budget": 0.03, "escalation_head": None}
EXAMPLES = 5


@dataclass
class OutOfFold:
    """Per row: its fold, the escalation flags of the rules and of the model, and every variant's score."""

    fold_of: np.ndarray
    rule_flag: np.ndarray      # an escalation rule fired
    model_flag: np.ndarray     # model:clinical_question or model:low_confidence (the current model escalations)
    base_no_secondary: np.ndarray  # the model's escalations without the p >= 0.40 second-intent path
    clinical_flag: np.ndarray  # model:clinical_question alone (no low confidence)
    confidence: np.ndarray     # top probability of the row's own fold model
    oof: np.ndarray            # out-of-fold intent scores (for low-confidence thresholds at other budgets)
    temperatures: list[float]  # per fold, fitted on the other folds
    scores: dict[str, np.ndarray]  # variant -> score (higher flags); -inf where the variant never flags
    escalate_full: np.ndarray  # what the real triage decided (a check of the flags above)


def _inputs(triager: Triager, rows) -> list[str]:
    """The text the intent model reads at triage time (own quotes split off, injected sentences cut)."""
    items = [TriageInput(id=r.id, sender=r.sender, subject=r.subject, body=r.body) for r in rows]
    # _model_input depends on the policy only, so a triager of any model gives the deployed text.
    return [triager._model_input(triager.context(item)) for item in items]


def out_of_fold(rows, config: dict = CONFIG) -> OutOfFold:
    """Fit intent model and heads per fold (sharing features), triage each fold with its own models."""
    settings = get_settings()
    own = (settings.pharmacy_name, settings.pharmacy_email, settings.pharmacy_email.rpartition("@")[2])
    policy = load_policy(required_lexicons=REQUIRED_LEXICONS)
    texts = [model_text(r.subject, r.body, config=config) for r in rows]
    labels = np.array([r.intent.value for r in rows])
    routine = np.array([not r.escalate for r in rows])
    targets = {"head:escalate": ~routine,
               "head:clinical": np.array([r.escalate and any(x != Reason.suspicious for x in r.reasons)
                                          for r in rows]),
               "head:escalate_unweighted": ~routine}
    svm = {name: {**config["svm"], "class_weight": None if name.endswith("unweighted") else "balanced"}
           for name in targets}
    classes = np.unique(labels)
    fold_of = np.zeros(len(rows), dtype=int)
    oof = np.zeros((len(rows), len(classes)))
    fitted = []
    for k, (train_idx, test_idx) in enumerate(cv_splitter(labels, config).split(texts, labels)):
        template = build_pipeline(config)
        union, linear = template.named_steps["features"], template.named_steps["linear"]
        train_x = union.fit_transform([texts[i] for i in train_idx], labels[train_idx])
        linear.fit(train_x, labels[train_idx])
        heads = {name: LinearSVC(random_state=config["seed"], **svm[name]).fit(train_x, y[train_idx])
                 for name, y in targets.items()}
        oof[test_idx] = linear.decision_function(union.transform([texts[i] for i in test_idx]))
        fold_of[test_idx] = k
        fitted.append((template, heads))
    n = len(rows)
    out = OutOfFold(fold_of, np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool),
                    np.zeros(n), oof, [], {name: np.zeros(n) for name in (*HEADS, "cheap:p_clin")},
                    np.zeros(n, bool))
    inputs: list[str] | None = None
    for k, (pipeline, heads) in enumerate(fitted):
        others = fold_of != k
        temperature = fit_temperature(oof[others], labels[others], classes)
        out.temperatures.append(temperature)
        proba = softmax(oof[others] / temperature, axis=1)
        threshold = choose_threshold(proba.max(axis=1), routine[others], config["low_confidence_budget"])
        model = export(Fitted(pipeline, None), Calibration(temperature, threshold, None), f"experiment-fold{k}",
                       trained_rows=int(others.sum()))
        triager = Triager(policy, model, own)
        inputs = inputs or _inputs(triager, rows)
        index = np.flatnonzero(fold_of == k)
        fold_inputs = [inputs[i] for i in index]
        results = triager.triage_many([TriageInput(id=rows[i].id, sender=rows[i].sender, subject=rows[i].subject,
                                                   body=rows[i].body) for i in index])
        views = model.predict(fold_inputs)
        features = pipeline.named_steps["features"].transform(fold_inputs)
        for name, head in heads.items():
            out.scores[name][index] = head.decision_function(features)
        for i, result, view in zip(index, results, views):
            rule_ids = {e.rule_id for e in result.evidence if e.reason is not None}
            top_clin = view.top == Intent.clinical_question
            p_clin = view.probabilities.get(Intent.clinical_question, 0.0)
            low = view.confidence < threshold
            out.rule_flag[i] = any(not r.startswith("model:") for r in rule_ids)
            out.base_no_secondary[i] = top_clin or low
            out.clinical_flag[i] = top_clin or p_clin >= CLINICAL_SECONDARY_MIN
            out.confidence[i] = view.confidence
            out.model_flag[i] = top_clin or low or p_clin >= CLINICAL_SECONDARY_MIN
            out.scores["cheap:p_clin"][i] = -np.inf if top_clin else p_clin
            out.escalate_full[i] = result.escalate
            assert out.model_flag[i] == any(r.startswith("model:") for r in rule_ids), rows[i].id
    return out


def flags(score: np.ndarray, fold_of: np.ndarray, routine: np.ndarray, budget: float) -> tuple[np.ndarray, float]:
    """Score above a per-fold threshold that flags at most `budget` of the other folds' routine rows."""
    flagged = np.zeros(len(score), bool)
    cuts = []
    for k in np.unique(fold_of):
        others, own = fold_of != k, fold_of == k
        cut = choose_escalation_threshold(score[others], routine[others], budget)  # as the product chooses it
        flagged[own] = score[own] > cut
        cuts.append(cut)
    return flagged, float(np.mean(cuts))


def low_flags(data: OutOfFold, routine: np.ndarray, budget: float) -> np.ndarray:
    """model:low_confidence at another budget: each fold's threshold from the other folds' calibrated scores."""
    flagged = np.zeros(len(routine), bool)
    if budget <= 0:  # no low-confidence escalation at all
        return flagged
    for k, temperature in enumerate(data.temperatures):
        others, own = data.fold_of != k, data.fold_of == k
        top = softmax(data.oof[others] / temperature, axis=1).max(axis=1)
        flagged[own] = data.confidence[own] < choose_threshold(top, routine[others], budget)
    return flagged


def grid(data: OutOfFold, escalate: np.ndarray, max_fe: float) -> None:
    """Low-confidence budget x head budget; the chosen point: best model-only recall with full FE <= max_fe."""
    print(f"\n-- grid: low-confidence budget x head budget "
          f"(pick: max mo_rec s.t. full_FE <= {max_fe}; ties lower FE) --")
    print(f"{'head':26s} {'LC':>5s} {'B':>5s} {'mo_rec':>7s} {'mo_FE':>6s} {'full_rec':>8s} {'full_FE':>7s}")
    routine = ~escalate
    # The row that reproduces today's decision (LC = the configured budget, no head) checks low_flags.
    assert (data.clinical_flag | low_flags(data, routine, CONFIG["low_confidence_budget"])
            == data.model_flag).all(), "low_flags does not reproduce the configured low-confidence threshold"
    candidates = []
    for name in GRID_HEADS:
        for low_budget in GRID_LOW:
            low = low_flags(data, routine, low_budget)
            for budget in GRID_HEAD:
                head = flags(data.scores[name], data.fold_of, routine, budget)[0] if budget else np.zeros_like(low)
                model_only = data.clinical_flag | low | head
                full = data.rule_flag | model_only
                (mo_rec, mo_fe), (full_rec, full_fe) = rates(model_only, escalate), rates(full, escalate)
                ok = full_fe <= max_fe + 1e-12
                print(f"{name:26s} {low_budget:5.2f} {budget:5.2f} {mo_rec:7.3f} {mo_fe:6.3f} {full_rec:8.3f} "
                      f"{full_fe:7.3f}{'' if ok else '  (FE over)'}")
                if ok:
                    candidates.append((-mo_rec, full_fe, name, low_budget, budget, full_rec))
    if candidates:
        mo_rec, full_fe, name, low_budget, budget, full_rec = min(candidates)
        print(f"chosen: {name} LC {low_budget:.2f} B {budget:.2f}: model-only recall {-mo_rec:.3f}, "
              f"full recall {full_rec:.3f}, full FE {full_fe:.3f}")


def rates(flag: np.ndarray, escalate: np.ndarray) -> tuple[float, float]:
    """(escalation recall, false-escalation rate)."""
    return float(flag[escalate].mean()), float(flag[~escalate].mean())


def describe(rows, added: np.ndarray, false_added: np.ndarray, title: str) -> None:
    """Reasons the extra catches carry, and a few examples of catches and of new false escalations."""
    reasons = Counter(x.value for i in np.flatnonzero(added) for x in rows[i].reasons)
    print(f"  {title}: +{int(added.sum())} escalations caught, +{int(false_added.sum())} routine flagged; "
          f"reasons: {', '.join(f'{k} {v}' for k, v in reasons.most_common()) or '-'}")


def examples(rows, index: np.ndarray, label: str) -> None:
    """Ids and the first 100 characters of a few rows."""
    for i in index[:EXAMPLES]:
        r = rows[i]
        text = " ".join(f"[{r.subject}] {r.body}".split())[:100]
        print(f"    {label} {r.id} ({r.intent.value}; {','.join(x.value for x in r.reasons) or 'routine'}): {text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=float, nargs="+", default=list(BUDGETS))
    parser.add_argument("--examples-budget", type=float, default=0.03, help="budget whose rows are listed")
    parser.add_argument("--grid", action="store_true", help="only the low-confidence x head budget grid")
    parser.add_argument("--max-fe", type=float, default=0.105, help="the grid's full dev false-escalation cap")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = model_store.training_rows()
    escalate = np.array([r.escalate for r in rows])
    clinical = np.array([r.escalate and any(x != Reason.suspicious for x in r.reasons) for r in rows])
    data = out_of_fold(rows)
    full_base = data.rule_flag | data.model_flag
    # Escalations only rules catch today: the head's share of them hints at what it would save where the
    # rules do not generalise (their out-of-sample recall is well below the dev figure).
    rule_only = escalate & data.rule_flag & ~data.model_flag
    assert (full_base == data.escalate_full).all(), "flags do not reproduce the triage decision"
    print(f"{len(rows)} training rows ({int(escalate.sum())} escalate, {int(clinical.sum())} clinical), "
          f"{data.fold_of.max() + 1} folds; held-out split not read\n")
    if args.grid:
        grid(data, escalate, args.max_fe)
        print(f"\n{time.perf_counter() - started:.0f} s")
        return 0
    header = f"{'variant':26s} {'B':>5s} {'cut':>7s} {'mo_rec':>7s} {'mo_FE':>6s} {'mo_clin':>7s} " \
             f"{'rule_only':>9s} {'full_rec':>8s} {'full_FE':>7s} {'+caught':>7s} {'+FE':>4s}"
    print(header)
    print(f"{'baseline':26s} {'-':>5s} {'-':>7s} {rates(data.model_flag, escalate)[0]:7.3f} "
          f"{rates(data.model_flag, escalate)[1]:6.3f} {data.model_flag[clinical].mean():7.3f} {0:9.3f} "
          f"{rates(full_base, escalate)[0]:8.3f} {rates(full_base, escalate)[1]:7.3f} {0:7d} {0:4d}")
    details = []
    for name in (*HEADS, "cheap:p_clin"):
        base = data.base_no_secondary if name == "cheap:p_clin" else data.model_flag
        for budget in args.budgets:
            extra, cut = flags(data.scores[name], data.fold_of, ~escalate, budget)
            model_only = base | extra
            full = data.rule_flag | model_only
            caught = full & ~full_base & escalate
            false_new = full & ~full_base & ~escalate
            print(f"{name:26s} {budget:5.2f} {cut:7.3f} {rates(model_only, escalate)[0]:7.3f} "
                  f"{rates(model_only, escalate)[1]:6.3f} {model_only[clinical].mean():7.3f} "
                  f"{model_only[rule_only].mean():9.3f} "
                  f"{rates(full, escalate)[0]:8.3f} {rates(full, escalate)[1]:7.3f} {int(caught.sum()):7d} "
                  f"{int(false_new.sum()) - int((full_base & ~full & ~escalate).sum()):4d}")
            details.append((name, budget, model_only, full))
    print("\n-- what the variants add over the baseline (reasons of the extra catches) --")
    for name, budget, model_only, full in details:
        print(f"{name} B={budget:.2f}")
        describe(rows, model_only & ~data.model_flag & escalate, model_only & ~data.model_flag & ~escalate,
                 "model-only")
        describe(rows, full & ~full_base & escalate, full & ~full_base & ~escalate, "full")
        if abs(budget - args.examples_budget) < 1e-9:
            examples(rows, np.flatnonzero(full & ~full_base & escalate), "caught")
            examples(rows, np.flatnonzero(full & ~full_base & ~escalate), "false ")
        lost = (full_base & ~full & escalate).sum()
        if lost:
            print(f"  full: -{int(lost)} escalations lost (the 0.40 second-intent cut raised)")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
