"""Money in minor units and rounding, and SLA deadlines. Pure rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import from_minor, round_money, to_minor
from domain.sla import CalendarClock
from tests.domain_support import CST, utc


def test_yuan_go_to_fen_and_back_exactly() -> None:
    assert to_minor(Decimal("999.99"), "CNY") == 99999
    assert from_minor(99999, "CNY") == Decimal("999.99")
    assert str(from_minor(99999, "CNY")) == "999.99"
    assert str(from_minor(100, "cny")) == "1.00"


def test_yen_have_no_minor_unit() -> None:
    assert to_minor(Decimal("1500"), "JPY") == 1500
    assert from_minor(1500, "JPY") == Decimal("1500")


@pytest.mark.parametrize(("amount", "currency"), [("1.005", "CNY"), ("1500.5", "JPY")])
def test_an_amount_finer_than_the_currency_allows_is_refused(amount: str, currency: str) -> None:
    with pytest.raises(ValueError, match=currency):
        to_minor(Decimal(amount), currency)


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["CNY", "USD", "JPY"]))
def test_minor_units_survive_a_round_trip(minor: int, currency: str) -> None:
    assert to_minor(from_minor(minor, currency), currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [("0.005", "CNY", "0.01"), ("2.675", "CNY", "2.68"), ("2.674", "CNY", "2.67"),
     ("2.5", "JPY", "3")],
)
def test_money_rounds_half_up(amount: str, currency: str, rounded: str) -> None:
    assert round_money(Decimal(amount), currency) == Decimal(rounded)


def test_a_deadline_is_start_plus_duration_in_utc() -> None:
    due = CalendarClock().due(datetime(2026, 1, 5, 9, 0, tzinfo=CST), timedelta(hours=24))
    assert due == utc(2026, 1, 6, 1, 0)
    assert due.tzinfo is UTC


def test_an_sla_start_without_a_utc_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        CalendarClock().due(datetime(2026, 1, 5, 9, 0), timedelta(hours=24))
