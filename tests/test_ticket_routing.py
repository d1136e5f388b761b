"""Where a ticket goes: its group, its agent and its priority.
"""

from __future__ import annotations

from domain import schema
from domain.tickets import Priority, TicketStage
from tests import ticket_support
from tests.harness import Harness, eventually
from tests.ticket_support import HOUR, MINUTE, events, opened

# Fixtures shared with the other modules split from the same subject.
env = ticket_support.env
harness = ticket_support.harness


async def test_routed_to_the_group_and_its_least_loaded_agent(harness: Harness) -> None:
    owners = []
    for n in range(4):
        await opened(harness, f"T1-{n}")
        owners.append((await harness.journeys.ticket_status(f"T1-{n}")).assignee_id)
    # ties go to the more senior agent; then the one with fewest open tickets
    assert owners == ["tech-2", "tech-3", "tech-1", "tech-2"]
    status = await harness.journeys.ticket_status("T1-0")
    assert (status.group, status.stage) == ("technical", TicketStage.awaiting_response)
    assert status.first_response_due == status.opened_at + 15 * MINUTE
    assert status.resolution_due == status.opened_at + 24 * HOUR
    await opened(harness, "T1-o", type="order_query")
    await opened(harness, "T1-x", type="other")
    assert (await harness.journeys.ticket_status("T1-o")).assignee_id == "ord-1"
    assert (await harness.journeys.ticket_status("T1-x")).group == "general"
    notices = await eventually(lambda: len(t := harness.touches(step="ticket_assigned",
                                                                status="sent")) == 6 and t)
    assert [t.recipient_id for t in notices][:4] == owners
    [row] = harness.rows(schema.Ticket, id="T1-0")
    assert (row.group, row.assignee_id, row.status) == ("technical", "tech-2",
                                                        "awaiting_response")
    [assigned] = events(harness, "T1-0", "assigned")
    assert assigned.staff_id == "tech-2" and assigned.group == "technical"


async def test_complaint_words_raise_the_priority_and_route_to_a_senior_agent(
    harness: Harness,
) -> None:
    await opened(harness, "T2-a")  # tech-2 (the senior agent) now has one open ticket
    await opened(harness, "T2-b")  # tech-3
    await opened(harness, "T2-c", priority="low", subject="Driver crash",
                 description="第三次了，非常不满意，我要退款")
    status = await harness.journeys.ticket_status("T2-c")
    assert status.priority is Priority.high and status.priority_raised
    assert status.complaint_words == ["不满意", "退款"]
    assert status.assignee_id == "tech-2"  # the only agent with seniority >= 3
    assert status.resolution_due == status.opened_at + 4 * HOUR
    [row] = harness.rows(schema.Ticket, id="T2-c")
    assert (row.priority, row.requested_priority, row.priority_raised) == ("high", "low", True)
    [complaint] = events(harness, "T2-c", "complaint")
    assert complaint.detail == {"words": ["不满意", "退款"], "from": "low", "to": "high",
                                "raised": True}
    # an urgent complaint stays urgent; the words are still recorded
    await opened(harness, "T2-d", priority="urgent", subject="Refund now: COMPLAINT")
    status = await harness.journeys.ticket_status("T2-d")
    assert status.priority is Priority.urgent and not status.priority_raised
    assert status.complaint_words == ["complaint", "refund"]
    assert status.assignee_id == "tech-2"
    [notice] = await eventually(lambda: harness.touches(step="ticket_assigned",
                                                        recipient_id="tech-2", status="sent",
                                                        workflow_id="ticket-T2-c"))
    [message] = [m for m in harness.outbox_messages() if m["key"] == notice.key]
    assert "不满意" in message["body"]


async def test_urgent_words_give_a_complaint_the_urgent_target(harness: Harness) -> None:
    await opened(harness, "T2-u", priority="low", subject="打印机严重故障",
                 description="紧急！第三次投诉升级")
    status = await harness.journeys.ticket_status("T2-u")
    assert status.priority is Priority.urgent and status.priority_raised
    assert status.resolution_due == status.opened_at + HOUR
    assert {"严重", "紧急", "投诉升级"} <= set(status.complaint_words)
