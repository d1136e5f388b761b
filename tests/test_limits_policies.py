"""Policies, settings, staff numbers and signal models within the store's
limits.
"""

from __future__ import annotations

from decimal import Decimal

from activities.store.staff import StaffMember
from domain.courses import CoursePolicy, EnrollmentInput, LogCallback
from domain.leads import Convert, Discard, LeadInput, LogContact
from domain.lifecycle import LifecycleInput, LifecyclePolicy, Purchase
from domain.payments import PaymentPolicy, RecordPayment
from domain.policy import LeadPolicy
from domain.tickets import Rate, Resolve, Respond, TicketInput, TicketPolicy
from tests.limits_support import ENROLLMENT, LEAD, SIGNED, STAFF, TICKET, problems


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
