"""Every update of every journey refuses in one shape: the update fails with an
ApplicationError of type Refused whose message is the reason — whether its
validator refused it (no trace in history) or acting on it did (recorded as a
rejection, like a refused signal). The README documents this shape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from activities.store.staff import deactivate_staff
from domain import schema
from domain.courses import EnrollmentInput, LogCallback
from domain.leads import LeadInput, LogContact
from domain.payments import ContractInput, RecordPayment
from domain.tickets import TicketInput
from tests.harness import Harness, make_settings, refused, running_worker, seed_staff


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest_asyncio.fixture
async def harness(env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        yield h


async def until(check: Any) -> Any:
    for _ in range(400):
        if value := await check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def test_every_update_of_every_journey_refuses_in_one_shape(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    j = harness.journeys
    now = await env.get_current_time()

    # LeadJourney: claim_now, log_contact_now
    await j.start_lead(LeadInput(lead_id="U1", name="Li Lei", email="u1@example.com",
                                 region="east", product_line="erp", source="ads"))
    await until(lambda: _owned(j, "U1"))
    owner = (await j.lead_status("U1")).owner_id
    assert await refused(j.claim_lead("U1", "")) == "owner_id is required"
    assert "not in the pool" in await refused(j.claim_lead("U1", "rep-b"))
    assert await refused(j.log_contact("U1", LogContact(channel="phone"))) == \
        "owner_id is required"
    assert "is not one of: phone, email" in await refused(
        j.log_contact("U1", LogContact(owner_id=owner or "", channel="fax")))
    assert "does not own this lead" in await refused(
        j.log_contact("U1", LogContact(owner_id="rep-west", channel="phone")))

    # PaymentJourney: record_payment_now
    await j.sign_contract(ContractInput(contract_id="U2", customer_id="cust-1",
                                        owner_id="rep-a", amount=Decimal("1000"),
                                        currency="CNY", signed_at=now))
    await until(lambda: _milestones(j, "U2"))
    assert await refused(j.contract("U2").execute_update(
        "record_payment_now", {"reference": "R1"})) == "amount is required"
    assert "must be positive" in await refused(
        j.record_payment("U2", RecordPayment(amount=Decimal("-5"), reference="R1")))
    assert "does not match" in await refused(j.record_payment(
        "U2", RecordPayment(amount=Decimal("5"), reference="R1", currency="USD")))
    assert await refused(j.record_payment("U2", RecordPayment(amount=Decimal("5")))) == \
        "a payment reference is required"

    # CourseJourney: log_callback_now
    await j.enroll(EnrollmentInput(enrollment_id="U3", customer_id="cust-1",
                                   course_id="py-101", advisor_id="adv-1",
                                   ends_at=now + timedelta(days=30)))
    assert "no callback is due yet" in await refused(j.log_callback(
        "U3", LogCallback(advisor_id="adv-1", outcome="renewal_intent")))
    assert "not this student's advisor" in await refused(j.log_callback(
        "U3", LogCallback(advisor_id="adv-2", outcome="renewal_intent")))

    # TicketJourney: respond_now, resolve_now, rate_now — and a refusal found
    # while acting (an agent who has left), which is recorded as well
    await j.open_ticket(TicketInput(ticket_id="U4", customer_id="cust-1", type="technical",
                                    priority="normal", subject="printer", channel="email"))
    await until(lambda: _assigned(j, "U4"))
    assert await refused(j.respond("U4", "")) == "agent_id is required"
    assert await refused(j.resolve("U4", "tech-2", "  ")) == "a resolution is required"
    assert "nothing to rate yet" in await refused(j.rate("U4", 5))
    assert "out of range" in await refused(j.rate("U4", 9))
    deactivate_staff(harness.store, "tech-1", now=now)
    assert await refused(j.respond("U4", "tech-1")) == "tech-1 is inactive"
    rows = harness.rows(schema.SignalRejection, entity_id="U4")
    assert [(r.signal, r.reason) for r in rows] == [("respond", "tech-1 is inactive")]


async def _owned(j: Any, lead_id: str) -> bool:
    return (await j.lead_status(lead_id)).owner_id is not None


async def _milestones(j: Any, contract_id: str) -> bool:
    return bool((await j.contract_status(contract_id)).milestones)


async def _assigned(j: Any, ticket_id: str) -> bool:
    return (await j.ticket_status(ticket_id)).stage.value != "new"


async def test_signals_say_which_field_is_missing_or_not_allowed(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    j = harness.journeys
    now = await env.get_current_time()
    await j.start_lead(LeadInput(lead_id="U5", name="Han Mei", email="u5@example.com",
                                 region="east", product_line="erp", source="ads"))
    await until(lambda: _owned(j, "U5"))
    owner = (await j.lead_status("U5")).owner_id
    lead = j.lead("U5")
    await lead.signal("log_contact", {"channel": "phone"})
    await lead.signal("log_contact", {"owner_id": owner, "channel": "fax"})
    await j.sign_contract(ContractInput(contract_id="U6", customer_id="cust-1",
                                        owner_id="rep-a", amount=Decimal("1000"),
                                        currency="CNY", signed_at=now))
    await until(lambda: _milestones(j, "U6"))
    await j.contract("U6").signal("record_payment", {"reference": "R1"})

    async def rejections(entity_id: str, n: int) -> list[str] | None:
        rows = harness.rows(schema.SignalRejection, entity_id=entity_id)
        return [r.reason for r in rows] if len(rows) >= n else None

    lead_reasons = await until(lambda: rejections("U5", 2))
    assert lead_reasons[0] == "owner_id is required"
    assert lead_reasons[1].startswith("channel 'fax' is not one of: phone, email, sms")
    assert (await j.lead_status("U5")).contacts == 0
    assert await until(lambda: rejections("U6", 1)) == ["amount is required"]
