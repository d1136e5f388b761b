"""Properties of the limits over generated values: amounts in minor units,
text problems, names and due days taken exactly when the store can keep
them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain import limits
from domain.courses import EnrollmentInput
from domain.leads import LeadInput
from domain.lifecycle import LifecycleInput
from domain.money import to_minor
from domain.payments import ContractInput, MilestoneRule
from domain.tickets import TicketInput
from tests.limits_support import CONTRACT, ENROLLMENT, LEAD, TICKET

CURRENCIES = st.sampled_from(sorted(limits.CURRENCY_DIGITS))


@given(amount=st.decimals(allow_nan=True, allow_infinity=True), currency=CURRENCIES)
def test_an_amount_without_a_problem_fits_a_bigint_in_minor_units(
        amount: Decimal, currency: str) -> None:
    problem = limits.amount_problem(amount, currency)
    if problem is None:
        minor = to_minor(amount, currency)
        assert abs(minor) <= limits.MAX_MINOR < 2**63
    else:
        assert len(problem) < 120


@given(amount=st.integers(min_value=-(10**13), max_value=10**13), currency=CURRENCIES)
def test_whole_amounts_up_to_ten_trillion_have_no_problem_in_cents(
        amount: int, currency: str) -> None:
    if limits.CURRENCY_DIGITS[currency] <= 2:
        assert limits.amount_problem(Decimal(amount), currency) is None


@given(text=st.text(max_size=300), limit=st.integers(min_value=1, max_value=300))
def test_a_text_problem_is_a_nul_or_a_length_over_the_limit(text: str, limit: int) -> None:
    problem = limits.text_problem(text, limit)
    assert (problem is None) == ("\x00" not in text and len(text) <= limit)
    assert problem is None or "\x00" not in problem


@given(name=st.text(max_size=250))
def test_a_lead_name_is_taken_exactly_when_the_store_can_keep_it(name: str) -> None:
    fits = "\x00" not in name and len(name) <= limits.NAME
    try:
        lead = LeadInput.model_validate({**LEAD, "name": name})
    except ValidationError as exc:
        assert not fits
        assert [e["loc"] for e in exc.errors()] == [("name",)]
    else:
        assert fits and lead.name == name


@given(days=st.integers())
def test_due_days_are_taken_exactly_within_ten_years(days: int) -> None:
    try:
        rule = MilestoneRule.model_validate({"percent": 100, "due_days": days})
    except ValidationError as exc:
        assert not 0 <= days <= limits.MAX_DAYS
        assert [e["loc"] for e in exc.errors()] == [("due_days",)]
    else:
        assert rule.due_days == days
        # Due dates of any accepted plan stay valid dates.
        assert datetime(2999, 12, 31, tzinfo=UTC) + timedelta(days=days)


def test_a_problem_quotes_at_most_a_short_piece_of_the_value() -> None:
    problem = limits.currency_problem("Z" * 10_000)
    assert problem is not None and len(problem) < 100


def test_without_the_limits_a_start_input_is_taken_as_it_was_before_them() -> None:
    """A journey started before the limits is replayed with WITHOUT_LIMITS: a
    value the store happened to keep (SQLite keeps any length) must not stop it."""
    hostile = "x" * 300 + "\x00"
    lead = LeadInput.model_validate({**LEAD, "name": hostile, "locale": "zh-Hans-CN-x-private",
                                     "policy": {"first_touch": "P9999D"}},
                                    context=limits.WITHOUT_LIMITS)
    assert lead.name == hostile and lead.policy is not None
    contract = ContractInput.model_validate({
        **CONTRACT, "amount": "1e30", "currency": "ZZZZ", "signed_at": "9999-01-01T00:00:00Z",
        "milestones": [{"percent": "33.3333333333333333", "due_days": 10**12}],
        "policy": {"escalation_repeat_days": 0}}, context=limits.WITHOUT_LIMITS)
    assert contract.amount == Decimal("1e30") and contract.milestones
    TicketInput.model_validate({**TICKET, "subject": hostile, "opened_at": "0001-01-01T00:00Z"},
                               context=limits.WITHOUT_LIMITS)
    EnrollmentInput.model_validate({**ENROLLMENT, "course_id": hostile},
                                   context=limits.WITHOUT_LIMITS)
    LifecycleInput.model_validate({"customer_id": hostile, "policy": {
        "first_offer_percent": 10**12, "rfm": {"core_monetary": "1e30"}}},
        context=limits.WITHOUT_LIMITS)
    # What was refused before the limits still is: types, aware times.
    with pytest.raises(ValidationError):
        ContractInput.model_validate({**CONTRACT, "signed_at": "2026-03-02T09:00:00"},
                                     context=limits.WITHOUT_LIMITS)
