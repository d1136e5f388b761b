"""TicketJourney on the time-skipping server: routing and complaints, the
warning at 10 minutes, escalation to the supervisor at 15 (not at 14:59) and
to the manager at 30, resolution targets on an SLA clock that pauses while
the ticket waits on the customer (several pauses, a pause ended by
resolution, a reopen), breaches, the rating and survey, auto-close, and
rejected signals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.staff import StaffMember, add_staff, deactivate_staff
from activities.store import Store
from domain import schema
from domain.tickets import (
    CustomerReplied,
    Priority,
    Rate,
    Reopen,
    Resolve,
    Respond,
    TicketInput,
    TicketPolicy,
    TicketStage,
    TicketStatus,
    WaitOnCustomer,
)
from tests.harness import (
    Harness,
    eventually,
    make_settings,
    refused,
    running_worker,
    seed_staff,
)
from workflows.common import CRM_OWNER_ID, CRM_SLA_DEADLINE, CRM_STAGE

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest_asyncio.fixture
async def harness(env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        yield h


async def opened(h: Harness, ticket_id: str, **overrides: Any) -> WorkflowHandle:
    values: dict[str, Any] = {"ticket_id": ticket_id, "customer_id": "cust-1",
                              "type": "technical", "priority": "normal",
                              "subject": "Printer driver crashes", "channel": "email"}
    values.update(overrides)
    handle = await h.journeys.open_ticket(TicketInput.model_validate(values))
    await ticket_when(h, ticket_id, lambda s: s.stage is not TicketStage.new)
    return handle


async def ticket_when(h: Harness, ticket_id: str, predicate: Any) -> TicketStatus:
    latest = None
    for _ in range(400):
        latest = await h.journeys.ticket_status(ticket_id)
        if predicate(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{ticket_id}: condition never held; last {latest}")


async def responded(h: Harness, ticket_id: str, agent_id: str = "tech-2") -> None:
    answer = await h.journeys.respond(ticket_id, agent_id)
    assert answer.accepted, answer.reason


def escalations(h: Harness, ticket_id: str) -> list[schema.Escalation]:
    return sorted(h.rows(schema.Escalation, entity_id=ticket_id), key=lambda e: e.id)


def events(h: Harness, ticket_id: str, kind: str) -> list[schema.TicketEvent]:
    return sorted(h.rows(schema.TicketEvent, ticket_id=ticket_id, kind=kind), key=lambda e: e.id)


def on_time(at: datetime, due: datetime | None) -> bool:
    """At the deadline, not before it (a timer fires a few ms after its time)."""
    assert due is not None
    return timedelta(0) <= at - due < SECOND


def close_to(actual: timedelta, expected: timedelta, slack: timedelta = 5 * SECOND) -> bool:
    """Activities run in real time on the time-skipping server, so the clock
    moves a little beyond each skip."""
    return abs(actual - expected) <= slack


# -- routing --------------------------------------------------------------------------


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


async def test_per_priority_first_response_override(harness: Harness) -> None:
    policy = TicketPolicy(first_response_by_priority={"urgent": 5 * MINUTE})
    await opened(harness, "T3", priority="urgent", policy=policy)
    status = await harness.journeys.ticket_status("T3")
    assert status.first_response_due == status.opened_at + 5 * MINUTE


# -- first response ------------------------------------------------------------------


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


# -- resolution and the SLA clock ------------------------------------------------------


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


# -- rating, survey, closing -----------------------------------------------------------


async def test_resolution_notice_asks_for_a_rating_and_a_good_one_closes(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "T13", customer_id="cust-2")
    assert (await harness.journeys.resolve("T13", "tech-2", "Updated the firmware")).accepted
    [notice] = await eventually(lambda: harness.touches(step="resolution_notice", status="sent"))
    assert (notice.recipient_id, notice.message_class) == ("cust-2", "transactional")
    [message] = [m for m in harness.outbox_messages() if m["key"] == notice.key]
    assert "Updated the firmware" in message["body"]
    assert "tickets/T13/rate?score=1" in message["body"]
    assert "tickets/T13/rate?score=5" in message["body"]
    status = await harness.journeys.ticket_status("T13")
    assert status.first_response_at == status.resolved_at  # the resolution answered too
    answer = await harness.journeys.rate("T13", 4, "quick")
    assert answer.accepted
    result = await handle.result()
    assert result.stage is TicketStage.closed and result.close_reason == "rated"
    assert result.rating == 4
    [rating] = harness.rows(schema.TicketRating, ticket_id="T13")
    assert (rating.score, rating.agent_id, rating.group, rating.comment) == (
        4, "tech-2", "technical", "quick")
    [row] = harness.rows(schema.Ticket, id="T13")
    assert (row.status, row.rating, row.close_reason) == ("closed", 4, "rated")
    assert not harness.touches(step="satisfaction_survey")


async def test_a_rating_of_3_closes_and_tells_the_supervisor(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    """Below 4 the supervisor hears of it; only below 3 does the ticket reopen."""
    handle = await opened(harness, "T14-n")
    await responded(harness, "T14-n")
    assert (await harness.journeys.resolve("T14-n", "tech-2", "Reinstalled")).accepted
    assert (await harness.journeys.rate("T14-n", 3, "slow")).accepted
    result = await handle.result()
    assert result.stage is TicketStage.closed and result.rating == 3 and result.reopens == 0
    [notice] = await eventually(lambda: harness.touches(step="low_rating_notice",
                                                        recipient_id="sup-technical",
                                                        status="sent"))
    [message] = [m for m in harness.outbox_messages() if m["key"] == notice.key]
    assert "3/5" in message["body"] and "slow" in message["body"]
    assert not escalations(harness, "T14-n")


async def test_urgent_words_give_a_complaint_the_urgent_target(harness: Harness) -> None:
    await opened(harness, "T2-u", priority="low", subject="打印机严重故障",
                 description="紧急！第三次投诉升级")
    status = await harness.journeys.ticket_status("T2-u")
    assert status.priority is Priority.urgent and status.priority_raised
    assert status.resolution_due == status.opened_at + HOUR
    assert {"严重", "紧急", "投诉升级"} <= set(status.complaint_words)


async def test_a_rating_below_3_reopens_and_escalates_with_the_comment(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "T14")
    await responded(harness, "T14")
    await env.sleep(HOUR)
    assert (await harness.journeys.resolve("T14", "tech-2", "Restarted it")).accepted
    resolved = await ticket_when(harness, "T14", lambda s: s.stage is TicketStage.resolved)
    await env.sleep(HOUR)
    answer = await harness.journeys.rate("T14", 2, "Still crashes every morning")
    assert answer.accepted
    status = await ticket_when(harness, "T14",
                               lambda s: s.stage is TicketStage.escalated_supervisor)
    assert status.reopens == 1 and status.rating == 2
    assert close_to(status.time_used, resolved.time_used, SECOND)  # runs on from there
    [escalation] = escalations(harness, "T14")
    assert (escalation.level, escalation.to_staff_id) == (1, "sup-technical")
    [escalated] = events(harness, "T14", "escalated")
    assert escalated.detail["kind"] == "low_rating"
    assert escalated.detail["comment"] == "Still crashes every morning"
    [notice] = await eventually(lambda: harness.touches(step="low_rating_escalated",
                                                        recipient_id="sup-technical",
                                                        status="sent"))
    [message] = [m for m in harness.outbox_messages() if m["key"] == notice.key]
    assert "Still crashes every morning" in message["body"]
    assert status.breaches == []  # a low rating is not an SLA breach
    await eventually(lambda: harness.touches(step="ticket_reopened", recipient_id="tech-2"))
    # resolved again: a new rating request; a good rating closes
    assert (await harness.journeys.resolve("T14", "tech-2", "Replaced the board")).accepted
    await eventually(lambda: len(harness.touches(step="resolution_notice")) == 2)
    assert (await harness.journeys.rate("T14", 5)).accepted
    result = await handle.result()
    assert result.stage is TicketStage.closed and result.rating == 5
    assert [r.score for r in harness.rows(schema.TicketRating, ticket_id="T14")] == [2, 5]


async def test_survey_on_day_7_and_closed_3_days_later_without_a_rating(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    handle = await opened(harness, "T15")
    assert (await harness.journeys.resolve("T15", "tech-2", "Done")).accepted
    resolved = await ticket_when(harness, "T15", lambda s: s.stage is TicketStage.resolved)
    assert resolved.survey_due == resolved.resolved_at + 7 * DAY
    await env.sleep(7 * DAY - MINUTE)
    assert not harness.touches(step="satisfaction_survey")
    await env.sleep(2 * MINUTE)
    [survey] = await eventually(lambda: harness.touches(step="satisfaction_survey",
                                                        status="sent"))
    assert (survey.recipient_id, survey.message_class) == ("cust-1", "reminder")
    status = await ticket_when(harness, "T15", lambda s: s.survey_sent)
    assert status.closes_at == resolved.survey_due + 3 * DAY
    await env.sleep(3 * DAY - 2 * MINUTE)
    assert (await harness.journeys.ticket_status("T15")).stage is TicketStage.resolved
    await env.sleep(2 * MINUTE)
    status = await ticket_when(harness, "T15", lambda s: s.stage is TicketStage.closed)
    assert status.close_reason == "no_rating"
    assert on_time(status.closed_at, resolved.survey_due + 3 * DAY)
    [row] = harness.rows(schema.Ticket, id="T15")
    assert (row.status, row.close_reason) == ("closed", "no_rating")
    # a rating that comes too late is refused with the reason, and recorded
    await handle.signal("rate", Rate(score=5))
    status = await ticket_when(harness, "T15", lambda s: len(s.rejections) == 1)
    assert status.rejections[0].reason == "the ticket is closed" and status.rating is None
    await handle.result()


async def test_a_rating_after_the_survey_still_counts(harness: Harness,
                                                      env: WorkflowEnvironment) -> None:
    handle = await opened(harness, "T16")
    assert (await harness.journeys.resolve("T16", "tech-2", "Done")).accepted
    await env.sleep(8 * DAY)
    await eventually(lambda: harness.touches(step="satisfaction_survey", status="sent"))
    await handle.signal("rate", Rate(score=3))
    result = await handle.result()
    assert result.close_reason == "rated" and result.rating == 3


# -- rejections -----------------------------------------------------------------------


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
    assert on_time(first.at, now) and on_time(second.at, now)
    await env.sleep(MINUTE)
    assert not harness.touches(step="first_response_warning")


# -- a deactivated assignee --------------------------------------------------------------


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
