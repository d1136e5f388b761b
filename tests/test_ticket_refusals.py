"""What the ticket journey refuses: invalid signals, updates, and a start it
cannot take.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from domain import schema
from domain.tickets import (
    CustomerReplied,
    Rate,
    Reopen,
    Resolve,
    Respond,
    TicketInput,
    TicketStage,
    WaitOnCustomer,
)
from tests import ticket_support
from tests.harness import Harness, refused
from tests.ticket_support import events, opened, responded, ticket_when

# Fixtures shared with the other modules split from the same subject.
env = ticket_support.env
harness = ticket_support.harness


async def test_invalid_signals_are_rejected_with_their_reason_and_change_nothing(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "T17")
    await handle.signal("respond", Respond(agent_id="nobody"))
    await handle.signal("respond", Respond(agent_id="as-1"))
    await handle.signal("respond", Respond(agent_id="rep-a"))
    await handle.signal("wait_on_customer", WaitOnCustomer())
    await handle.signal("rate", Rate(score=5))
    await handle.signal("reopen", Reopen(reason="why not"))
    await handle.signal("resolve", Resolve(agent_id="tech-2", resolution="  "))
    await handle.signal("respond", {"agent_id": ["tech-2"]})
    status = await ticket_when(harness, "T17", lambda s: len(s.rejections) == 8)
    reasons = [r.reason for r in status.rejections]
    assert reasons[0] == "unknown agent 'nobody'"
    assert reasons[1] == "as-1 is in group 'after_sales', not this ticket's group 'technical'"
    assert reasons[2] == "rep-a is a rep, not a support agent"
    assert "no first response yet" in reasons[3]
    assert reasons[4] == "the ticket is not resolved (stage awaiting_response): nothing to rate yet"
    assert reasons[5] == "the ticket is not resolved (stage awaiting_response)"
    assert reasons[6] == "a resolution is required"
    assert reasons[7].startswith("malformed")
    assert status.stage is TicketStage.awaiting_response and status.first_response_at is None
    assert len(harness.rows(schema.SignalRejection, entity_id="T17")) == 8
    assert not events(harness, "T17", "responded")

    await responded(harness, "T17")
    await handle.signal("customer_replied", CustomerReplied())
    assert (await harness.journeys.resolve("T17", "tech-2", "Fixed")).accepted
    await handle.signal("rate", Rate(score=7))
    await handle.signal("rate", Rate(score=0))
    await handle.signal("respond", Respond(agent_id="tech-2"))
    await handle.signal("resolve", Resolve(agent_id="tech-2", resolution="Fixed again"))
    status = await ticket_when(harness, "T17", lambda s: len(s.rejections) == 13)
    reasons = [r.reason for r in status.rejections][8:]
    assert reasons == [
        "the ticket is not waiting on the customer",
        "score 7 is out of range: 1-5",
        "score 0 is out of range: 1-5",
        "the ticket is resolved (reopen it first)",
        "the ticket is already resolved (by tech-2)",
    ]
    assert status.stage is TicketStage.resolved and status.rating is None
    # the updates answer at once
    assert await refused(harness.journeys.rate("T17", 9)) == "score 9 is out of range: 1-5"
    assert (await refused(harness.journeys.respond("T17", "tech-1"))
            == "the ticket is resolved (reopen it first)")
    assert len((await harness.journeys.ticket_status("T17")).rejections) == 13


async def test_updates_answer_with_the_reason(harness: Harness) -> None:
    await opened(harness, "T18")
    assert "not this ticket's group" in await refused(harness.journeys.respond("T18", "ord-1"))
    assert "not escalated to" in await refused(harness.journeys.respond("T18", "mgr-support"))
    assert (await harness.journeys.respond("T18", "tech-3")).accepted
    status = await harness.journeys.ticket_status("T18")
    assert status.assignee_id == "tech-2" and status.stage is TicketStage.in_progress


async def test_a_resolve_on_a_closed_ticket_is_rejected(harness: Harness,
                                                        env: WorkflowEnvironment) -> None:
    handle = await opened(harness, "T19")
    assert (await harness.journeys.resolve("T19", "tech-2", "Done")).accepted
    assert (await harness.journeys.rate("T19", 5)).accepted
    await ticket_when(harness, "T19", lambda s: s.stage is TicketStage.closed)
    await handle.signal("resolve", Resolve(agent_id="tech-2", resolution="again"))
    await handle.signal("reopen", Reopen(reason="again"))
    status = await ticket_when(harness, "T19", lambda s: len(s.rejections) == 2)
    assert [r.reason for r in status.rejections] == [
        "the ticket is closed", "the ticket is closed; open a new ticket"]
    result = await handle.result()  # a day after closing the journey completes
    assert result.stage is TicketStage.closed and result.closed_at is not None


async def test_an_unknown_customer_fails_the_ticket_at_once(harness: Harness) -> None:
    handle = await harness.journeys.open_ticket(TicketInput(
        ticket_id="T20", customer_id="nobody", type="technical", subject="x", channel="web"))
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "unknown customer 'nobody'" in str(failure.value.cause)
    assert not harness.rows(schema.Ticket, id="T20")


async def test_an_invalid_start_input_fails_at_once(harness: Harness) -> None:
    handle = await harness.client.start_workflow(
        "TicketJourney", {"ticket_id": "T21", "customer_id": "cust-1", "type": "nonsense",
                          "subject": "x"},
        id="ticket-T21", task_queue=harness.task_queue)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
