"""Ready dates: the 12:00 cut-off, weekends, public holidays, short days and stock (pickup calendar)."""

from datetime import date, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.refill import PickupCalendar
from policy_rules.pharmacy import load_pharmacy

FACTS = load_pharmacy()
CAL = PickupCalendar(
    FACTS.pickup.order_cutoff, FACTS.pickup.ready_from, FACTS.pickup.short_day_cutoff,
    FACTS.pickup.short_day_ready_from, FACTS.holidays, FACTS.short_day_set, FACTS.pickup.out_of_stock_extra_weekdays,
)


@pytest.mark.parametrize(
    ("ordered", "at", "ready", "ready_from"),
    [
        (date(2026, 3, 6), time(11, 59), date(2026, 3, 6), time(15, 0)),     # Friday before noon: same day
        (date(2026, 3, 6), time(12, 0), date(2026, 3, 9), time(15, 0)),      # Friday at noon: Monday
        (date(2026, 3, 7), time(9, 0), date(2026, 3, 9), time(15, 0)),       # Saturday: next weekday
        (date(2026, 3, 8), time(9, 0), date(2026, 3, 9), time(15, 0)),       # Sunday: Monday
        (date(2026, 4, 1), time(13, 0), date(2026, 4, 7), time(15, 0)),      # before Easter: Tuesday after
        (date(2026, 4, 2), time(9, 0), date(2026, 4, 7), time(15, 0)),       # Maundy Thursday is closed
        (date(2026, 12, 24), time(9, 30), date(2026, 12, 24), time(11, 30)),  # short day, before 10:00
        (date(2026, 12, 24), time(10, 30), date(2026, 12, 28), time(15, 0)),  # short day, after 10:00
        (date(2026, 12, 23), time(14, 0), date(2026, 12, 24), time(11, 30)),  # next weekday is a short day
    ],
)
def test_ready_dates_from_the_pharmacy_calendar(ordered, at, ready, ready_from):
    assert CAL.ready_at(ordered, at) == (ready, ready_from)


def test_unknown_order_time_counts_as_after_the_cut_off():
    assert CAL.ready_at(date(2026, 3, 6), None) == (date(2026, 3, 9), time(15, 0))


def test_out_of_stock_adds_a_weekday_for_the_wholesaler():
    assert CAL.ready_at(date(2026, 3, 6), time(9, 0), in_stock=False) == (date(2026, 3, 9), time(15, 0))


@settings(max_examples=500, database=None)
@given(st.dates(date(2025, 12, 1), date(2027, 12, 31)), st.times(), st.booleans())
def test_ready_day_is_an_open_weekday_no_earlier_than_the_order(day, at, in_stock):
    ready, ready_from = CAL.ready_at(day, at, in_stock)
    assert ready >= day and CAL.is_open_weekday(ready)
    assert ready - day <= timedelta(days=8)
    assert ready_from == (time(11, 30) if ready in FACTS.short_day_set else time(15, 0))
    cutoff = time(10, 0) if day in FACTS.short_day_set else time(12, 0)
    same_day_expected = in_stock and CAL.is_open_weekday(day) and at < cutoff
    assert (ready == day) == same_day_expected


@settings(max_examples=300, database=None)
@given(st.dates(date(2025, 12, 1), date(2027, 12, 31)), st.times())
def test_out_of_stock_is_always_later_than_in_stock(day, at):
    assert CAL.ready_at(day, at, in_stock=False)[0] > CAL.ready_at(day, at, in_stock=True)[0]


@settings(max_examples=300, database=None)
@given(st.dates(date(2025, 12, 1), date(2027, 12, 31)), st.times(), st.times())
def test_ordering_later_in_the_day_is_never_ready_sooner(day, a, b):
    early, late = sorted((a, b))
    assert CAL.ready_at(day, early)[0] <= CAL.ready_at(day, late)[0]
