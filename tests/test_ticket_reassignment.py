"""A deactivated agent's tickets: who takes them over.
"""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from activities.store.staff import StaffMember, add_staff, deactivate_staff
from domain import schema
from domain.tickets import TicketStage
from tests import ticket_support
from tests.harness import Harness, eventually, refused
from tests.ticket_support import MINUTE, escalations, events, opened, responded, ticket_when
from workflows.kit import CRM_OWNER_ID

# Fixtures shared with the other modules split from the same subject.
env = ticket_support.env
harness = ticket_support.harness


async def test_a_deactivated_assignee_hands_the_ticket_to_the_least_loaded_active_agent(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "T30")
    before = await harness.journeys.ticket_status("T30")
    assert before.assignee_id == "tech-2"
    await env.sleep(MINUTE)
    leaving = deactivate_staff(harness.store, "tech-2", now=await env.get_current_time())
    assert leaving == ["ticket-T30"]
    await harness.journeys.tell_staff_deactivated(leaving, "tech-2")
    status = await ticket_when(harness, "T30", lambda s: s.assignee_id != "tech-2")
    # tech-1 and tech-3 hold no tickets: the tie goes to the more senior, tech-3
    assert status.assignee_id == "tech-3" and status.previous_assignees == ["tech-2"]
    assert status.stage is TicketStage.awaiting_response and not status.rejections
    # the SLA is unaffected
    assert status.first_response_due == before.first_response_due
    assert status.resolution_due == before.resolution_due
    assert harness.rows(schema.Ticket, id="T30")[0].assignee_id == "tech-3"
    [event] = events(harness, "T30", "reassigned")
    assert event.staff_id == "tech-3" and event.group == "technical"
    assert (event.detail["from"], event.detail["reason"], event.detail["fallback"]) == (
        "tech-2", "staff_deactivated", None)
    [notice] = await eventually(lambda: harness.touches(step="ticket_reassigned", status="sent"))
    assert notice.recipient_id == "tech-3" and notice.workflow_id == "ticket-T30"
    [message] = [m for m in harness.outbox_messages() if m["key"] == notice.key]
    assert "tech-2 已离岗" in message["body"] and "T30" in message["title"]
    description = await handle.describe()
    assert description.typed_search_attributes.get(CRM_OWNER_ID) == "tech-3"
    # the later steps go to the new assignee, not to the one who left
    await env.sleep(10 * MINUTE)
    [warning] = await eventually(lambda: harness.touches(step="first_response_warning",
                                                         status="sent"))
    assert warning.recipient_id == "tech-3"
    await env.sleep(5 * MINUTE)
    [escalation] = await eventually(lambda: escalations(harness, "T30"))
    assert (escalation.from_staff_id, escalation.to_staff_id) == ("tech-3", "sup-technical")
    await eventually(lambda: harness.touches(step="first_response_escalated",
                                             recipient_id="sup-technical", status="sent"))
    [breach] = events(harness, "T30", "breached")
    assert breach.staff_id == "tech-3"
    assert not [t for t in harness.touches(recipient_id="tech-2")
                if t.step != "ticket_assigned"]
    # the one who left may no longer answer; the new assignee may
    assert await refused(harness.journeys.respond("T30", "tech-2")) == "tech-2 is inactive"
    await responded(harness, "T30", "tech-3")


