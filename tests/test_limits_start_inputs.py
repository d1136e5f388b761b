"""Every start input takes what its column holds and not one character more,
refuses NUL characters, and caps free text for workflow history.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from activities.store.customers import CustomerRecord
from activities.store.staff import StaffMember
from domain import limits, schema
from domain.courses import EnrollmentInput
from domain.leads import LeadInput
from domain.lifecycle import LifecycleInput
from domain.money import to_minor
from domain.payments import ContractInput
from domain.tickets import TicketInput
from tests.limits_support import CONTRACT, ENROLLMENT, LEAD, STAFF, TICKET, problems

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
