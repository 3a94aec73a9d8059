"""Refill eligibility: property tests over dates, schedules, dispensing groups and thresholds."""

import math
from datetime import date, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.refill import (
    PickupCalendar, RefillOutcome, Thresholds, add_months, decide_refill, earliest_refill, is_controlled, worst,
)
from data_contracts.models import Dispense, Prescription

CAL = PickupCalendar(holidays=frozenset({date(2026, 4, 2), date(2026, 4, 3), date(2026, 4, 6)}))
DEFAULT = Thresholds()


def make_rx(**overrides) -> Prescription:
    fields = dict(prescription_id="rx1", patient_id="p1", drug="Metformin", strength="500 mg", directions="1 x 2",
                  quantity=100, days_supply=30, refills_authorized=5, refills_used=1, issued_on=date(2026, 1, 5),
                  expires_on=date(2027, 1, 5), prescriber="Dr. Lund")
    fields.update(overrides)
    return Prescription(**fields)


def dispense(on: date, days: int = 30, rx_id: str = "rx1", n: int = 1) -> Dispense:
    return Dispense(dispense_id=f"d{n}", prescription_id=rx_id, dispensed_on=on, quantity=30, days_supply=days)


@st.composite
def scenarios(draw):
    issued = draw(st.dates(date(2024, 1, 1), date(2027, 6, 30)))
    rx = make_rx(
        issued_on=issued,
        expires_on=issued + timedelta(days=draw(st.integers(0, 800))),
        days_supply=draw(st.integers(1, 180)),
        refills_authorized=draw(st.integers(0, 12)),
        refills_used=draw(st.integers(0, 14)),
        controlled_schedule=draw(st.sampled_from([None, None, None, "II", "III", "IV", "V"])),
        dk_dispensing_group=draw(st.sampled_from([None, None, "A§4", "A", "B", "BEGR"])),
        payer=draw(st.sampled_from(["self", "region", "strict"])),
        prior_auth_required=draw(st.booleans()),
        prior_auth_status=draw(st.sampled_from([None, "approved", "pending", "denied", "missing"])),
        in_stock=draw(st.booleans()),
        status=draw(st.sampled_from(["active", "active", "active", "expired", "cancelled"])),
    )
    offsets = sorted(draw(st.lists(st.integers(0, 500), max_size=3)), reverse=True)
    dispenses = [dispense(issued + timedelta(days=o), draw(st.integers(1, 180)), n=i)
                 for i, o in enumerate(offsets)]
    today = issued + timedelta(days=draw(st.integers(0, 900)))
    thresholds = Thresholds(default=draw(st.floats(0.5, 1.0)), controlled=draw(st.floats(0.5, 1.0)),
                            payers={"strict": draw(st.floats(0.5, 1.0))})
    return rx, dispenses, today, thresholds


def decide(rx, dispenses, today, thresholds=DEFAULT, order_time=None):
    return decide_refill(rx, dispenses, thresholds, today, order_time=order_time, calendar=CAL)


def last_before(dispenses, today):
    past = [d for d in dispenses if d.dispensed_on <= today]
    return max(past, key=lambda d: d.dispensed_on) if past else None


@settings(max_examples=400, database=None)
@given(scenarios())
def test_every_decision_carries_its_reasons(case):
    rx, dispenses, today, thresholds = case
    decision = decide(rx, dispenses, today, thresholds)
    assert decision.rule_ids and len(decision.rule_ids) == len(decision.reasons)
    assert decision.outcome in RefillOutcome
    assert all(rule.startswith("refill.") for rule in decision.rule_ids)


@settings(max_examples=400, database=None)
@given(scenarios())
def test_eligible_only_when_every_gate_passes(case):
    rx, dispenses, today, thresholds = case
    decision = decide(rx, dispenses, today, thresholds)
    if decision.outcome is not RefillOutcome.refill_eligible:
        return
    assert not is_controlled(rx) and rx.status == "active" and today <= rx.expires_on
    assert not rx.prior_auth_required or rx.prior_auth_status == "approved"
    last = last_before(dispenses, today)
    if last is not None:
        assert decision.earliest_date is not None and decision.earliest_date <= today
        assert decision.refills_remaining > 0
    assert rx.dk_dispensing_group not in ("A", "A§4") or (last is None and rx.refills_used == 0)
    assert decision.ready_on is not None and decision.ready_on >= today and CAL.is_open_weekday(decision.ready_on)


@settings(max_examples=400, database=None)
@given(scenarios())
def test_controlled_medicine_is_never_automated(case):
    rx, dispenses, today, thresholds = case
    decision = decide(rx, dispenses, today, thresholds)
    if is_controlled(rx):
        assert decision.outcome is RefillOutcome.not_automatable
        assert decision.ready_on is None
    if rx.controlled_schedule == "II":
        assert "refill.us.schedule_ii" in decision.rule_ids


