"""A ticket handed to another team (`transfer`) on the time-skipping server:
the target group's least-loaded agent takes it, the agent and the customer
are told, the SLA clock keeps running (the first response is escalated at
its original time, to the new group's supervisor), transfers back and forth
beyond the policy's number alert the supervisor, and bad transfers are
refused with the reason."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from domain import schema
from domain.tickets import TicketStage, Transfer
from tests import ticket_support
from tests.harness import Harness, eventually
from tests.ticket_support import MINUTE, events, opened, responded, ticket_when

env = ticket_support.env
harness = ticket_support.harness


def transfer(to_group: str, reason: str = "needs the after-sales team",
             by: str = "tech-1") -> Transfer:
    return Transfer(to_group=to_group, reason=reason, by=by)


async def test_a_transfer_routes_to_the_target_group_and_keeps_the_sla_clock(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "TR1")
    before = await ticket_when(harness, "TR1", lambda s: s.assignee_id is not None)
    await env.sleep(10 * MINUTE)
    await handle.signal("transfer", transfer("after_sales"))
    status = await ticket_when(harness, "TR1", lambda s: s.group == "after_sales")
    assert (status.assignee_id, status.transfers) == ("as-1", 1)
    # The deadlines stand: a transfer is not a new ticket.
    assert status.first_response_due == before.first_response_due
    assert status.resolution_due == before.resolution_due
    [row] = harness.rows(schema.Ticket, id="TR1")
    assert (row.group, row.assignee_id) == ("after_sales", "as-1")
    [moved] = events(harness, "TR1", "transferred")
    assert moved.detail["from_group"] == "technical" and moved.detail["by"] == "tech-1"
    await eventually(lambda: harness.touches(step="ticket_transferred", recipient_id="as-1",
                                             status="sent"))
    await eventually(lambda: harness.touches(step="ticket_transferred_customer",
                                             recipient_id="cust-1", status="sent"))
    # Unanswered, it escalates at the original 15 minutes, to the new group's supervisor.
    await env.sleep(5 * MINUTE + MINUTE)
    status = await ticket_when(harness, "TR1",
                               lambda s: s.stage is TicketStage.escalated_supervisor)
    [escalation] = [e for e in harness.rows(schema.Escalation, entity_id="TR1")]
    assert escalation.to_staff_id == "sup-after_sales"
    assert escalation.at - status.opened_at < 16 * MINUTE


async def test_transfers_back_and_forth_beyond_the_policy_alert_the_supervisor(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "TR2")
    await responded(harness, "TR2")
    for n, group in enumerate(["after_sales", "technical"], 1):
        await handle.signal("transfer", transfer(group))
        await ticket_when(harness, "TR2", lambda s, n=n: s.transfers == n)
    assert not harness.touches(step="ticket_transfers_alert")
    await handle.signal("transfer", transfer("after_sales", reason="back again"))
    await ticket_when(harness, "TR2", lambda s: s.transfers == 3)
    [alert] = await eventually(lambda: harness.touches(step="ticket_transfers_alert"))
    assert alert.recipient_id == "sup-after_sales"


async def test_bad_transfers_are_refused_and_change_nothing(harness: Harness,
                                                            env: WorkflowEnvironment) -> None:
    handle = await opened(harness, "TR3")
    for bad in (transfer("legal"), transfer("technical"), transfer("after_sales", reason=" "),
                transfer("after_sales", by=""), Transfer()):
        await handle.signal("transfer", bad)
    status = await ticket_when(harness, "TR3", lambda s: len(s.rejections) == 5)
    reasons = [r.reason for r in status.rejections]
    assert reasons[0].startswith("unknown group 'legal': expected one of after_sales")
    assert reasons[1] == "the ticket is already with technical"
    assert reasons[2] == "a reason is required to transfer a ticket"
    assert reasons[3] == "by is required: who transfers the ticket"
    assert reasons[4].startswith("to_group is required")
    assert (status.group, status.transfers) == ("technical", 0)
    assert not events(harness, "TR3", "transferred")
