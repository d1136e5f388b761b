"""After resolution: the rating, the day-7 survey and closing.
"""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from domain import schema
from domain.tickets import Rate, TicketStage
from tests import ticket_support
from tests.harness import Harness, eventually
from tests.ticket_support import (
    DAY,
    HOUR,
    MINUTE,
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
    # Runs on from there: the hour it spent resolved does not count; the
    # seconds the reopening's escalation took to be written do.
    assert close_to(status.time_used, resolved.time_used, MINUTE)
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
