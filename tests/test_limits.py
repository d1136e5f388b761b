"""Unit tests of the store's limits at the boundary: start inputs refuse what
the store cannot keep, naming the field; signal models stay lenient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from activities.store.customers import CustomerRecord
from activities.store.staff import StaffMember
from domain import limits, schema
from domain.courses import CoursePolicy, EnrollmentInput, LogCallback
from domain.leads import Convert, Discard, LeadInput, LogContact
from domain.lifecycle import LifecycleInput, LifecyclePolicy, Purchase
from domain.money import to_minor
from domain.payments import ContractInput, MilestoneRule, PaymentPolicy, RecordPayment
from domain.policy import LeadPolicy
from domain.tickets import Rate, Resolve, Respond, TicketInput, TicketPolicy

SIGNED = "2026-03-02T09:00:00+08:00"

LEAD = {"lead_id": "L1", "name": "王芳", "phone": "13800138000", "region": "east",
        "product_line": "erp", "source": "web_form"}
CONTRACT = {"contract_id": "K1", "customer_id": "cust-1", "owner_id": "rep-a",
            "amount": "10000.00", "currency": "CNY", "signed_at": SIGNED}
TICKET = {"ticket_id": "T1", "customer_id": "cust-1", "type": "technical", "subject": "Printer"}
ENROLLMENT = {"enrollment_id": "E1", "customer_id": "cust-1", "course_id": "erp-101",
              "advisor_id": "adv-1", "ends_at": SIGNED}
STAFF = {"id": "rep-a", "name": "Rep A", "role": "rep"}
CUSTOMER = {"id": "cust-1", "name": "周杰"}

# Each text field of a start input (and of the CLI's records) and the store
# column it is written to.
TEXT_FIELDS: list[tuple[type[BaseModel], dict[str, Any], str, str]] = [
    (LeadInput, LEAD, "lead_id", "leads.id"),
    (LeadInput, LEAD, "name", "leads.name"),
    (LeadInput, LEAD, "company", "leads.company"),
    (LeadInput, LEAD, "region", "leads.region"),
    (LeadInput, LEAD, "product_line", "leads.product_line"),
    (LeadInput, LEAD, "source", "leads.source"),
    (LeadInput, LEAD, "locale", "leads.locale"),
    (LeadInput, LEAD, "timezone", "leads.timezone"),
    (ContractInput, CONTRACT, "contract_id", "contracts.id"),
    (ContractInput, CONTRACT, "customer_id", "contracts.customer_id"),
    (ContractInput, CONTRACT, "owner_id", "contracts.owner_id"),
    (TicketInput, TICKET, "ticket_id", "tickets.id"),
    (TicketInput, TICKET, "customer_id", "tickets.customer_id"),
    (TicketInput, TICKET, "subject", "tickets.subject"),
    (TicketInput, TICKET, "channel", "tickets.channel"),
    (EnrollmentInput, ENROLLMENT, "enrollment_id", "enrollments.id"),
    (EnrollmentInput, ENROLLMENT, "customer_id", "enrollments.customer_id"),
    (EnrollmentInput, ENROLLMENT, "course_id", "enrollments.course_id"),
    (EnrollmentInput, ENROLLMENT, "advisor_id", "enrollments.advisor_id"),
    (LifecycleInput, {"customer_id": "cust-1"}, "customer_id", "customers.id"),
    (StaffMember, STAFF, "id", "staff.id"),
    (StaffMember, STAFF, "name", "staff.name"),
    (StaffMember, STAFF, "group", "staff.group_name"),
    (StaffMember, STAFF, "timezone", "staff.timezone"),
    (StaffMember, STAFF, "locale", "staff.locale"),
    (StaffMember, STAFF, "chat", "staff.chat"),
    (StaffMember, STAFF, "manager_id", "staff.manager_id"),
    (CustomerRecord, CUSTOMER, "id", "customers.id"),
    (CustomerRecord, CUSTOMER, "name", "customers.name"),
    (CustomerRecord, CUSTOMER, "locale", "customers.locale"),
    (CustomerRecord, CUSTOMER, "company", "customers.company"),
    (CustomerRecord, CUSTOMER, "owner_id", "customers.owner_id"),
]


def column_length(dotted: str) -> int:
    table, column = dotted.split(".")
    length = schema.Base.metadata.tables[table].columns[column].type.length
    assert length is not None, dotted
    return int(length)


def problems(model: type[BaseModel], values: dict[str, Any]) -> dict[str, str]:
    """Each refused field (dotted) and pydantic's message about it."""
    with pytest.raises(ValidationError) as refused:
        model.model_validate(values)
    return {".".join(str(p) for p in e["loc"]) or "(input)": e["msg"]
            for e in refused.value.errors()}


