"""The month the report tests cover, and times in it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import partial

from sqlalchemy.orm import Session

from activities.store import Store
from domain import schema

MAY = {"start": date(2026, 5, 1), "end": date(2026, 6, 1)}


def at(day: int, hour: int = 10, month: int = 5, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def add_ticket(s: Session, ticket_id: str, group: str, agent: str | None, opened: datetime, *,
               target_hours: float, status: str, responded: datetime | None = None,
               late: bool = False, used_hours: float = 0.0,
               resolution_due: datetime | None = None, overdue: bool = False,
               resolved: datetime | None = None) -> None:
    """A ticket as the journey leaves it in the store; `late` and `overdue` are the
    breach flags its supervisor escalations set. First response is due in 15 min."""
    s.add(schema.Ticket(
        id=ticket_id, customer_id="cust-1",
        type={"complaints": "complaint", "orders": "order_query"}.get(group, group),
        priority="normal", requested_priority="normal", subject=ticket_id,
        channel="web", group=group, assignee_id=agent, status=status,
        created_at=opened, first_response_due=opened + timedelta(minutes=15),
        first_response_at=responded, first_responder_id=agent if responded else None,
        first_response_seconds=(responded - opened).total_seconds() if responded else None,
        first_response_breached=late, resolution_target_seconds=target_hours * 3600,
        resolution_due_at=resolution_due, sla_used_seconds=used_hours * 3600,
        resolution_breached=overdue, resolved_at=resolved,
        resolved_by=agent if resolved else None, updated_at=opened))


def seed_tickets(store: Store) -> None:
    """Tickets of two groups. The answers in the tests below are worked out
    from these rows."""
    with store.unit_of_work() as s:
        ticket = partial(add_ticket, s)
        # technical
        ticket("T1", "technical", "tech-1", at(4, 10), target_hours=24, status="closed",
               responded=at(4, 10, minute=5), used_hours=2, resolved=at(4, 12))
        ticket("T2", "technical", "tech-1", at(4, 11), target_hours=24, status="closed",
               responded=at(4, 11, minute=25), late=True, used_hours=30, overdue=True,
               resolved=at(5, 17))
        # Answered in time, still open past its resolution deadline, its escalation
        # not recorded (a worker that was down): a breach by the deadline alone.
        ticket("T3", "technical", "tech-2", at(10, 9), target_hours=24, status="in_progress",
               responded=at(10, 9, minute=10), resolution_due=at(11, 9))
        # Opened ten minutes before the period ends: nothing due yet.
        ticket("T4", "technical", "tech-2", at(31, 23, minute=50), target_hours=24,
               status="awaiting_response", resolution_due=at(1, 23, month=6, minute=50))
        # Opened the day before the period (rated 1 and reopened that night,
        # resolved again and rated 4 in May: the May rating counts, the ticket
        # does not) and the moment after it.
        ticket("T5", "technical", "tech-1", at(30, 23, month=4), target_hours=24,
               status="closed", responded=at(30, 23, month=4, minute=20), late=True,
               used_hours=1, resolved=at(1, 9))
        ticket("T6", "technical", "tech-2", at(1, 0, month=6), target_hours=24,
               status="awaiting_response", resolution_due=at(2, 0, month=6))
        # complaints
        ticket("C1", "complaints", None, at(20, 8), target_hours=4, status="escalated_manager",
               late=True, overdue=True, resolution_due=at(20, 12))
        # Answered at the very minute it was due: in time.
        ticket("C2", "complaints", "cmp-2", at(20, 9), target_hours=4,
               status="waiting_on_customer", responded=at(20, 9, minute=15), used_hours=1)
        ticket("C3", "complaints", "cmp-2", at(21, 10), target_hours=4, status="closed",
               responded=at(21, 10, minute=14), used_hours=3, resolved=at(21, 13))
        s.flush()

        breaches = [("T5", "technical", "tech-1", "first_response", at(30, 23, month=4,
                                                                        minute=15)),
                    ("T2", "technical", "tech-1", "first_response", at(4, 11, minute=15)),
                    ("T2", "technical", "tech-1", "resolution", at(5, 11)),
                    ("C1", "complaints", None, "first_response", at(20, 8, minute=15)),
                    ("C1", "complaints", None, "resolution", at(20, 12))]
        for n, (ticket_id, group, staff, sla, when) in enumerate(breaches):
            s.add(schema.TicketEvent(key=f"b{n}", ticket_id=ticket_id, kind="breached", at=when,
                                     recorded_at=when, staff_id=staff, group=group,
                                     detail={"sla": sla}))
        ratings = [("T1", "technical", "tech-1", 5, at(5, 10)),
                   ("T2", "technical", "tech-1", 3, at(6, 10)),
                   ("T5", "technical", "tech-1", 1, at(30, 23, month=4, minute=45)),
                   ("T5", "technical", "tech-1", 4, at(2, 10)),  # after the reopen
                   ("C3", "complaints", "cmp-2", 3, at(22, 10))]
        for n, (ticket_id, group, agent, score, when) in enumerate(ratings):
            s.add(schema.TicketRating(key=f"r{n}", ticket_id=ticket_id, customer_id="cust-1",
                                      agent_id=agent, group=group, score=score, at=when))

        # The journey's steps for the funnel; a rating of 3 or more closes the ticket.
        steps = [("T1", "opened", at(4, 10)), ("T1", "first_response", at(4, 10, minute=5)),
                 ("T1", "resolved", at(4, 12)), ("T1", "closed", at(5, 10)),
                 ("T2", "opened", at(4, 11)), ("T2", "first_response", at(4, 11, minute=25)),
                 ("T2", "resolved", at(5, 17)), ("T2", "closed", at(6, 10)),
                 ("T3", "opened", at(10, 9)), ("T3", "first_response", at(10, 9, minute=10)),
                 ("T4", "opened", at(31, 23, minute=50)),
                 ("T5", "opened", at(30, 23, month=4)),
                 ("T5", "reopened", at(30, 23, month=4, minute=45)),
                 ("T5", "resolved", at(1, 9)), ("T5", "closed", at(2, 10)),
                 ("C1", "opened", at(20, 8)),
                 ("C2", "opened", at(20, 9)), ("C2", "first_response", at(20, 9, minute=15)),
                 ("C3", "opened", at(21, 10)), ("C3", "first_response", at(21, 10, minute=14)),
                 ("C3", "resolved", at(21, 13)), ("C3", "closed", at(22, 10)),
                 *[(t, step, when) for t, _, _, _, when in breaches
                   for step in ("breached", "escalated")],
                 *[(t, "rated", when) for t, _, _, _, when in ratings]]
        for n, (ticket_id, step, when) in enumerate(steps):
            s.add(schema.JourneyEvent(key=f"j{n}", journey="ticket", entity_id=ticket_id,
                                      step=step, at=when))
