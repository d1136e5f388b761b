"""The first-response clock: its warning and its escalations up the chain.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from domain import schema
from domain.tickets import TicketPolicy, TicketStage
from tests import ticket_support
from tests.harness import Harness, eventually
from tests.ticket_support import (
    HOUR,
    MINUTE,
    SECOND,
    close_to,
    escalations,
    events,
    on_time,
    opened,
    responded,
    ticket_when,
)
from workflows.kit import CRM_OWNER_ID, CRM_SLA_DEADLINE, CRM_STAGE

# Fixtures shared with the other modules split from the same subject.
env = ticket_support.env
harness = ticket_support.harness


async def test_per_priority_first_response_override(harness: Harness) -> None:
    policy = TicketPolicy(first_response_by_priority={"urgent": 5 * MINUTE})
    await opened(harness, "T3", priority="urgent", policy=policy)
    status = await harness.journeys.ticket_status("T3")
    assert status.first_response_due == status.opened_at + 5 * MINUTE


async def test_warning_at_10_minutes_and_not_before(harness: Harness,
                                                    env: WorkflowEnvironment) -> None:
    await opened(harness, "T4")
    await env.sleep(10 * MINUTE - 2 * SECOND)
    assert not harness.touches(step="first_response_warning")
    await env.sleep(3 * SECOND)
    [warning] = await eventually(lambda: harness.touches(step="first_response_warning",
                                                         status="sent"))
    status = await harness.journeys.ticket_status("T4")
    assert warning.recipient_id == "tech-2"
    assert on_time(warning.created_at, status.first_response_due - 5 * MINUTE)
    assert status.stage is TicketStage.awaiting_response and not escalations(harness, "T4")


async def test_escalated_to_the_supervisor_at_15_minutes_and_not_at_14_59(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "T5")
    # Measured from the deadline the journey stored, not from when the test got
    # back control: under load, opening the ticket takes real (server) seconds.
    due = (await harness.journeys.ticket_status("T5")).first_response_due
    assert due is not None
    await env.sleep(due - await env.get_current_time() - SECOND)  # 14:59
    assert not escalations(harness, "T5")
    assert (await harness.journeys.ticket_status("T5")).stage is TicketStage.awaiting_response
    await env.sleep(2 * SECOND)
    [escalation] = await eventually(lambda: escalations(harness, "T5"))
    status = await ticket_when(harness, "T5",
                               lambda s: s.stage is TicketStage.escalated_supervisor)
    assert (escalation.level, escalation.from_staff_id, escalation.to_staff_id) == (
        1, "tech-2", "sup-technical")
    assert on_time(escalation.at, status.first_response_due)  # at the minute
    assert [b.sla for b in status.breaches] == ["first_response"]
    [row] = harness.rows(schema.Ticket, id="T5")
    assert row.first_response_breached and row.status == "escalated_supervisor"
    [breach] = events(harness, "T5", "breached")
    assert breach.staff_id == "tech-2" and breach.detail["sla"] == "first_response"
    await eventually(lambda: harness.touches(step="first_response_escalated",
                                             recipient_id="sup-technical", status="sent"))
    description = await handle.describe()
    attributes = description.typed_search_attributes
    assert attributes.get(CRM_STAGE) == "escalated_supervisor"
    assert attributes.get(CRM_OWNER_ID) == "tech-2"
    assert attributes.get(CRM_SLA_DEADLINE) == status.first_response_due + 15 * MINUTE


async def test_still_unanswered_the_manager_at_30_minutes_each_level_once(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await opened(harness, "T6")
    await env.sleep(30 * MINUTE - SECOND)
    assert [e.level for e in await eventually(lambda: escalations(harness, "T6"))] == [1]
    await env.sleep(2 * SECOND)
    status = await ticket_when(harness, "T6", lambda s: s.stage is TicketStage.escalated_manager)
    manager = escalations(harness, "T6")[1]
    assert (manager.level, manager.to_staff_id) == (2, "mgr-support")
    assert on_time(manager.at, status.first_response_due + 15 * MINUTE)
    await eventually(lambda: harness.touches(step="first_response_escalated",
                                             recipient_id="mgr-support", status="sent"))
    await env.sleep(3 * HOUR)
    assert [e.level for e in escalations(harness, "T6")] == [1, 2]
    # the late answer ends the escalation: the ticket is in progress
    await responded(harness, "T6", "sup-technical")
    status = await ticket_when(harness, "T6", lambda s: s.stage is TicketStage.in_progress)
    assert close_to(status.first_response_time, 3 * HOUR + 30 * MINUTE, MINUTE)


async def test_an_answer_in_time_stops_the_escalation(harness: Harness,
                                                      env: WorkflowEnvironment) -> None:
    await opened(harness, "T7")
    await env.sleep(14 * MINUTE)
    await responded(harness, "T7", "tech-2")
    status = await ticket_when(harness, "T7", lambda s: s.stage is TicketStage.in_progress)
    assert close_to(status.first_response_time, 14 * MINUTE)
    await env.sleep(HOUR)
    assert not escalations(harness, "T7")
    assert not harness.touches(step="first_response_escalated")
    [first] = events(harness, "T7", "first_response")
    assert first.staff_id == "tech-2" and first.detail["in_time"] is True
    [row] = harness.rows(schema.Ticket, id="T7")
    assert row.first_responder_id == "tech-2" and not row.first_response_breached
    assert row.first_response_seconds == status.first_response_time.total_seconds()


async def test_the_supervisor_takes_the_ticket_over_when_the_policy_says_so(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await opened(harness, "T8", policy=TicketPolicy(reassign_to_supervisor=True))
    await env.sleep(15 * MINUTE + SECOND)
    status = await ticket_when(harness, "T8", lambda s: s.assignee_id == "sup-technical")
    assert status.stage is TicketStage.escalated_supervisor
    [reassigned] = events(harness, "T8", "reassigned")
    assert reassigned.staff_id == "sup-technical" and reassigned.detail == {"from": "tech-2"}
    assert harness.rows(schema.Ticket, id="T8")[0].assignee_id == "sup-technical"


async def test_a_ticket_opened_earlier_is_on_the_clock_since_then(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    now = await env.get_current_time()
    await opened(harness, "T22", opened_at=now - 40 * MINUTE)
    # both levels were due at the start; no warning comes so late
    [first, second] = await eventually(lambda: len(e := escalations(harness, "T22")) == 2 and e)
    assert (first.level, second.level) == (1, 2)
    status = await ticket_when(harness, "T22", lambda s: s.stage is TicketStage.escalated_manager)
    assert status.opened_at == now - 40 * MINUTE
    assert on_time(first.at, now)
    # The manager's level follows as soon as the supervisor's is written (an
    # activity each), not on a clock of its own.
    assert timedelta(0) <= second.at - first.at < MINUTE
    await env.sleep(MINUTE)
    assert not harness.touches(step="first_response_warning")