# -- the limits mirror the schema ------------------------------------------------


@pytest.mark.parametrize(("model", "base", "field", "column"), TEXT_FIELDS,
                         ids=[f"{m.__name__}.{f}" for m, _, f, _ in TEXT_FIELDS])
def test_a_start_input_takes_what_its_column_holds_and_not_one_character_more(
        model: type[BaseModel], base: dict[str, Any], field: str, column: str) -> None:
    length = column_length(column)
    model.model_validate({**base, field: "a" * length})
    refused = problems(model, {**base, field: "a" * (length + 1)})
    assert list(refused) == [field]
    assert f"is {length + 1} characters long; the store keeps at most {length}" in refused[field]


def test_the_other_limits_match_their_columns() -> None:
    assert limits.CURRENCY_DIGITS and {len(c) for c in limits.CURRENCY_DIGITS} == {
        column_length("contracts.currency")}
    assert limits.PERCENT_TEXT == column_length("payment_milestones.percent")
    assert limits.MILESTONE_NAME == column_length("payment_milestones.name")
    assert limits.GROUP == column_length("tickets.group_name")
    assert limits.EMAIL == column_length("leads.email") == column_length("customers.email")
    assert limits.REFERENCE == column_length("payments.reference")
    assert limits.COUPON == column_length("orders.credited_coupon")
    assert limits.CATEGORY == column_length("orders.category")
    assert limits.NAME == column_length("opportunities.name")
    assert limits.CHANNEL == column_length("interactions.channel")
    # The largest amount in the currency with the most minor digits still fits
    # a BIGINT, many times over.
    assert to_minor(Decimal(limits.MAX_MINOR).scaleb(-4), "CLF") * 1000 < 2**63


# -- hostile start inputs --------------------------------------------------------


@pytest.mark.parametrize(("model", "base", "field", "column"), TEXT_FIELDS,
                         ids=[f"{m.__name__}.{f}" for m, _, f, _ in TEXT_FIELDS])
def test_a_nul_character_in_any_text_of_a_start_input_is_refused(
        model: type[BaseModel], base: dict[str, Any], field: str, column: str) -> None:
    refused = problems(model, {**base, field: "ab\x00c"})
    assert list(refused) == [field]
    assert "NUL" in refused[field]


@pytest.mark.parametrize("field", ["need", "email", "phone"])
def test_a_nul_in_a_lead_s_free_text_and_contact_details_is_refused(field: str) -> None:
    assert "NUL" in problems(LeadInput, {**LEAD, field: "x\x00y"})[field]


def test_a_locale_over_sixteen_characters_is_refused() -> None:
    refused = problems(LeadInput, {**LEAD, "locale": "zh-Hans-CN-x-private"})
    assert refused == {
        "locale": "Value error, is 20 characters long; the store keeps at most 16"}
    assert LeadInput.model_validate({**LEAD, "locale": "zh-Hans-CN"}).locale == "zh-Hans-CN"


def test_free_text_is_capped_for_workflow_history() -> None:
    assert list(problems(LeadInput, {**LEAD, "need": "x" * (limits.TEXT + 1)})) == ["need"]
    assert list(problems(TicketInput, {**TICKET, "description": "x" * (limits.TEXT + 1)})) == [
        "description"]
    LeadInput.model_validate({**LEAD, "need": "需" * limits.TEXT})


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


def test_a_policy_duration_must_lie_between_zero_and_ten_years() -> None:
    for model, base, field in [
        (LeadInput, LEAD, "first_touch"),
        (EnrollmentInput, ENROLLMENT, "callback_after"),
        (TicketInput, TICKET, "survey_after"),
        (LifecycleInput, {"customer_id": "c"}, "dormant_after"),
    ]:
        too_long = problems(model, {**base, "policy": {field: "P4000D"}})
        assert list(too_long) == [f"policy.{field}"], model
        negative = problems(model, {**base, "policy": {field: "-PT1H"}})
        assert list(negative) == [f"policy.{field}"], model
    assert list(problems(TicketInput, {**TICKET, "policy": {
        "resolution_targets": {"urgent": "P99999D"}}})) == ["policy.resolution_targets.urgent"]


