"""The ticket activities' reads and writes of the store: the ticket row, each
step written for reports and funnels, routing and agent loads, who may answer,
the SLA clock's figures, and what a retried escalation answered the first time.
Also the ticket as a message template sees it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from temporalio.exceptions import ApplicationError

from activities.journal import record_event
from activities.message_records import entity_loader
from activities.store.erasure import TOMBSTONE, Held, Person, changed, scrub_details
from domain import schema
from domain.sla import SlaClock
from domain.ticket_routing import AgentLoad
from domain.tickets import (
    JOURNEY,
    OPEN_STATUSES,
    RatingRecord,
    TicketClosed,
    TicketEscalated,
    TicketStage,
)

# Who may answer or resolve a ticket of their group.
RESPONDER_ROLES = ("agent", "supervisor")


def get_ticket(session: Session, ticket_id: str) -> schema.Ticket:
    ticket = session.get(schema.Ticket, ticket_id)
    if ticket is None:
        raise ApplicationError(f"unknown ticket {ticket_id!r}", type="UnknownTicket",
                               non_retryable=True)
    return ticket


def step_done(session: Session, key: str) -> bool:
    return session.scalar(
        select(schema.TicketEvent.id).where(schema.TicketEvent.key == key)) is not None


def record_step(session: Session, ticket: schema.Ticket, key: str, kind: str, at: datetime, *,
                staff_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """The step for reports (ticket_events, with the wall-clock time it was
    written) and for funnels (journey_events)."""
    session.add(schema.TicketEvent(
        key=key, ticket_id=ticket.id, kind=kind, at=at, recorded_at=datetime.now(UTC),
        staff_id=staff_id, group=ticket.group, detail=detail))
    funnel = {k: v for k, v in (detail or {}).items() if k != "result"}
    record_event(session, key=key, journey=JOURNEY, entity_id=ticket.id, step=kind, at=at,
                 detail={**funnel, "group": ticket.group, "staff_id": staff_id})


def recorded_escalation(session: Session, done: schema.Escalation) -> TicketEscalated:
    """What the committed escalation `done` answered: its kept result, else
    (recorded before results were kept) whom it escalated to and whether it
    reassigned the ticket, as its rows say."""
    detail = session.scalar(select(schema.TicketEvent.detail)
                            .where(schema.TicketEvent.key == done.key)) or {}
    if "result" in detail:
        return TicketEscalated.model_validate(detail["result"])
    reassigned = session.scalar(select(schema.TicketEvent.staff_id)
                                .where(schema.TicketEvent.key == f"{done.key}:reassigned"))
    return TicketEscalated(to_staff_id=done.to_staff_id, reassigned_to=reassigned)


def serialise_routing(session: Session, group: str) -> None:
    """Two tickets opened at once must not both see the same agent as the least
    loaded: routing runs under the store's write lock (SQLite: the savepoint
    begins an immediate transaction; the unit of work's commit releases it) or
    under a lock on the group's agents (PostgreSQL)."""
    if session.get_bind().dialect.name == "sqlite":
        session.begin_nested()
    else:
        session.execute(select(schema.Staff.id)
                        .where(schema.Staff.role == "agent", schema.Staff.group == group)
                        .with_for_update())


def agent_loads(session: Session, group: str) -> list[AgentLoad]:
    open_counts = dict(session.execute(
        select(schema.Ticket.assignee_id, func.count())
        .where(schema.Ticket.assignee_id.is_not(None),
               schema.Ticket.status.in_([s.value for s in OPEN_STATUSES]))
        .group_by(schema.Ticket.assignee_id)).all())
    return [
        AgentLoad(staff_id=agent.id, open_tickets=open_counts.get(agent.id, 0),
                  seniority=agent.seniority, capacity=agent.capacity, active=agent.active)
        for agent in session.scalars(select(schema.Staff).where(
            schema.Staff.role == "agent", schema.Staff.group == group))
    ]


def group_supervisor(session: Session, group: str) -> schema.Staff | None:
    return session.scalar(
        select(schema.Staff)
        .where(schema.Staff.role == "supervisor", schema.Staff.group == group,
               schema.Staff.active.is_(True))
        .order_by(schema.Staff.seniority.desc(), schema.Staff.id)
        .limit(1))


def manager_of(session: Session, supervisor: schema.Staff | None) -> schema.Staff | None:
    """The supervisor's manager, or the first active manager when they have none."""
    if supervisor is not None and supervisor.manager_id:
        manager = session.get(schema.Staff, supervisor.manager_id)
        if manager is not None and manager.active:
            return manager
    return session.scalar(
        select(schema.Staff)
        .where(schema.Staff.role == "manager", schema.Staff.active.is_(True))
        .order_by(schema.Staff.id)
        .limit(1))


def responder_problem(session: Session, ticket: schema.Ticket, staff_id: str) -> str | None:
    """Why `staff_id` may not answer this ticket, or None: an active agent or
    supervisor of the ticket's group, or the manager it was escalated to."""
    if not staff_id:
        return "agent_id is required"
    staff = session.get(schema.Staff, staff_id)
    if staff is None:
        return f"unknown agent {staff_id!r}"
    if not staff.active:
        return f"{staff.id} is inactive"
    if staff.role == "manager":
        escalated_to = session.scalar(select(schema.Escalation.id).where(
            schema.Escalation.journey == JOURNEY, schema.Escalation.entity_id == ticket.id,
            schema.Escalation.to_staff_id == staff.id))
        if escalated_to is not None:
            return None
        return f"{staff.id} is a manager this ticket was not escalated to"
    if staff.role not in RESPONDER_ROLES:
        return f"{staff.id} is a {staff.role}, not a support agent"
    if staff.group != ticket.group:
        return (f"{staff.id} is in group {staff.group or 'none'!r}, "
                f"not this ticket's group {ticket.group!r}")
    return None


