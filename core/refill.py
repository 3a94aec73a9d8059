"""Refill eligibility: a pure decision over a prescription, its dispenses, payer thresholds and the date."""

import math
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from enum import StrEnum
from typing import Mapping, Sequence

from data_contracts.models import Dispense, Prescription

US_CIII_IV_MAX_REFILLS = 5
US_CIII_IV_MONTHS = 6


class RefillOutcome(StrEnum):
    refill_eligible = "refill_eligible"
    refill_too_early = "refill_too_early"
    renewal_needed = "renewal_needed"
    not_automatable = "not_automatable"


# Most restrictive first: one blocking finding decides the outcome, whatever else is true.
_PRECEDENCE = (
    RefillOutcome.not_automatable,
    RefillOutcome.renewal_needed,
    RefillOutcome.refill_too_early,
    RefillOutcome.refill_eligible,
)


def is_controlled(rx: Prescription) -> bool:
    """US schedules II-V or Danish group A§4 (dependence-forming)."""
    return rx.controlled_schedule is not None or rx.dk_dispensing_group == "A§4"


@dataclass(frozen=True)
class Thresholds:
    """Share of the last days' supply that must pass before a refill; per payer, stricter for controlled."""

    default: float = 0.75
    controlled: float = 0.85
    payers: Mapping[str, float] = field(default_factory=dict)

    def for_prescription(self, rx: Prescription) -> tuple[float, str]:
        payer = self.payers.get(rx.payer)
        if is_controlled(rx):
            # A payer may be stricter than the controlled threshold, never looser.
            return max(self.controlled, payer or 0.0), "controlled"
        if payer is not None:
            return payer, f"payer.{rx.payer}"
        return self.default, "default"