def test_payment_day_counts_and_the_escalation_repeat_are_bounded() -> None:
    for field, value in [("escalation_days_after", 10**12), ("escalation_repeat_days", 0),
                         ("overdue_reminder_days_after", -1)]:
        assert list(problems(PaymentPolicy, {field: value})) == [field]
    assert list(problems(PaymentPolicy, {"reminder_days_before": [7, 10**12]})) == [
        "reminder_days_before.1"]


def test_a_coupon_percentage_fits_its_column_and_the_rfm_thresholds_are_bounded() -> None:
    assert list(problems(LifecyclePolicy, {"first_offer_percent": 10**12})) == [
        "first_offer_percent"]
    assert list(problems(LifecyclePolicy, {"rfm": {"core_monetary": "1e30"}})) == [
        "rfm.core_monetary"]
    assert list(problems(LifecyclePolicy, {"rfm": {"window_days": 10**12}})) == [
        "rfm.window_days"]


def test_a_ticket_policy_group_must_fit_the_group_column() -> None:
    refused = problems(TicketPolicy, {"groups": {"technical": "g" * 65}})
    assert list(refused) == ["groups.technical"]


def test_every_default_policy_and_the_settings_policies_are_within_the_limits() -> None:
    from domain.settings import Settings

    settings = Settings(_env_file=None)
    for policy in (LeadPolicy(), PaymentPolicy(), TicketPolicy(), CoursePolicy(),
                   LifecyclePolicy(), settings.lead_policy, settings.payment_policy,
                   settings.ticket_policy, settings.course_policy, settings.lifecycle_policy):
        type(policy).model_validate(policy.model_dump())


def test_a_lifecycle_carry_is_taken_as_it_comes() -> None:
    """The carry is the journey's own state between runs: a rejection recorded
    with a long reason must not stop the next run from starting."""
    start = LifecycleInput.model_validate({"customer_id": "c", "carry": {
        "stage": "active", "rejections": [{"signal": "purchase", "reason": "x\x00" * 20_000,
                                           "at": SIGNED}]}})
    assert start.carry is not None and len(start.carry.rejections) == 1


def test_a_staff_member_s_numbers_fit_integer_columns() -> None:
    assert list(problems(StaffMember, {**STAFF, "capacity": 10**12})) == ["capacity"]
    assert list(problems(StaffMember, {**STAFF, "seniority": -1})) == ["seniority"]
    assert list(problems(StaffMember, {**STAFF, "regions": ["east", "r" * 65]})) == ["regions.1"]


# -- signals stay lenient --------------------------------------------------------


def test_signal_models_take_what_the_store_will_refuse() -> None:
    """Replay decodes old signals with new code: a stricter signal model would
    change what a running journey did. The activities refuse these values."""
    hostile = "x" * 100_000 + "\x00"
    assert LogContact.model_validate({"owner_id": hostile, "channel": hostile,
                                      "note": hostile}).note == hostile
    convert = Convert.model_validate({"opportunity_name": hostile, "amount": "1e30",
                                      "currency": "ZZZZ"})
    assert convert.amount == Decimal("1e30") and convert.currency == "ZZZZ"
    assert Discard.model_validate({"reason": hostile}).reason == hostile
    payment = RecordPayment.model_validate({"amount": "1e30", "reference": hostile,
                                            "currency": "ZZZZ"})
    assert payment.currency == "ZZZZ"
    assert Purchase.model_validate({"order_id": hostile, "amount": "1e30", "category": hostile,
                                    "currency": "ZZZZ", "coupon_code": hostile}).order_id
    assert Respond.model_validate({"agent_id": hostile, "note": hostile}).note == hostile
    assert Resolve.model_validate({"agent_id": "a", "resolution": hostile}).resolution
    assert Rate.model_validate({"score": 10**12, "comment": hostile}).score == 10**12
    assert LogCallback.model_validate({"advisor_id": hostile, "note": hostile}).note


# -- the problem functions the activities use ------------------------------------

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


# -- journeys started before the limits --------------------------------------------


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
