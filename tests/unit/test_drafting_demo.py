"""The planner on the demo mailbox and pharmacy: each case's outcome is the one its label gives."""

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from core.drafting import Drafter, ReplyContext
from core.parsing import parse_message
from core.refill import RefillOutcome, worst
from data_contracts.models import Action, PharmacyExport, TriageResult

DRAFTER = Drafter.load()


def test_demo_mailbox_refill_outcomes_match_their_labels():
    """Labelled triage in, so this checks identity, matching and refill rules against the demo PMS."""
    demo = Path(__file__).resolve().parents[2] / "datasets" / "demo"
    export = PharmacyExport.model_validate_json((demo / "pharmacy.json").read_text(encoding="utf-8"))
    patients = defaultdict(list)
    for patient in export.patients:
        patients[str(patient.email).lower()].append(patient)
    dispenses = defaultdict(list)
    for d in sorted(export.dispenses, key=lambda d: d.dispensed_on, reverse=True):
        dispenses[d.prescription_id].append(d)
    now = datetime.fromisoformat("2026-11-25T09:00:00+01:00")
    checked = 0
    for line in (demo / "mailbox_labels.jsonl").read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        if not label.get("refill"):
            continue
        parsed = parse_message((demo / "mailbox" / label["file"]).read_bytes()).message
        triage = TriageResult(intent=label["intent"], escalate=label["escalate"], reasons=label["reasons"],
                              language=label["language"], needs_reply=label["needs_reply"], confidence=0.9)
        senders = tuple(patients.get((parsed.sender or "").lower(), ()))
        rxs = tuple(r for r in export.prescriptions if len(senders) == 1 and r.patient_id == senders[0].patient_id)
        history = {r.prescription_id: tuple(dispenses[r.prescription_id]) for r in rxs}
        plan = DRAFTER.plan(ReplyContext("case-x", parsed, triage, senders, rxs, history, (), now))
        if len(senders) == 1:
            expected = worst([RefillOutcome(r["outcome"]) for r in label["refill"]])
            assert plan.outcome == expected.value, label["file"]
            assert (plan.action is Action.escalate) == (expected is RefillOutcome.not_automatable or label["escalate"])
        else:
            assert plan.outcome is None and plan.draft.template_id == "identity_confirm", label["file"]
        checked += 1
    assert checked >= 12