async def test_a_complaint_is_handed_to_an_active_senior_agent(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    add_staff(harness.store, StaffMember(
        id="tech-4", name="Tech Four", role="agent", group="technical", seniority=3,
        manager_id="sup-technical", chat="tech-4"), now=await env.get_current_time())
    await opened(harness, "T31-a")
    await opened(harness, "T31-b")
    await opened(harness, "T31-c", subject="Driver crash", description="非常不满意")
    assert [(await harness.journeys.ticket_status(t)).assignee_id
            for t in ("T31-a", "T31-b", "T31-c")] == ["tech-2", "tech-4", "tech-2"]
    leaving = deactivate_staff(harness.store, "tech-2", now=await env.get_current_time())
    assert leaving == ["ticket-T31-a", "ticket-T31-c"]
    await harness.journeys.tell_staff_deactivated(leaving, "tech-2")
    # the plain ticket to the least-loaded agent; the complaint to the senior
    # agent although tech-1 and tech-3 hold fewer tickets
    a = await ticket_when(harness, "T31-a", lambda s: s.assignee_id != "tech-2")
    c = await ticket_when(harness, "T31-c", lambda s: s.assignee_id != "tech-2")
    assert (a.assignee_id, c.assignee_id) == ("tech-3", "tech-4")
    [event] = events(harness, "T31-c", "reassigned")
    assert event.staff_id == "tech-4" and event.detail["senior"] is True
    await eventually(lambda: harness.touches(step="ticket_reassigned", recipient_id="tech-4",
                                             workflow_id="ticket-T31-c", status="sent"))


async def test_a_deactivation_that_is_not_about_the_assignee_changes_nothing(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "T32")
    assert deactivate_staff(harness.store, "tech-1", now=await env.get_current_time()) == []
    await harness.journeys.tell_staff_deactivated(["ticket-T32"], "tech-1")
    await harness.journeys.tell_staff_deactivated(["ticket-T32"], "rep-a")
    # malformed ones are rejected, after the broadcasts (signals are acted on in order)
    await handle.signal("staff_deactivated", {})
    await handle.signal("staff_deactivated", {"staff_id": ["tech-2"]})
    status = await ticket_when(harness, "T32", lambda s: len(s.rejections) == 2)
    assert status.rejections[0].reason == "staff_id is required"
    assert status.rejections[1].reason.startswith("malformed: staff_id")
    assert status.assignee_id == "tech-2" and status.previous_assignees == []
    assert status.stage is TicketStage.awaiting_response
    assert harness.rows(schema.Ticket, id="T32")[0].assignee_id == "tech-2"
    assert len(harness.rows(schema.SignalRejection, entity_id="T32")) == 2
    assert not events(harness, "T32", "reassigned")
    # a closed ticket no longer needs its assignee: nothing is handed on
    assert (await harness.journeys.resolve("T32", "tech-2", "Done")).accepted
    assert (await harness.journeys.rate("T32", 5)).accepted
    await ticket_when(harness, "T32", lambda s: s.stage is TicketStage.closed)
    assert deactivate_staff(harness.store, "tech-2", now=await env.get_current_time()) == []
    await harness.journeys.tell_staff_deactivated(["ticket-T32"], "tech-2")
    await handle.signal("staff_deactivated", {})
    status = await ticket_when(harness, "T32", lambda s: len(s.rejections) == 3)
    assert status.rejections[2].reason == "staff_id is required"
    assert status.assignee_id == "tech-2" and status.stage is TicketStage.closed
    assert harness.rows(schema.Ticket, id="T32")[0].assignee_id == "tech-2"
    assert not events(harness, "T32", "reassigned")
    assert not harness.touches(step="ticket_reassigned")


async def test_with_no_active_agent_left_the_supervisor_takes_the_ticket_over(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    for agent in ("tech-1", "tech-3"):
        assert deactivate_staff(harness.store, agent, now=await env.get_current_time()) == []
    await opened(harness, "T33")
    leaving = deactivate_staff(harness.store, "tech-2", now=await env.get_current_time())
    await harness.journeys.tell_staff_deactivated(leaving, "tech-2")
    status = await ticket_when(harness, "T33", lambda s: s.assignee_id != "tech-2")
    assert status.assignee_id == "sup-technical" and status.previous_assignees == ["tech-2"]
    assert harness.rows(schema.Ticket, id="T33")[0].assignee_id == "sup-technical"
    [event] = events(harness, "T33", "reassigned")
    assert event.staff_id == "sup-technical" and event.detail["fallback"] == "supervisor"
    [notice] = await eventually(lambda: harness.touches(step="ticket_reassigned",
                                                        status="sent"))
    assert notice.recipient_id == "sup-technical"
    [message] = [m for m in harness.outbox_messages() if m["key"] == notice.key]
    assert "technical 组没有在岗坐席" in message["body"]
    await env.sleep(10 * MINUTE)
    [warning] = await eventually(lambda: harness.touches(step="first_response_warning",
                                                         status="sent"))
    assert warning.recipient_id == "sup-technical"
    await responded(harness, "T33", "sup-technical")
    await ticket_when(harness, "T33", lambda s: s.stage is TicketStage.in_progress)


async def test_with_nobody_active_in_the_group_the_manager_is_told(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    assert deactivate_staff(harness.store, "sup-orders", now=await env.get_current_time()) == []
    await opened(harness, "T34", type="order_query")
    assert (await harness.journeys.ticket_status("T34")).assignee_id == "ord-1"
    leaving = deactivate_staff(harness.store, "ord-1", now=await env.get_current_time())
    assert leaving == ["ticket-T34"]
    await harness.journeys.tell_staff_deactivated(leaving, "ord-1")
    status = await ticket_when(harness, "T34", lambda s: s.previous_assignees == ["ord-1"])
    assert status.assignee_id is None and not status.rejections
    assert harness.rows(schema.Ticket, id="T34")[0].assignee_id is None
    [event] = events(harness, "T34", "reassigned")
    assert event.staff_id is None and event.detail["fallback"] == "unassigned"
    # up the line of the one who left: their supervisor has left too, so her manager
    [notice] = await eventually(lambda: harness.touches(step="ticket_reassigned",
                                                        status="sent"))
    assert notice.recipient_id == "mgr-support"
    [message] = [m for m in harness.outbox_messages() if m["key"] == notice.key]
    assert "暂无人处理" in message["body"]
    assert not harness.touches(recipient_id="ord-1", step="ticket_reassigned")
