"""Erasure on request, on both engines: after `erase_customer` or `erase_lead`
no personal field of that person remains in any table, a later touch to them
is refused `erased`, and the KPIs of the period are what they were."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import activities.lifecycle_records  # noqa: F401 - registers the customer record loader
from activities.delivery import Message, TemplateRenderer
from activities.leads import LeadActivities
from activities.messaging import MessagingActivities
from activities.store import Store
from activities.store.erasure import (
    TOMBSTONE,
    ErasureError,
    Held,
    Person,
    erase_customer,
    erase_lead,
    unknown_entity_kinds,
)
from domain import schema
from domain.leads import IntakeRequest, LeadInput
from domain.messaging import MessageClass, Recipient, SendRequest
from domain.policy import LeadPolicy, MessagingPolicy, QuietHours
from starter.report import build_report
from tests.report_support import at, seed_tickets
from tests.test_report_sales import seed

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# cust-1 as the harness seeds them, and the forms a copy may hold them in.
CUSTOMER_VALUES = {"周杰", "zhou.jie@example.com", "+8613600136000", "13600136000"}
LEAD_VALUES = {"韩梅", "han.mei@example.com", "+8613911112222", "13911112222", "梅花贸易"}
NOW = datetime(2026, 5, 20, 2, 0, tzinfo=UTC)


class Outbox:
    """A deliverer that keeps what it is handed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(message)

    def drops_repeats(self, channel: str) -> bool:
        return True


def send_path(store: Store, outbox: Outbox) -> MessagingActivities:
    return MessagingActivities(store=store, renderer=TemplateRenderer(TEMPLATES),
                               deliverer=outbox,
                               policy=MessagingPolicy(quiet_hours=QuietHours(enabled=False)))


def welcome(lead_id: str, n: int = 1) -> SendRequest:
    return SendRequest(key=f"lead-{lead_id}:welcome:{n}", journey="lead", step="welcome",
                       message_class=MessageClass.transactional,
                       recipient=Recipient(kind="lead", id=lead_id), template="welcome",
                       entity_kind="lead", entity_id=lead_id, now=NOW + timedelta(minutes=n))


def to_customer(n: int) -> SendRequest:
    return SendRequest(key=f"customer-cust-1:core_advisor:{n}", journey="lifecycle",
                       step="core_advisor", message_class=MessageClass.transactional,
                       recipient=Recipient(kind="customer", id="cust-1"),
                       template="core_advisor", entity_kind="customer", entity_id="cust-1",
                       facts={"advisor": {"name": "a"}}, now=NOW + timedelta(minutes=n))


def intake(store: Store, lead_id: str, **fields: Any) -> None:
    LeadActivities(store=store, policy=LeadPolicy()).intake_lead(IntakeRequest(
        lead=LeadInput(lead_id=lead_id, region="east", product_line="erp", source="web_form",
                       **fields),
        workflow_id=f"lead-{lead_id}", now=NOW))


def personal_traces(store: Store, values: set[str]) -> list[str]:
    """Every cell of every table that holds one of `values`, as `table.column`."""
    found = []
    with store.unit_of_work() as session:
        for table in schema.Base.metadata.sorted_tables:
            for row in session.execute(select(table)).mappings():
                for column, cell in row.items():
                    text = cell if isinstance(cell, str) else json.dumps(
                        cell, ensure_ascii=False, default=str)
                    if any(value in text for value in values):
                        found.append(f"{table.name}.{column}")
    return found


def figures(store: Store) -> dict[str, Any]:
    report = build_report(store, start=date(2026, 5, 1), end=date(2026, 6, 1),
                          now=at(31, 23))
    return vars(report)


@pytest.fixture
def crm(store: Store) -> Store:
    """The report's store, with cust-1's details copied where a CRM copies them:
    a lead that became them, a contact note, a message's frozen record, a
    rejected signal, a ticket's text, a rating comment, consent."""
    seed(store)
    seed_tickets(store)
    intake(store, "L9", name="周杰", phone="136 0013 6000", email="zhou.jie@example.com")
    intake(store, "L8", name="韩梅", phone="13911112222", email="han.mei@example.com",
           company="梅花贸易")
    outbox = Outbox()
    assert send_path(store, outbox).send_message(to_customer(1)).status == "sent"
    assert send_path(store, outbox).send_message(welcome("L8")).status == "sent"
    with store.unit_of_work() as s:
        lead = s.get(schema.Lead, "L9")
        assert lead is not None
        lead.customer_id = "cust-1"
        s.add(schema.Interaction(key="i1", lead_id="L9", staff_id="rep-a", channel="phone",
                                 note="周杰 asked for a call back on 13600136000", at=NOW,
                                 recorded_at=NOW))
        s.add(schema.SignalRejection(key="r1", workflow_id="lead-L9", journey="lead",
                                     entity_id="L9", signal="merge",
                                     payload={"email": "zhou.jie@example.com"},
                                     reason="unknown lead", at=NOW))
        s.add(schema.Consent(subject_kind="customer", subject_id="cust-1", channel="email",
                             scope="marketing", at=NOW))
        s.add(schema.Consent(subject_kind="lead", subject_id="L8", channel="sms",
                             scope="all", at=NOW))
        s.add(schema.Opportunity(id="OPP-9", lead_id="L9", customer_id="cust-1",
                                 name="周杰's ERP", stage="lost", created_at=NOW,
                                 lost_note="周杰 chose another vendor"))
        s.add(schema.Onboarding(contract_id="K1", customer_id="cust-1", owner_id="rep-a",
                                signed_at=NOW, delivery_due_at=NOW, status="delivered",
                                delivery_note="delivered to 周杰 in person"))
        s.add(schema.LoyaltyMember(customer_id="cust-1", joined_at=NOW,
                                   birth_date=date(1990, 3, 4), level="silver",
                                   level_since=NOW, referral_code="R-CUST1", updated_at=NOW))
        ticket = s.get(schema.Ticket, "T1")
        assert ticket is not None
        ticket.subject, ticket.description = "周杰: invoice wrong", "call zhou.jie@example.com"
        s.add(schema.TicketRating(key="tr1", ticket_id="T1", customer_id="cust-1",
                                  group="technical", score=5, comment="thanks, 周杰",
                                  at=at(4, 13)))
    assert personal_traces(store, CUSTOMER_VALUES)  # the test sees what it looks for
    return store


