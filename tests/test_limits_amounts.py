"""Amounts, currencies, milestone days and percentages, and times a start input
takes only when the store can keep them.
"""

from __future__ import annotations

from typing import Any

import pytest

from domain import limits
from domain.courses import EnrollmentInput
from domain.money import to_minor
from domain.payments import ContractInput, MilestoneRule
from domain.tickets import TicketInput
from tests.limits_support import CONTRACT, ENROLLMENT, TICKET, problems


@pytest.mark.parametrize("amount", ["1e30", "1E+999999999", "10000000000000.01", 10**20])
def test_an_amount_the_store_s_minor_units_cannot_hold_is_refused(amount: Any) -> None:
    refused = problems(ContractInput, {**CONTRACT, "amount": amount})
    (message,) = refused.values()
    assert "amount" in message and "beyond what the store can keep in CNY" in message


def test_the_largest_amount_still_signs() -> None:
    contract = ContractInput.model_validate({**CONTRACT, "amount": "10000000000000.00"})
    assert to_minor(contract.amount, contract.currency) == limits.MAX_MINOR


@pytest.mark.parametrize("amount", ["0", "-5"])
def test_a_contract_amount_must_be_positive(amount: str) -> None:
    (message,) = problems(ContractInput, {**CONTRACT, "amount": amount}).values()
    assert f"amount: {amount} must be positive" in message


@pytest.mark.parametrize("amount", ["NaN", "Infinity"])
def test_a_contract_amount_must_be_a_finite_number(amount: str) -> None:
    assert list(problems(ContractInput, {**CONTRACT, "amount": amount})) == ["amount"]


def test_an_amount_finer_than_the_currency_is_refused() -> None:
    (message,) = problems(ContractInput, {**CONTRACT, "amount": "10.001"}).values()
    assert "more than 2 decimal places for CNY" in message
    (message,) = problems(ContractInput, {**CONTRACT, "amount": "10.5",
                                          "currency": "JPY"}).values()
    assert "more than 0 decimal places for JPY" in message


@pytest.mark.parametrize("currency", ["ZZZZ", "ZZZ", "XXX", "", "C\x00Y", "人民币"])
def test_an_unknown_currency_is_refused(currency: str) -> None:
    refused = problems(ContractInput, {**CONTRACT, "currency": currency})
    assert list(refused) == ["currency"]
    assert "is not an ISO 4217 currency code" in refused["currency"]


@pytest.mark.parametrize("currency", ["CNY", "usd", "EUR", "JPY", "KWD", "HKD"])
def test_a_known_currency_is_taken_as_given(currency: str) -> None:
    assert ContractInput.model_validate({**CONTRACT, "currency": currency}).currency == currency


def test_due_days_beyond_ten_years_are_refused_naming_the_milestone() -> None:
    plan = [{"percent": 30, "due_days": 7}, {"percent": 70, "due_days": 10**12}]
    refused = problems(ContractInput, {**CONTRACT, "milestones": plan})
    assert list(refused) == ["milestones.1.due_days"]
    assert "1000000000000 days is outside 0-3660 days" in refused["milestones.1.due_days"]
    assert list(problems(ContractInput, {**CONTRACT, "milestones": [
        {"percent": 100, "due_days": -1}]})) == ["milestones.0.due_days"]
    plan[1]["due_days"] = limits.MAX_DAYS
    assert ContractInput.model_validate({**CONTRACT, "milestones": plan}).milestones


def test_a_milestone_percentage_must_fit_its_column() -> None:
    long_percent = "33.3333333333333333"
    assert len(long_percent) > limits.PERCENT_TEXT
    refused = problems(MilestoneRule, {"percent": long_percent, "due_days": 7})
    assert list(refused) == ["percent"]
    assert "16 characters" in refused["percent"]
    MilestoneRule.model_validate({"percent": "33.333333333333", "due_days": 7})
    assert list(problems(MilestoneRule, {"percent": 0, "due_days": 7})) == ["percent"]
    assert list(problems(MilestoneRule, {"percent": 101, "due_days": 7})) == ["percent"]
    assert list(problems(MilestoneRule, {"percent": 50, "due_days": 7,
                                         "name": "n" * 65})) == ["name"]


@pytest.mark.parametrize("field", ["signed_at"])
def test_a_time_beyond_the_calendar_s_safe_years_is_refused(field: str) -> None:
    refused = problems(ContractInput, {**CONTRACT, field: "9999-12-31T23:59:59-14:00"})
    assert "outside the years 1900-2999" in refused[field]
    refused = problems(EnrollmentInput, {**ENROLLMENT, "ends_at": "0001-01-01T00:00:00+00:00"})
    assert "outside the years" in refused["ends_at"]
    refused = problems(TicketInput, {**TICKET, "opened_at": "2999-12-31T23:00:00-14:00"})
    assert list(refused) == ["opened_at"]