def record_first_response(session: Session, ticket: schema.Ticket, staff_id: str, at: datetime,
                          workflow_id: str) -> None:
    ticket.first_response_at = at
    ticket.first_responder_id = staff_id
    seconds = (at - ticket.created_at).total_seconds()
    ticket.first_response_seconds = seconds
    in_time = at <= ticket.first_response_due
    record_step(session, ticket, f"{workflow_id}:first_response", "first_response", at,
                staff_id=staff_id, detail={"seconds": seconds, "in_time": in_time,
                                           "due_at": ticket.first_response_due.isoformat()})


def store_clock(ticket: schema.Ticket, clock: SlaClock, at: datetime) -> None:
    ticket.sla_used_seconds = clock.used_at(at).total_seconds()
    ticket.sla_paused_seconds = clock.paused_at(at).total_seconds()


def clock_figures(clock: SlaClock, at: datetime) -> dict[str, Any]:
    return {"used_seconds": clock.used_at(at).total_seconds(),
            "paused_seconds": clock.paused_at(at).total_seconds(),
            "pauses": clock.pauses, "clock": clock.state}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@entity_loader("ticket")
def _ticket_for_message(session: Session, ticket_id: str) -> dict[str, Any] | None:
    ticket = session.get(schema.Ticket, ticket_id)
    if ticket is None:
        return None
    customer = session.get(schema.Customer, ticket.customer_id)
    assignee = session.get(schema.Staff, ticket.assignee_id) if ticket.assignee_id else None
    resolver = session.get(schema.Staff, ticket.resolved_by) if ticket.resolved_by else None
    return {
        "id": ticket.id,
        "subject": ticket.subject,
        "type": ticket.type,
        "priority": ticket.priority,
        "priority_raised": ticket.priority_raised,
        "group": ticket.group,
        "status": ticket.status,
        "created_at": ticket.created_at,
        "first_response_due": ticket.first_response_due,
        "resolution_due_at": ticket.resolution_due_at,
        "resolution": ticket.resolution,
        "customer": {"id": customer.id, "name": customer.name} if customer else None,
        "assignee": {"id": assignee.id, "name": assignee.name} if assignee else None,
        "resolved_by": {"id": resolver.id, "name": resolver.name} if resolver else None,
    }


def open_roles(session: Session, staff_id: str) -> list[str]:
    """The tickets not yet closed that the staff member is assigned."""
    return sorted(session.scalars(select(schema.Ticket.id).where(
        schema.Ticket.assignee_id == staff_id,
        schema.Ticket.status != TicketStage.closed.value)))


def record_rating(session: Session, request: RatingRecord) -> None:
    """The customer's rating of the resolution, once however often it is told."""
    key = f"{request.workflow_id}:rated:{request.n}"
    ticket = get_ticket(session, request.ticket_id)
    if session.scalar(select(schema.TicketRating.id).where(schema.TicketRating.key == key)):
        return
    session.add(schema.TicketRating(
        key=key, ticket_id=ticket.id, customer_id=ticket.customer_id,
        agent_id=ticket.resolved_by, group=ticket.group, score=request.score,
        comment=request.comment, at=request.at))
    ticket.rating = request.score
    ticket.updated_at = request.at
    record_step(session, ticket, key, "rated", request.at, staff_id=ticket.resolved_by,
                detail={"score": request.score, "comment": request.comment})


def record_close(session: Session, request: TicketClosed) -> None:
    """The ticket closed (rated, or no rating in time), once."""
    key = f"{request.workflow_id}:closed"
    ticket = get_ticket(session, request.ticket_id)
    if step_done(session, key):
        return
    ticket.status = TicketStage.closed.value
    ticket.closed_at = request.at
    ticket.close_reason = request.reason
    ticket.updated_at = request.at
    record_step(session, ticket, key, "closed", request.at, staff_id=ticket.resolved_by,
                detail={"reason": request.reason})


def personal_data(session: Session, person: Person) -> Held:
    """The person's tickets, for erasure: subjects, descriptions, resolutions
    and rating comments go; copies in the tickets' step details too."""
    if person.customer_id is None:
        return Held()
    tickets = list(session.scalars(select(schema.Ticket.id)
                                   .where(schema.Ticket.customer_id == person.customer_id)))
    return Held(ids=tickets, rows={
        "tickets": changed(session.execute(
            update(schema.Ticket).where(schema.Ticket.id.in_(tickets))
            .values(subject=TOMBSTONE, description=None, resolution=None))),
        "ticket_ratings": changed(session.execute(
            update(schema.TicketRating)
            .where(schema.TicketRating.customer_id == person.customer_id)
            .values(comment=None))),
        "ticket_events": scrub_details(session.scalars(
            select(schema.TicketEvent).where(schema.TicketEvent.ticket_id.in_(tickets),
                                             schema.TicketEvent.detail.is_not(None))),
            person.values),
    })
