"""Ticket and course signal values the store cannot keep, on SQLite and
PostgreSQL: refused before any write, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from activities.courses import CourseActivities
from activities.store import Store
from activities.tickets import TicketActivities
from domain import limits, schema
from domain.courses import (
    AdvisorHandover,
    CallbackOutcome,
    CallbackRecord,
    CourseEndMoved,
    CoursePolicy,
    EnrollmentInput,
    EnrollRequest,
)
from domain.tickets import (
    ClockChange,
    EscalationKind,
    OpenTicketRequest,
    RatingRecord,
    ResolveRequest,
    ResponseRequest,
    TicketEscalation,
    TicketInput,
    TicketOpened,
    TicketPolicy,
    TicketReassignment,
    TicketStage,
)
from tests.harness import seed_staff
from tests.refusals import FAR, HOUR, NOW, NUL, assert_invalid, refusal, run, snapshot


@pytest.fixture
def ticket(store: Store) -> tuple[TicketActivities, TicketOpened]:
    seed_staff(store)
    tickets = TicketActivities(store=store, policy=TicketPolicy())
    opened = run(tickets.open_ticket, OpenTicketRequest(
        ticket=TicketInput(ticket_id="T1", customer_id="cust-1", type="technical",
                           subject="Printer"),
        workflow_id="ticket-T1", opened_at=NOW, now=NOW, policy=TicketPolicy()))
    return tickets, opened


def test_ticket_signal_values_the_store_cannot_keep_are_refused_and_write_nothing(
        ticket: tuple[TicketActivities, TicketOpened], store: Store) -> None:
    tickets, opened = ticket
    agent = opened.assignee_id
    assert agent is not None
    at = NOW + HOUR
    before = snapshot(store)
    cases: list[tuple[Callable[..., Any], Any, str, str]] = [
        (tickets.record_response, ResponseRequest(
            ticket_id="T1", workflow_id="ticket-T1", agent_id=agent, at=at, first=True, n=1,
            note=NUL), "note", "contains a NUL"),
        (tickets.record_response, ResponseRequest(
            ticket_id="T1", workflow_id="ticket-T1", agent_id="a" * 65, at=at, first=True,
            n=1), "agent_id", "is 65 characters long"),
        (tickets.resolve_ticket, ResolveRequest(
            ticket_id="T1", workflow_id="ticket-T1", agent_id=agent, resolution=NUL, at=at,
            clock=opened.clock, first_response=True, n=1), "resolution", "contains a NUL"),
        (tickets.rate_ticket, RatingRecord(
            ticket_id="T1", workflow_id="ticket-T1", score=10**12, at=at, n=1),
            "score", "must be 1 to 5"),
        (tickets.rate_ticket, RatingRecord(
            ticket_id="T1", workflow_id="ticket-T1", score=2, comment=NUL, at=at, n=1),
            "comment", "contains a NUL"),
        (tickets.move_sla_clock, ClockChange(
            ticket_id="T1", workflow_id="ticket-T1", kind="reopened", at=at,
            clock=opened.clock, stage=TicketStage.in_progress, manager_after=HOUR, n=1,
            reason="y" * (limits.TEXT + 1)), "reason", "the store keeps at most"),
        (tickets.escalate_ticket, TicketEscalation(
            ticket_id="T1", workflow_id="ticket-T1", kind=EscalationKind.low_rating, level=1,
            n=1, at=at, stage=TicketStage.escalated_supervisor, reason="rated 1/5",
            comment=NUL), "comment", "contains a NUL"),
        (tickets.reassign_ticket, TicketReassignment(
            ticket_id="T1", workflow_id="ticket-T1", group="technical", staff_id=NUL, at=at,
            n=1), "staff_id", "contains a NUL"),
    ]
    for fn, request, field, problem in cases:
        assert_invalid(refusal(fn, request), field, problem)
    assert snapshot(store) == before

    assert run(tickets.record_response, ResponseRequest(
        ticket_id="T1", workflow_id="ticket-T1", agent_id=agent, at=at, first=True, n=1,
        note="已远程重启")).accepted
    run(tickets.rate_ticket, RatingRecord(ticket_id="T1", workflow_id="ticket-T1", score=5,
                                          comment="很好", at=at, n=1))
    with store.unit_of_work() as session:
        t = session.get(schema.Ticket, "T1")
        assert t is not None and t.rating == 5 and t.first_responder_id == agent


@pytest.fixture
def course(store: Store) -> CourseActivities:
    seed_staff(store)
    courses = CourseActivities(store=store, policy=CoursePolicy())
    run(courses.enroll_student, EnrollRequest(
        enrollment=EnrollmentInput(enrollment_id="E1", customer_id="cust-1",
                                   course_id="erp-101", advisor_id="adv-1", ends_at=NOW),
        workflow_id="enrollment-E1", now=NOW))
    return courses


def test_course_signal_values_the_store_cannot_keep_are_refused_and_write_nothing(
        course: CourseActivities, store: Store) -> None:
    before = snapshot(store)
    callback = CallbackRecord(enrollment_id="E1", workflow_id="enrollment-E1",
                              advisor_id="adv-1", outcome=CallbackOutcome.renewal_intent,
                              note=NUL, now=NOW + HOUR)
    assert_invalid(refusal(course.record_callback, callback), "note", "contains a NUL")
    moved = CourseEndMoved(enrollment_id="E1", workflow_id="enrollment-E1", ends_at=FAR,
                           now=NOW, n=1)
    assert_invalid(refusal(course.move_course_end, moved), "ended_at",
                   "is outside the years 1900-2999")
    handover = AdvisorHandover(enrollment_id="E1", workflow_id="enrollment-E1",
                               from_advisor_id="adv-1\x00", now=NOW, n=1)
    assert_invalid(refusal(course.reassign_advisor, handover), "staff_id", "contains a NUL")
    assert snapshot(store) == before

    run(course.record_callback, callback.model_copy(update={"note": "续报高级班"}))
    with store.unit_of_work() as session:
        enrollment = session.get(schema.Enrollment, "E1")
        assert enrollment is not None and enrollment.callback_outcome == "renewal_intent"