@settings(max_examples=400, database=None)
@given(scenarios())
def test_too_early_names_the_threshold_date(case):
    rx, dispenses, today, thresholds = case
    decision = decide(rx, dispenses, today, thresholds)
    if decision.outcome is not RefillOutcome.refill_too_early:
        return
    last = last_before(dispenses, today)
    threshold, _ = thresholds.for_prescription(rx)
    assert decision.earliest_date == last.dispensed_on + timedelta(days=math.ceil(last.days_supply * threshold - 1e-9))
    assert today < decision.earliest_date <= rx.expires_on


@settings(max_examples=300, database=None)
@given(scenarios())
def test_on_the_earliest_date_it_is_no_longer_too_early(case):
    rx, dispenses, today, thresholds = case
    decision = decide(rx, dispenses, today, thresholds)
    if decision.outcome is RefillOutcome.refill_too_early:
        # A dispense dated between today and that date is not yet known today (dispenses after the clock are
        # ignored, so replays see the past as it was); when that date comes it starts a new supply.
        assume(not any(today < d.dispensed_on <= decision.earliest_date for d in dispenses))
        later = decide(rx, dispenses, decision.earliest_date, thresholds)
        assert later.outcome is not RefillOutcome.refill_too_early


@settings(max_examples=300, database=None)
@given(scenarios(), st.floats(0.5, 1.0), st.floats(0.0, 0.5))
def test_a_stricter_threshold_never_moves_the_date_earlier(case, low, extra):
    rx, dispenses, today, _ = case
    high = min(low + extra, 1.0)
    a = decide(rx.model_copy(update={"controlled_schedule": None, "dk_dispensing_group": None}), dispenses, today,
               Thresholds(default=low))
    b = decide(rx.model_copy(update={"controlled_schedule": None, "dk_dispensing_group": None}), dispenses, today,
               Thresholds(default=high))
    if a.earliest_date and b.earliest_date:
        assert b.earliest_date >= a.earliest_date


@settings(max_examples=300, database=None)
@given(scenarios())
def test_expired_or_cancelled_is_never_refilled(case):
    rx, dispenses, today, thresholds = case
    decision = decide(rx, dispenses, today, thresholds)
    if rx.status == "cancelled":
        assert decision.outcome is RefillOutcome.not_automatable and "refill.status.cancelled" in decision.rule_ids
    if today > rx.expires_on or rx.status == "expired":
        assert decision.outcome in (RefillOutcome.renewal_needed, RefillOutcome.not_automatable)
        assert "refill.expired" in decision.rule_ids


@settings(max_examples=300, database=None)
@given(scenarios())
def test_schedule_iii_iv_limits(case):
    rx, dispenses, today, thresholds = case
    decision = decide(rx, dispenses, today, thresholds)
    if rx.controlled_schedule in ("III", "IV"):
        assert ("refill.us.schedule_iii_iv.max_refills" in decision.rule_ids) == (rx.refills_used >= 5)
        after_six_months = today > add_months(rx.issued_on, 6)
        assert ("refill.us.schedule_iii_iv.six_months" in decision.rule_ids) == after_six_months
        assert decision.refills_remaining <= max(5 - rx.refills_used, 0)


@settings(max_examples=300, database=None)
@given(scenarios())
def test_danish_group_a_is_dispensed_once(case):
    rx, dispenses, today, thresholds = case
    decision = decide(rx, dispenses, today, thresholds)
    if rx.dk_dispensing_group == "A" and (last_before(dispenses, today) or rx.refills_used):
        assert decision.outcome is not RefillOutcome.refill_eligible
        assert "refill.dk.group_a_once" in decision.rule_ids


@settings(max_examples=300, database=None)
@given(scenarios())
def test_prior_authorisation_not_approved_escalates(case):
    rx, dispenses, today, thresholds = case
    decision = decide(rx, dispenses, today, thresholds)
    if rx.prior_auth_required and rx.prior_auth_status != "approved":
        assert decision.outcome is RefillOutcome.not_automatable and "refill.prior_auth" in decision.rule_ids


# --- worked examples ------------------------------------------------------------------------------------


def test_default_threshold_is_75_percent_of_days_supply():
    rx = make_rx()
    last = dispense(date(2026, 3, 1), days=30)
    assert earliest_refill(last, 0.75) == date(2026, 3, 24)  # ceil(22.5) = 23 days
    early = decide(rx, [last], date(2026, 3, 23))
    assert early.outcome is RefillOutcome.refill_too_early and early.earliest_date == date(2026, 3, 24)
    assert "refill.too_early.default" in early.rule_ids
    due = decide(rx, [last], date(2026, 3, 24), order_time=None)
    assert due.outcome is RefillOutcome.refill_eligible and "refill.due" in due.rule_ids