@dataclass(frozen=True)
class PickupCalendar:
    """When an order placed at a local date and time is ready for pickup."""

    order_cutoff: time = time(12, 0)
    ready_from: time = time(15, 0)
    short_day_cutoff: time = time(10, 0)
    short_day_ready_from: time = time(11, 30)
    holidays: frozenset[date] = frozenset()
    short_days: frozenset[date] = frozenset()
    out_of_stock_extra_weekdays: int = 1

    def is_open_weekday(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def next_open_weekday(self, day: date) -> date:
        nxt = day + timedelta(days=1)
        while not self.is_open_weekday(nxt):
            nxt += timedelta(days=1)
        return nxt

    def ready_at(self, order_day: date, order_time: time | None, in_stock: bool = True) -> tuple[date, time]:
        """Same weekday if ordered before the cut-off (unknown time counts as after), else the next weekday."""
        cutoff = self.short_day_cutoff if order_day in self.short_days else self.order_cutoff
        same_day = self.is_open_weekday(order_day) and order_time is not None and order_time < cutoff
        day = order_day if same_day else self.next_open_weekday(order_day)
        for _ in range(0 if in_stock else self.out_of_stock_extra_weekdays):
            day = self.next_open_weekday(day)
        return day, self.short_day_ready_from if day in self.short_days else self.ready_from


@dataclass(frozen=True)
class RefillDecision:
    """The outcome for one prescription, with every finding that led to it (rule ids and plain reasons)."""

    prescription_id: str
    outcome: RefillOutcome
    earliest_date: date | None
    reasons: tuple[str, ...]
    rule_ids: tuple[str, ...]
    refills_remaining: int
    ready_on: date | None = None
    ready_from: time | None = None
    threshold: float | None = None


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def earliest_refill(last: Dispense, threshold: float) -> date:
    """Last dispense plus the threshold share of its days' supply, rounded up to whole days."""
    return last.dispensed_on + timedelta(days=math.ceil(last.days_supply * threshold - 1e-9))


class _Findings:
    def __init__(self) -> None:
        self.items: list[tuple[RefillOutcome, str, str]] = []

    def add(self, outcome: RefillOutcome, rule_id: str, reason: str) -> None:
        self.items.append((outcome, rule_id, reason))

    def outcome(self) -> RefillOutcome:
        found = {o for o, _, _ in self.items}
        return next((o for o in _PRECEDENCE if o in found), RefillOutcome.refill_eligible)

    def ordered(self) -> list[tuple[RefillOutcome, str, str]]:
        return sorted(self.items, key=lambda item: _PRECEDENCE.index(item[0]))


def _dispensing_rules(rx: Prescription, dispensed_before: bool, today: date, f: _Findings) -> int:
    """Schedule and dispensing-group rules; returns the refills still available."""
    remaining = rx.refills_authorized - rx.refills_used
    if rx.status == "cancelled":
        f.add(RefillOutcome.not_automatable, "refill.status.cancelled", "the prescription was cancelled")
    if rx.controlled_schedule == "II":
        f.add(RefillOutcome.not_automatable, "refill.us.schedule_ii", "US schedule II: never refilled")
    elif is_controlled(rx):
        f.add(RefillOutcome.not_automatable, "refill.controlled", "controlled medicine: never refilled automatically")
    if rx.controlled_schedule in ("III", "IV"):
        remaining = min(remaining, US_CIII_IV_MAX_REFILLS - rx.refills_used)
        if rx.refills_used >= US_CIII_IV_MAX_REFILLS:
            f.add(RefillOutcome.renewal_needed, "refill.us.schedule_iii_iv.max_refills",
                  f"US schedule III-IV: at most {US_CIII_IV_MAX_REFILLS} refills")
        if today > add_months(rx.issued_on, US_CIII_IV_MONTHS):
            f.add(RefillOutcome.renewal_needed, "refill.us.schedule_iii_iv.six_months",
                  f"US schedule III-IV: no refills {US_CIII_IV_MONTHS} months after issue")
    if rx.dk_dispensing_group in ("A§4", "A"):
        remaining = 0
        if dispensed_before:
            rule = "refill.dk.group_a4_once" if rx.dk_dispensing_group == "A§4" else "refill.dk.group_a_once"
            f.add(RefillOutcome.renewal_needed, rule, f"group {rx.dk_dispensing_group}: dispensed once, no repeats")
    return max(remaining, 0)


def decide_refill(
    rx: Prescription,
    dispenses: Sequence[Dispense],
    thresholds: Thresholds,
    today: date,
    *,
    order_time: time | None = None,
    calendar: PickupCalendar | None = None,
) -> RefillDecision:
    """Decide whether a refill can be requested today; dispenses are this prescription's, newest first."""
    f = _Findings()
    own = [d for d in dispenses if d.prescription_id == rx.prescription_id and d.dispensed_on <= today]
    last = max(own, key=lambda d: d.dispensed_on) if own else None
    dispensed_before = last is not None or rx.refills_used > 0
    remaining = _dispensing_rules(rx, dispensed_before, today, f)

    if rx.prior_auth_required and rx.prior_auth_status != "approved":
        f.add(RefillOutcome.not_automatable, "refill.prior_auth",
              f"prior authorisation required and {rx.prior_auth_status or 'missing'}")
    if rx.status == "expired" or today > rx.expires_on:
        f.add(RefillOutcome.renewal_needed, "refill.expired", f"the prescription expired on {rx.expires_on}")
    elif dispensed_before and remaining <= 0 and rx.dk_dispensing_group not in ("A§4", "A"):
        f.add(RefillOutcome.renewal_needed, "refill.no_refills_left", "no refills left")

    threshold, threshold_kind = thresholds.for_prescription(rx)
    earliest = None
    if last is None and dispensed_before:
        f.add(RefillOutcome.not_automatable, "refill.no_dispense_history",
              "refills used but no dispense on record: the timing cannot be checked")
    elif last is not None:
        earliest = earliest_refill(last, threshold)
        if earliest > rx.expires_on:
            f.add(RefillOutcome.renewal_needed, "refill.expires_before_due",
                  f"the refill is due {earliest}, after the prescription expires on {rx.expires_on}")
        elif earliest > today:
            f.add(RefillOutcome.refill_too_early, f"refill.too_early.{threshold_kind}",
                  f"{threshold:.0%} of {last.days_supply} days' supply from {last.dispensed_on} passes on {earliest}")

    outcome = f.outcome()
    ready_on = ready_from = None
    if outcome is RefillOutcome.refill_eligible:
        if not rx.in_stock:
            f.add(RefillOutcome.refill_eligible, "refill.out_of_stock", "not in stock: ordered from the wholesaler")
        f.add(RefillOutcome.refill_eligible, "refill.first_fill" if not dispensed_before else "refill.due",
              "first dispensing" if not dispensed_before else f"{remaining} refill(s) left and due since {earliest}")
        ready_on, ready_from = (calendar or PickupCalendar()).ready_at(today, order_time, rx.in_stock)
    findings = f.ordered()
    return RefillDecision(
        prescription_id=rx.prescription_id,
        outcome=outcome,
        earliest_date=earliest,
        reasons=tuple(reason for _, _, reason in findings),
        rule_ids=tuple(rule for _, rule, _ in findings),
        refills_remaining=remaining,
        ready_on=ready_on,
        ready_from=ready_from,
        threshold=threshold,
    )


def worst(outcomes: Sequence[RefillOutcome]) -> RefillOutcome:
    """The most restrictive of several outcomes (for a message naming several medicines)."""
    return next(o for o in _PRECEDENCE if o in outcomes)
