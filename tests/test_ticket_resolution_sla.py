"""The resolution clock: its breach, pauses while waiting on the customer,
and reopening.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from domain import schema
from domain.tickets import CustomerReplied, Reopen, TicketStage, WaitOnCustomer
from tests import ticket_support
from tests.harness import Harness, eventually
from tests.ticket_support import (
    DAY,
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

# Fixtures shared with the other modules split from the same subject.
env = ticket_support.env
harness = ticket_support.harness


async def test_resolution_breach_to_the_supervisor_then_the_manager_15_minutes_later(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await opened(harness, "T9", priority="urgent")
    await env.sleep(MINUTE)
    await responded(harness, "T9")
    await env.sleep(HOUR - MINUTE - 2 * SECOND)
    assert not escalations(harness, "T9")
    await env.sleep(3 * SECOND)
    status = await ticket_when(harness, "T9",
                               lambda s: s.stage is TicketStage.escalated_supervisor)
    [breach] = escalations(harness, "T9")
    assert (breach.level, breach.to_staff_id) == (1, "sup-technical")
    assert on_time(breach.at, status.opened_at + HOUR)
    assert [b.sla for b in status.breaches] == ["resolution"]
    await env.sleep(15 * MINUTE - 5 * SECOND)
    assert len(escalations(harness, "T9")) == 1
    await env.sleep(6 * SECOND)
    await ticket_when(harness, "T9", lambda s: s.stage is TicketStage.escalated_manager)
    manager = escalations(harness, "T9")[1]
    assert (manager.level, manager.to_staff_id) == (2, "mgr-support")
    assert on_time(manager.at, status.opened_at + HOUR + 15 * MINUTE)
    await eventually(lambda: len(harness.touches(step="resolution_breached", status="sent")) == 2)
    assert harness.rows(schema.Ticket, id="T9")[0].resolution_breached


async def test_waiting_on_the_customer_stops_the_clock_and_moves_the_breach(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "T10", priority="high")  # 4 h
    await responded(harness, "T10")
    await env.sleep(HOUR)
    await handle.signal("wait_on_customer", WaitOnCustomer())
    status = await ticket_when(harness, "T10",
                               lambda s: s.stage is TicketStage.waiting_on_customer)
    assert status.resolution_due is None and status.waiting_since is not None
    await env.sleep(10 * HOUR)  # far past the 4 h target: a paused clock really stops
    assert not escalations(harness, "T10")
    status = await harness.journeys.ticket_status("T10")
    now = await env.get_current_time()
    assert status.sla_clock == "paused"
    assert close_to(status.used_at(now), HOUR) and close_to(status.paused_at(now), 10 * HOUR)
    await handle.signal("customer_replied", CustomerReplied())
    status = await ticket_when(harness, "T10", lambda s: s.stage is TicketStage.in_progress)
    assert status.resolution_due == status.opened_at + status.time_paused + 4 * HOUR
    await env.sleep(3 * HOUR - 10 * SECOND)
    assert not escalations(harness, "T10")
    await env.sleep(20 * SECOND)
    [breach] = await eventually(lambda: escalations(harness, "T10"))
    assert on_time(breach.at, status.resolution_due)
    [row] = harness.rows(schema.Ticket, id="T10")
    assert row.resolution_due_at == status.resolution_due


async def test_several_pauses_and_a_pause_ended_by_resolution_are_counted_exactly(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "T11")
    await responded(harness, "T11")
    waits = []
    for run, wait in ((HOUR, 2 * HOUR), (30 * MINUTE, 3 * HOUR), (15 * MINUTE, 5 * HOUR)):
        await env.sleep(run)
        await handle.signal("wait_on_customer", WaitOnCustomer())
        await ticket_when(harness, "T11", lambda s: s.stage is TicketStage.waiting_on_customer)
        await env.sleep(wait)
        waits.append(wait)
        if len(waits) < 3:
            await handle.signal("customer_replied", CustomerReplied())
            await ticket_when(harness, "T11", lambda s: s.stage is TicketStage.in_progress)
    # the third pause ends by resolution: its waiting time counts as paused
    answer = await harness.journeys.resolve("T11", "tech-2", "Reinstalled the driver")
    assert answer.accepted, answer.reason
    status = await ticket_when(harness, "T11", lambda s: s.stage is TicketStage.resolved)
    assert status.pauses == 3
    assert status.time_used + status.time_paused == status.resolved_at - status.opened_at
    assert close_to(status.time_paused, sum(waits, timedelta(0)), 15 * SECOND)
    assert close_to(status.time_used, HOUR + 45 * MINUTE, 15 * SECOND)
    # resolved: the clock stands still
    await env.sleep(DAY)
    later = await harness.journeys.ticket_status("T11")
    assert (later.time_used, later.time_paused) == (status.time_used, status.time_paused)
    [row] = harness.rows(schema.Ticket, id="T11")
    assert row.sla_used_seconds == status.time_used.total_seconds()
    assert row.sla_paused_seconds == status.time_paused.total_seconds()
    [resolved] = events(harness, "T11", "resolved")
    assert resolved.staff_id == "tech-2" and resolved.detail["breached"] is False
    assert resolved.detail["used_seconds"] == status.time_used.total_seconds()
    assert len(events(harness, "T11", "waiting_on_customer")) == 3


async def test_reopen_restarts_the_clock_with_the_time_already_used(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "T12")  # normal: 24 h
    await responded(harness, "T12")
    await env.sleep(2 * HOUR)
    assert (await harness.journeys.resolve("T12", "tech-2", "Cleared the cache")).accepted
    resolved = await ticket_when(harness, "T12", lambda s: s.stage is TicketStage.resolved)
    await env.sleep(3 * DAY)  # resolved time counts as neither used nor paused
    await handle.signal("reopen", Reopen(reason="Crashes again"))
    status = await ticket_when(harness, "T12", lambda s: s.stage is TicketStage.in_progress)
    assert status.reopens == 1 and status.resolved_at is None
    # the clock runs on from the time used at the resolution, not from zero
    assert close_to(status.time_used, resolved.time_used, SECOND)
    assert status.time_paused == timedelta(0)
    assert status.resolution_due is not None
    reopened_at = status.resolution_due - (24 * HOUR - resolved.time_used)
    assert close_to(reopened_at - resolved.resolved_at, 3 * DAY)
    await eventually(lambda: harness.touches(step="ticket_reopened", recipient_id="tech-2"))
    await env.sleep(24 * HOUR - resolved.time_used - MINUTE)
    assert not escalations(harness, "T12")
    await env.sleep(2 * MINUTE)
    [breach] = await eventually(lambda: escalations(harness, "T12"))
    assert on_time(breach.at, status.resolution_due)
    assert harness.rows(schema.Ticket, id="T12")[0].reopen_count == 1