def test_controlled_threshold_is_85_percent_and_payers_cannot_loosen_it():
    thresholds = Thresholds(payers={"region": 0.5})
    controlled = make_rx(controlled_schedule="IV", payer="region")
    assert thresholds.for_prescription(controlled) == (0.85, "controlled")
    assert thresholds.for_prescription(make_rx(payer="region")) == (0.5, "payer.region")
    assert thresholds.for_prescription(make_rx(dk_dispensing_group="A§4")) == (0.85, "controlled")
    decision = decide(controlled, [dispense(date(2026, 3, 1), days=20)], date(2026, 3, 10), thresholds)
    assert decision.outcome is RefillOutcome.not_automatable and decision.earliest_date == date(2026, 3, 18)


def test_first_fill_of_a_new_prescription_is_eligible_without_dispenses():
    decision = decide(make_rx(refills_used=0, refills_authorized=0), [], date(2026, 3, 2))
    assert decision.outcome is RefillOutcome.refill_eligible and decision.rule_ids == ("refill.first_fill",)


def test_refills_used_without_any_dispense_on_record_is_not_guessed():
    decision = decide(make_rx(refills_used=2), [], date(2026, 3, 2))
    assert decision.outcome is RefillOutcome.not_automatable
    assert "refill.no_dispense_history" in decision.rule_ids


def test_no_refills_left_needs_renewal():
    decision = decide(make_rx(refills_authorized=2, refills_used=2), [dispense(date(2026, 1, 1))], date(2026, 3, 2))
    assert decision.outcome is RefillOutcome.renewal_needed and "refill.no_refills_left" in decision.rule_ids


def test_due_date_after_expiry_needs_renewal_not_waiting():
    rx = make_rx(expires_on=date(2026, 3, 20))
    decision = decide(rx, [dispense(date(2026, 3, 1), days=30)], date(2026, 3, 5))
    assert decision.outcome is RefillOutcome.renewal_needed and "refill.expires_before_due" in decision.rule_ids


def test_group_b_repeats_as_prescribed():
    rx = make_rx(dk_dispensing_group="B", refills_authorized=3, refills_used=2)
    decision = decide(rx, [dispense(date(2026, 1, 1))], date(2026, 3, 2))
    assert decision.outcome is RefillOutcome.refill_eligible and decision.refills_remaining == 1


def test_out_of_stock_is_eligible_with_a_later_ready_date():
    rx = make_rx(in_stock=False)
    decision = decide(rx, [dispense(date(2026, 1, 1))], date(2026, 3, 2), order_time=None)
    assert decision.outcome is RefillOutcome.refill_eligible and "refill.out_of_stock" in decision.rule_ids
    in_stock = decide(make_rx(), [dispense(date(2026, 1, 1))], date(2026, 3, 2), order_time=None)
    assert decision.ready_on > in_stock.ready_on


def test_worst_outcome_is_the_most_restrictive():
    assert worst([RefillOutcome.refill_eligible, RefillOutcome.renewal_needed]) is RefillOutcome.renewal_needed
    assert worst([RefillOutcome.refill_too_early, RefillOutcome.not_automatable]) is RefillOutcome.not_automatable


def test_dispenses_of_other_prescriptions_and_future_dates_are_ignored():
    rx = make_rx()
    other = dispense(date(2026, 3, 1), rx_id="rx2")
    future = dispense(date(2026, 4, 1), n=2)
    decision = decide(rx, [future, other, dispense(date(2026, 1, 1), n=3)], date(2026, 3, 2))
    assert decision.outcome is RefillOutcome.refill_eligible


@pytest.mark.parametrize(("used", "limited"), [(4, False), (5, True), (6, True)])
def test_schedule_iii_iv_allow_at_most_five_refills(used, limited):
    rx = make_rx(controlled_schedule="III", refills_authorized=8, refills_used=used)
    decision = decide(rx, [dispense(date(2026, 1, 20))], date(2026, 3, 2))
    assert ("refill.us.schedule_iii_iv.max_refills" in decision.rule_ids) is limited
    assert decision.refills_remaining == max(5 - used, 0)


@pytest.mark.parametrize(("today", "limited"), [(date(2026, 7, 5), False), (date(2026, 7, 6), True)])
def test_schedule_iii_iv_expire_six_months_after_issue(today, limited):
    rx = make_rx(controlled_schedule="IV", issued_on=date(2026, 1, 5))
    decision = decide(rx, [dispense(date(2026, 1, 20))], today)
    assert ("refill.us.schedule_iii_iv.six_months" in decision.rule_ids) is limited
