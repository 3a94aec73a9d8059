"""The audit chain detects every kind of tampering: edits, deletions, insertions, reordering."""

from datetime import datetime, timedelta, timezone

import pytest

from core.audit import GENESIS, seal_many, verify
from data_contracts.models import AuditEvent

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


def chain(n: int = 5) -> list[AuditEvent]:
    events = [
        AuditEvent(at=T0 + timedelta(seconds=i), actor="test", event="case.created", subject=f"case-{i}",
                   details={"intent": "refill_request", "reasons": [], "n": i})
        for i in range(n)
    ]
    return seal_many(events, 0, GENESIS)


def test_intact_chain_verifies():
    verdict = verify(chain())
    assert verdict.ok and verdict.checked == 5


def test_appending_continues_from_head():
    first = chain(3)
    more = seal_many([AuditEvent(at=T0, actor="t", event="x", subject="s")], first[-1].seq, first[-1].hash)
    assert more[0].seq == 4 and more[0].prev_hash == first[-1].hash
    assert verify(first + more).ok


@pytest.mark.parametrize(
    "tamper, problem",
    [
        (lambda ev: ev[2].details.update(intent="billing"), "altered"),
        (lambda ev: setattr(ev[1], "actor", "mallory"), "altered"),
        (lambda ev: setattr(ev[3], "at", ev[3].at + timedelta(seconds=1)), "altered"),
        (lambda ev: ev.pop(2), "missing"),
        (lambda ev: ev.insert(1, ev[1].model_copy()), "missing or inserted"),
        (lambda ev: ev.__setitem__(slice(1, 3), [ev[2], ev[1]]), "expected seq"),
    ],
    ids=["edit-details", "edit-actor", "edit-time", "delete", "duplicate", "reorder"],
)
def test_tampering_is_detected(tamper, problem):
    events = chain()
    tamper(events)
    verdict = verify(events)
    assert not verdict.ok
    assert problem in verdict.problem


def test_rehashing_an_edit_still_breaks_the_link():
    events = chain()
    forged = seal_many([events[2].model_copy(update={"details": {"intent": "billing"}})], 2, events[1].hash)[0]
    events[2] = forged
    verdict = verify(events)
    assert not verdict.ok and verdict.first_bad_seq == 4
