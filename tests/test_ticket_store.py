"""Ticket activities against the store, on SQLite and PostgreSQL: routing under
concurrency, idempotent retries, and the per-group and per-agent figures
(first-response time, resolution time, breaches, CSAT) the events allow."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError

from activities.store import Store
from activities.tickets import TicketActivities
from domain import schema
from domain.tickets import (
    EscalationKind,
    OpenTicketRequest,
    RatingRecord,
    ResolveRequest,
    ResponseRequest,
    TicketEscalation,
    TicketInput,
    TicketOpened,
    TicketPolicy,
    TicketStage,
)
from tests.harness import seed_staff

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def open_ticket(tickets: TicketActivities, ticket_id: str, **values: object) -> TicketOpened:
    ticket = TicketInput.model_validate({"ticket_id": ticket_id, "customer_id": "cust-1",
                                         "type": "technical", "subject": "Printer", **values})
    return tickets.open_ticket(OpenTicketRequest(ticket=ticket, workflow_id=f"ticket-{ticket_id}",
                                                 opened_at=NOW, now=NOW, policy=TicketPolicy()))


@pytest.fixture
def tickets(store: Store) -> TicketActivities:
    seed_staff(store)
    return TicketActivities(store=store, policy=TicketPolicy())


def test_tickets_opened_at_once_are_spread_over_the_agents(tickets: TicketActivities,
                                                           store: Store) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        owners = list(pool.map(lambda n: open_ticket(tickets, f"C{n}").assignee_id, range(6)))
    # three agents in the technical group: routing under a lock gives two each
    assert Counter(owners) == {"tech-1": 2, "tech-2": 2, "tech-3": 2}
    with store.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(schema.Ticket)) == 6


def test_a_retried_opening_returns_what_was_recorded(tickets: TicketActivities) -> None:
    first = open_ticket(tickets, "R1", subject="我要投诉")
    again = open_ticket(tickets, "R1", subject="我要投诉")
    assert again == first and first.priority_raised and first.assignee_id == "tech-2"
    assert first.first_response_due == NOW + 15 * MINUTE
    assert first.deadlines.resolution_due == NOW + timedelta(hours=4)


def test_an_unknown_customer_writes_nothing(tickets: TicketActivities, store: Store) -> None:
    with pytest.raises(ApplicationError, match="unknown customer 'nobody'"):
        open_ticket(tickets, "X1", customer_id="nobody")
    with store.unit_of_work() as session:
        assert session.get(schema.Ticket, "X1") is None


def test_retried_escalations_and_responses_are_recorded_once(tickets: TicketActivities,
                                                             store: Store) -> None:
    opened = open_ticket(tickets, "E1")
    escalation = TicketEscalation(
        ticket_id="E1", workflow_id="ticket-E1", kind=EscalationKind.first_response, level=1,
        n=1, at=NOW + 15 * MINUTE, stage=TicketStage.escalated_supervisor,
        due_at=opened.first_response_due, reason="late", from_staff_id="tech-2")
    assert tickets.escalate_ticket(escalation).to_staff_id == "sup-technical"
    assert tickets.escalate_ticket(escalation).to_staff_id == "sup-technical"
    response = ResponseRequest(ticket_id="E1", workflow_id="ticket-E1", agent_id="tech-2",
                               at=NOW + 20 * MINUTE, first=True, n=1)
    assert tickets.record_response(response).accepted
    assert tickets.record_response(response).accepted
    with store.unit_of_work() as session:
        kinds = Counter(session.scalars(select(schema.TicketEvent.kind)
                                        .where(schema.TicketEvent.ticket_id == "E1")))
        assert session.scalar(select(func.count()).select_from(schema.Escalation)) == 1
        ticket = session.get(schema.Ticket, "E1")
        assert ticket is not None
        assert (ticket.first_response_seconds, ticket.first_response_breached) == (1200.0, True)
    assert kinds == {"opened": 1, "assigned": 1, "breached": 1, "escalated": 1,
                     "first_response": 1, "responded": 1}


def test_figures_per_group_and_agent(tickets: TicketActivities, store: Store) -> None:
    """What a report reads: FRT, resolution time on the SLA clock, breaches, CSAT."""
    plan = [("tech-2", 5, 5), ("tech-3", 20, 2), ("tech-1", 10, 4)]
    opened_tickets = [open_ticket(tickets, f"F{n}") for n in range(len(plan))]
    for n, ((agent, answer_after, score), opened) in enumerate(zip(plan, opened_tickets,
                                                                   strict=True)):
        ticket_id = f"F{n}"
        assert opened.assignee_id == agent
        at = NOW + answer_after * MINUTE
        if answer_after > 15:
            tickets.escalate_ticket(TicketEscalation(
                ticket_id=ticket_id, workflow_id=f"ticket-{ticket_id}",
                kind=EscalationKind.first_response, level=1, n=1, at=NOW + 15 * MINUTE,
                stage=TicketStage.escalated_supervisor, due_at=opened.first_response_due,
                reason="late", from_staff_id=agent))
        tickets.record_response(ResponseRequest(ticket_id=ticket_id,
                                                workflow_id=f"ticket-{ticket_id}",
                                                agent_id=agent, at=at, first=True, n=1))
        clock = opened.clock.stop(at + 30 * MINUTE)
        assert tickets.resolve_ticket(ResolveRequest(
            ticket_id=ticket_id, workflow_id=f"ticket-{ticket_id}", agent_id=agent,
            resolution="done", at=at + 30 * MINUTE, clock=clock, first_response=False,
            n=1)).accepted
        tickets.rate_ticket(RatingRecord(ticket_id=ticket_id, workflow_id=f"ticket-{ticket_id}",
                                         score=score, at=at + HOUR, n=1))
    with store.unit_of_work() as session:
        frt = dict(session.execute(
            select(schema.TicketEvent.staff_id,
                   func.avg(schema.Ticket.first_response_seconds))
            .join(schema.Ticket, schema.Ticket.id == schema.TicketEvent.ticket_id)
            .where(schema.TicketEvent.kind == "first_response")
            .group_by(schema.TicketEvent.staff_id)).all())
        breaches = dict(session.execute(
            select(schema.TicketEvent.staff_id, func.count())
            .where(schema.TicketEvent.kind == "breached")
            .group_by(schema.TicketEvent.staff_id)).all())
        csat = session.execute(
            select(schema.TicketRating.group, func.avg(schema.TicketRating.score),
                   func.count()).group_by(schema.TicketRating.group)).one()
        resolved = session.scalars(
            select(schema.Ticket.sla_used_seconds).order_by(schema.Ticket.id)).all()
    assert frt == {"tech-2": 300.0, "tech-3": 1200.0, "tech-1": 600.0}
    assert breaches == {"tech-3": 1}
    assert (csat[0], float(csat[1]), csat[2]) == ("technical", 11 / 3, 3)
    assert resolved == [2100.0, 3000.0, 2400.0]

