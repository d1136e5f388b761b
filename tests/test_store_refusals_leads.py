"""Values a lead's activities cannot keep, on SQLite and PostgreSQL: refused
before any write (InvalidInput), non-retryable, short and naming the field;
nothing is written and a legitimate value still goes through.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select
from temporalio.exceptions import ApplicationError

from activities.leads import LeadActivities
from activities.store import Store
from domain import limits, schema
from domain.leads import (
    AssignRequest,
    ClaimRequest,
    ContactRequest,
    ConvertRequest,
    IntakeRequest,
    LeadInput,
    LeadStage,
    StageChange,
)
from domain.policy import LeadPolicy
from tests.harness import seed_staff
from tests.refusals import HOUR, NOW, NUL, assert_invalid, refusal, run, snapshot


@pytest.fixture
def leads(store: Store) -> LeadActivities:
    seed_staff(store)
    activities = LeadActivities(store=store, policy=LeadPolicy())
    lead = LeadInput(lead_id="L1", name="王芳", phone="13800138000", region="east",
                     product_line="erp", source="web_form")
    run(activities.intake_lead, IntakeRequest(lead=lead, workflow_id="lead-L1", now=NOW))
    assigned = run(activities.assign_lead, AssignRequest(
        lead_id="L1", workflow_id="lead-L1", now=NOW, first_touch=timedelta(hours=24)))
    assert assigned.owner_id == "rep-a"
    return activities


def contact(n: int, **values: Any) -> ContactRequest:
    return ContactRequest.model_validate({
        "lead_id": "L1", "workflow_id": "lead-L1", "owner_id": "rep-a", "channel": "phone",
        "note": "demo booked", "now": NOW + HOUR, "assigned_at": NOW,
        "follow_up": timedelta(days=3), "n": n, **values})


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("note", NUL, "contains a NUL character"),
    ("note", "x" * (limits.TEXT + 1), f"the store keeps at most {limits.TEXT}"),
    ("channel", NUL, "contains a NUL character"),
    ("channel", "c" * 33, "is 33 characters long; the store keeps at most 32"),
    ("owner_id", "rep-a\x00", "contains a NUL character"),
    ("owner_id", "r" * 65, "is 65 characters long; the store keeps at most 64"),
])
def test_a_contact_the_store_cannot_keep_is_refused_and_writes_nothing(
        leads: LeadActivities, store: Store, field: str, value: str, problem: str) -> None:
    before = snapshot(store)
    assert_invalid(refusal(leads.record_contact, contact(1, **{field: value})), field, problem)
    assert snapshot(store) == before
    decision = run(leads.record_contact, contact(1))
    assert decision.accepted
    with store.unit_of_work() as session:
        assert session.scalars(select(schema.Interaction.note)).all() == ["demo booked"]


def test_a_claim_naming_a_hostile_id_is_refused(leads: LeadActivities, store: Store) -> None:
    before = snapshot(store)
    request = ClaimRequest(lead_id="L1", workflow_id="lead-L1", owner_id="rep-b\x00", now=NOW,
                           first_touch=timedelta(hours=24), n=2)
    assert_invalid(refusal(leads.claim_lead, request), "owner_id", "contains a NUL")
    assert snapshot(store) == before


def convert(**values: Any) -> ConvertRequest:
    return ConvertRequest.model_validate({
        "lead_id": "L1", "workflow_id": "lead-L1", "owner_id": "rep-a",
        "opportunity_name": "ERP for three plants", "amount": "250000.00", "currency": "CNY",
        "now": NOW + HOUR, **values})


@pytest.mark.parametrize(("values", "field", "problem"), [
    ({"amount": "1e30"}, "amount", "1E+30 is beyond what the store can keep in CNY"),
    ({"amount": 10**19}, "amount", "is beyond what the store can keep in CNY"),
    ({"amount": "0.001"}, "amount", "0.001 has more than 2 decimal places for CNY"),
    ({"currency": "ZZZZ"}, "currency", "'ZZZZ' is not an ISO 4217 currency code"),
    ({"currency": "ZZZ", "amount": "1e30"}, "currency", "'ZZZ' is not an ISO 4217"),
    ({"currency": "C\x00Y"}, "currency", "is not an ISO 4217 currency code"),
    ({"opportunity_name": "n" * 201}, "opportunity_name", "the store keeps at most 200"),
    ({"opportunity_name": NUL}, "opportunity_name", "contains a NUL character"),
])
def test_a_conversion_the_store_cannot_keep_is_refused_and_writes_nothing(
        leads: LeadActivities, store: Store, values: dict[str, Any], field: str,
        problem: str) -> None:
    before = snapshot(store)
    assert_invalid(refusal(leads.convert_lead, convert(**values)), field, problem)
    assert snapshot(store) == before
    assert run(leads.convert_lead, convert(amount="10000000000000.00")) == "opp-L1"
    with store.unit_of_work() as session:
        opportunity = session.get(schema.Opportunity, "opp-L1")
        assert opportunity is not None and opportunity.amount_minor == limits.MAX_MINOR


def test_a_discard_reason_with_a_nul_is_refused_and_the_lead_stays_open(
        leads: LeadActivities, store: Store) -> None:
    def discard(reason: str) -> StageChange:
        return StageChange(lead_id="L1", workflow_id="lead-L1", stage=LeadStage.discarded,
                           now=NOW + HOUR, step="discarded", reason=reason)

    before = snapshot(store)
    assert_invalid(refusal(leads.change_lead_stage, discard(NUL)), "reason", "contains a NUL")
    assert snapshot(store) == before
    run(leads.change_lead_stage, discard("wrong number, 空号"))
    with store.unit_of_work() as session:
        lead = session.get(schema.Lead, "L1")
        assert lead is not None and (lead.stage, lead.close_reason) == ("discarded",
                                                                        "wrong number, 空号")


_CONTACTS = itertools.count(1)
NOTES = st.one_of(
    st.text(max_size=40),
    st.tuples(st.text(max_size=10), st.text(max_size=10)).map(lambda p: p[0] + "\x00" + p[1]),
    st.integers(min_value=limits.TEXT - 1, max_value=limits.TEXT + 1).map(lambda n: "记" * n),
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(note=NOTES)
def test_a_contact_note_is_kept_exactly_or_refused_naming_it(
        leads: LeadActivities, store: Store, note: str) -> None:
    n = next(_CONTACTS)
    fits = limits.text_problem(note, limits.TEXT) is None
    try:
        run(leads.record_contact, contact(n, note=note))
    except ApplicationError as error:
        assert not fits
        assert_invalid(error, "note", "")
        with store.unit_of_work() as session:
            assert session.scalar(select(schema.Interaction.id).where(
                schema.Interaction.key == f"lead-L1:contact:{n}")) is None
    else:
        assert fits
        with store.unit_of_work() as session:
            assert session.scalar(select(schema.Interaction.note).where(
                schema.Interaction.key == f"lead-L1:contact:{n}")) == note


def fitting(limit: int) -> st.SearchStrategy[str]:
    """Text a column of `limit` characters keeps: short, or exactly at the limit."""
    return st.one_of(st.text(max_size=12).map(lambda t: "x" + t.replace("\x00", "")),
                     st.just("长" * limit))


def unfitting(limit: int) -> st.SearchStrategy[str]:
    return st.one_of(st.just("长" * (limit + 1)),
                     st.text(max_size=5).map(lambda t: "x\x00" + t))


LEAD_TEXTS = {"name": limits.NAME, "company": limits.NAME, "region": limits.REGION,
              "product_line": limits.PRODUCT_LINE, "source": limits.SOURCE,
              "locale": limits.LOCALE, "timezone": limits.TIMEZONE, "need": limits.TEXT}


HOSTILE_LEAD_TEXT = st.one_of(st.none(), st.sampled_from(sorted(LEAD_TEXTS)).flatmap(
    lambda field: st.tuples(st.just(field), unfitting(LEAD_TEXTS[field]))))


_LEADS = itertools.count(1)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.fixed_dictionaries({f: fitting(n) for f, n in LEAD_TEXTS.items()}),
       hostile=HOSTILE_LEAD_TEXT)
def test_a_lead_the_start_input_takes_is_one_the_store_keeps(
        leads: LeadActivities, store: Store, values: dict[str, str],
        hostile: tuple[str, str] | None) -> None:
    """The start input's limits mirror the store: whatever it takes, intake
    writes as it was given; a value over a limit is refused naming its field."""
    lead_id = f"H{next(_LEADS)}"
    if hostile is not None:
        values = {**values, hostile[0]: hostile[1]}
    raw = {"lead_id": lead_id, "email": f"{lead_id.lower()}@example.com", **values}
    try:
        lead = LeadInput.model_validate(raw)
    except ValidationError as refused:
        assert hostile is not None
        assert [e["loc"] for e in refused.errors()] == [(hostile[0],)]
        event("refused")
        return
    assert hostile is None
    event("written")
    run(leads.intake_lead, IntakeRequest(lead=lead, workflow_id=f"lead-{lead_id}", now=NOW))
    with store.unit_of_work() as session:
        row = session.get(schema.Lead, lead_id)
        assert row is not None
        assert (row.company, row.region, row.locale, row.timezone, row.need) == (
            values["company"], values["region"], values["locale"], values["timezone"],
            values["need"])