def test_an_erased_customer_leaves_no_personal_field_and_the_kpis_stand(crm: Store) -> None:
    before = figures(crm)

    erased = erase_customer(crm, "cust-1", reason="erasure request #42", by="dpo", now=NOW)

    assert personal_traces(crm, CUSTOMER_VALUES) == []
    assert figures(crm) == before
    # Another person's data is untouched.
    assert personal_traces(crm, {"韩梅"})
    with crm.unit_of_work() as s:
        customer = s.get(schema.Customer, "cust-1")
        assert customer is not None
        assert (customer.name, customer.email, customer.phone) == (TOMBSTONE, None, None)
        assert customer.tier == "core"  # figures stay
        assert s.scalars(select(schema.Consent).where(
            schema.Consent.subject_id == "cust-1")).all() == []
        [record] = s.scalars(select(schema.Erasure)).all()
        assert (record.subject_kind, record.subject_id, record.erased_by, record.reason,
                record.erased_at) == ("customer", "cust-1", "dpo", "erasure request #42", NOW)
    assert {"customer-cust-1", "lead-L9", "ticket-T1", "contract-K1", "opportunity-OPP-9",
            "onboarding-K1", "membership-cust-1"} <= set(erased.workflow_ids)
    with crm.unit_of_work() as s:
        member = s.get(schema.LoyaltyMember, "cust-1")
        assert member is not None
        assert (member.birth_date, member.level) == (None, "silver")
    assert record.workflow_ids == erased.workflow_ids


def test_nothing_is_sent_to_an_erased_customer_or_their_lead_again(crm: Store) -> None:
    erase_customer(crm, "cust-1", reason="request", by="dpo", now=NOW)
    outbox = Outbox()

    refused = [send_path(crm, outbox).send_message(to_customer(2)),
               send_path(crm, outbox).send_message(welcome("L9", 2))]

    assert [(o.status, o.reason) for o in refused] == [("suppressed", "erased")] * 2
    assert outbox.messages == []


def test_an_erased_lead_leaves_no_trace_and_is_not_sent_to(crm: Store) -> None:
    before = figures(crm)

    erased = erase_lead(crm, "L8", reason="asked by phone", by="rep-a", now=NOW)

    assert erased.workflow_ids == ["lead-L8"]
    assert personal_traces(crm, LEAD_VALUES) == []
    assert figures(crm) == before
    outbox = Outbox()
    outcome = send_path(crm, outbox).send_message(welcome("L8", 2))
    assert (outcome.status, outcome.reason, outbox.messages) == ("suppressed", "erased", [])
    # A customer who was never erased still gets their messages.
    assert send_path(crm, outbox).send_message(to_customer(3)).status == "sent"


def test_an_erasure_names_its_reason_and_its_person(crm: Store) -> None:
    with pytest.raises(ErasureError, match="no customer 'nobody'"):
        erase_customer(crm, "nobody", reason="r", by="dpo", now=NOW)
    with pytest.raises(ErasureError, match="no lead 'nobody'"):
        erase_lead(crm, "nobody", reason="r", by="dpo", now=NOW)
    with pytest.raises(ErasureError, match="needs a reason"):
        erase_lead(crm, "L8", reason="  ", by="dpo", now=NOW)
    assert personal_traces(crm, LEAD_VALUES)  # refused: nothing erased


def test_every_journey_in_the_registry_is_one_an_erasure_looks_up() -> None:
    # A journey about a new kind of record names its part in its entry.
    assert unknown_entity_kinds() == []


def widgets_held(session: Any, person: Person) -> Held:
    """The part of a journey about widgets, added to the registry in a test."""
    return Held(ids=[f"w-{person.customer_id}"], rows={"widgets": 1})


def test_a_journey_added_to_the_registry_is_erased_through_its_own_part(
        crm: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import activities.store.erasure as erasure
    from domain.registry import JOURNEYS, JourneyEntry

    widget = JourneyEntry(name="widget", workflow="x:y", activities="x:y", policy="x:y",
                          id_prefix="widget", entity_kind="widget", noun="widget",
                          erasure="tests.test_erasure:widgets_held")
    monkeypatch.setattr(erasure, "JOURNEYS", (*JOURNEYS, widget))
    erased = erase_customer(crm, "cust-1", reason="request", by="dpo", now=NOW)
    assert "widget-w-cust-1" in erased.workflow_ids
    assert erased.rows["widgets"] == 1
    assert unknown_entity_kinds() == []
    # One without a part is named when erasing, not silently skipped.
    monkeypatch.setattr(erasure, "JOURNEYS", (*JOURNEYS, dataclasses.replace(widget, erasure=None)))
    assert unknown_entity_kinds() == ["widget"]
