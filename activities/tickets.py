"""Ticket activities: opening and routing, responses, the SLA clock's moves,
escalations, resolution, ratings and closing.

Each is one unit of work, idempotent under retry: writes are keyed by the
journey's workflow id and an occurrence counter kept in workflow state. Every
step is written twice, for two readers: `ticket_events` (who, which group,
the SLA figures: reported per group and agent) and `journey_events` (funnels).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.journal import record_event
from activities.logs import activity_logger
from activities.messaging import entity_loader
from activities.store import Store, refuse_invalid
from activities.store.staff import active_manager_above
from domain import limits, schema
from domain.journeys import Decision
from domain.sla import CalendarClock
from domain.tickets import (
    JOURNEY,
    OPEN_STATUSES,
    SUPERVISOR,
    AgentLoad,
    ClockChange,
    EscalationKind,
    OpenTicketRequest,
    RatingRecord,
    ResolveRequest,
    ResponseRequest,
    SlaClock,
    SlaDeadlines,
    TicketClosed,
    TicketEscalated,
    TicketEscalation,
    TicketOpened,
    TicketPolicy,
    TicketReassigned,
    TicketReassignment,
    TicketStage,
    choose_agent,
    complaint_words_in,
    raised_priority,
)

log = activity_logger("crm.tickets")

# Who may answer or resolve a ticket of their group.
RESPONDER_ROLES = ("agent", "supervisor")
# tickets.close_reason: why the journey closed the ticket, a word of its own.
CLOSE_REASON = 32


class TicketActivities:
    def __init__(self, *, store: Store, policy: TicketPolicy,
                 clock: CalendarClock | None = None) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock or CalendarClock()

    @activity.defn
    def load_ticket_policy(self) -> TicketPolicy:
        return self.policy

    @activity.defn
    def open_ticket(self, request: OpenTicketRequest) -> TicketOpened:
        """Records the ticket, raises a complaint's priority, routes it to its
        group's least-loaded agent (senior agents for a complaint) and computes
        its deadlines. An unknown customer is refused, writing nothing."""
        t, policy = request.ticket, request.policy
        key = f"{request.workflow_id}:opened"
        with self.store.unit_of_work() as session:
            _serialise_routing(session, policy.group_for(t.type))
            done = session.scalar(select(schema.TicketEvent).where(schema.TicketEvent.key == key))
            if done is not None:  # a retry of an opening that committed
                return TicketOpened.model_validate((done.detail or {})["result"])
            problems = []
            if not t.subject.strip():
                problems.append("a subject is required")
            if session.get(schema.Customer, t.customer_id) is None:
                problems.append(f"unknown customer {t.customer_id!r}")
            if session.get(schema.Ticket, t.ticket_id) is not None:
                problems.append(f"ticket {t.ticket_id!r} already exists")
            if problems:
                raise ApplicationError(f"ticket {t.ticket_id!r} rejected: " + "; ".join(problems),
                                       type="InvalidTicket", non_retryable=True)

            texts = [t.subject, t.description]
            urgent = complaint_words_in(texts, policy.urgent_words)
            words = complaint_words_in(texts, [*policy.complaint_words, *urgent])
            priority = raised_priority(t.priority, urgent=bool(urgent)) if words else t.priority
            group = policy.group_for(t.type)
            routing = choose_agent(_agent_loads(session, group),
                                   min_seniority=policy.senior_seniority if words else None)
            supervisor = _group_supervisor(session, group)
            first_due = self.clock.due(request.opened_at, policy.first_response_for(priority))
            clock = SlaClock(target=policy.resolution_target(priority)).start(request.opened_at)
            deadlines = self._deadlines(clock, policy.manager_after)
            opened = TicketOpened(
                priority=priority,
                requested_priority=t.priority,
                priority_raised=priority is not t.priority,
                complaint_words=words,
                group=group,
                assignee_id=routing.agent_id,
                supervisor_id=supervisor.id if supervisor else None,
                senior_routing=routing.senior,
                first_response_due=first_due,
                warning_at=first_due - policy.warning_before,
                first_response_manager_due=first_due + policy.manager_after,
                clock=clock,
                deadlines=deadlines,
            )
            ticket = schema.Ticket(
                id=t.ticket_id, customer_id=t.customer_id, type=t.type.value,
                priority=priority.value, requested_priority=t.priority.value,
                priority_raised=opened.priority_raised, complaint_words=words,
                subject=t.subject.strip(), description=t.description, channel=t.channel,
                group=group, assignee_id=routing.agent_id,
                status=TicketStage.awaiting_response.value, created_at=request.opened_at,
                first_response_due=first_due,
                resolution_target_seconds=clock.target.total_seconds(),
                resolution_due_at=deadlines.resolution_due, updated_at=request.now,
            )
            session.add(ticket)
            session.flush()
            _event(session, ticket, key, "opened", request.opened_at, detail={
                "type": t.type.value, "priority": priority.value, "channel": t.channel,
                "first_response_due": first_due.isoformat(),
                "resolution_due": _iso(deadlines.resolution_due),
                "result": opened.model_dump(mode="json")})
            if words:
                _event(session, ticket, f"{request.workflow_id}:complaint", "complaint",
                       request.opened_at,
                       detail={"words": words, "from": t.priority.value, "to": priority.value,
                               "raised": opened.priority_raised})
            _event(session, ticket, f"{request.workflow_id}:assigned:0", "assigned",
                   request.opened_at, staff_id=routing.agent_id,
                   detail={"senior": routing.senior, "note": routing.note})
            log.info("ticket %s (%s, %s) to %s / %s, first response due %s", t.ticket_id,
                     t.type.value, priority.value, group, routing.agent_id or "nobody",
                     first_due.isoformat())
            return opened

    @activity.defn
    def record_response(self, request: ResponseRequest) -> Decision:
        """An agent's answer; the first one sets the first-response figures."""
        refuse_invalid({"agent_id": limits.text_problem(request.agent_id, limits.ID),
                        "note": limits.text_problem(request.note, limits.TEXT)})
        key = f"{request.workflow_id}:responded:{request.n}"
        with self.store.unit_of_work() as session:
            ticket = _ticket(session, request.ticket_id)
            if _done(session, key):
                return Decision(accepted=True, at=request.at)
            problem = _responder_problem(session, ticket, request.agent_id)
            if problem:
                return Decision(accepted=False, reason=problem)
            if ticket.assignee_id is None:
                ticket.assignee_id = request.agent_id
            if request.first:
                _first_response(session, ticket, request.agent_id, request.at, request.workflow_id)
            ticket.updated_at = request.at
            _event(session, ticket, key, "responded", request.at, staff_id=request.agent_id,
                   detail={"first": request.first, "note": request.note})
            return Decision(accepted=True, at=request.at)

    @activity.defn
    def move_sla_clock(self, request: ClockChange) -> SlaDeadlines:
        """Waiting on the customer, the customer's reply, a reopen: the clock's
        figures and the deadlines it gives (computed here, once) are stored."""
        refuse_invalid({"reason": limits.text_problem(request.reason, limits.TEXT)})
        key = f"{request.workflow_id}:{request.kind}:{request.n}"
        deadlines = self._deadlines(request.clock, request.manager_after)
        with self.store.unit_of_work() as session:
            ticket = _ticket(session, request.ticket_id)
            if _done(session, key):
                return deadlines
            _store_clock(ticket, request.clock, request.at)
            ticket.resolution_due_at = deadlines.resolution_due
            ticket.status = request.stage.value
            if request.kind == "reopened":
                ticket.reopen_count += 1
                ticket.resolved_at = None
            ticket.updated_at = request.at
            _event(session, ticket, key, request.kind, request.at, detail={
                "reason": request.reason, **_clock_figures(request.clock, request.at),
                "resolution_due": _iso(deadlines.resolution_due)})
            return deadlines

    @activity.defn
    def resolve_ticket(self, request: ResolveRequest) -> Decision:
        refuse_invalid({"agent_id": limits.text_problem(request.agent_id, limits.ID),
                        "resolution": limits.text_problem(request.resolution, limits.TEXT)})
        key = f"{request.workflow_id}:resolved:{request.n}"
        with self.store.unit_of_work() as session:
            ticket = _ticket(session, request.ticket_id)
            if _done(session, key):
                return Decision(accepted=True, at=request.at)
            problem = _responder_problem(session, ticket, request.agent_id)
            if problem:
                return Decision(accepted=False, reason=problem)
            if request.first_response:
                # The resolution notice is the customer's first answer.
                _first_response(session, ticket, request.agent_id, request.at,
                                request.workflow_id)
            _store_clock(ticket, request.clock, request.at)
            ticket.resolution_due_at = None
            ticket.resolved_at = request.at
            ticket.resolved_by = request.agent_id
            ticket.resolution = request.resolution
            ticket.status = TicketStage.resolved.value
            ticket.updated_at = request.at
            breached = request.clock.used >= request.clock.target
            _event(session, ticket, key, "resolved", request.at, staff_id=request.agent_id,
                   detail={**_clock_figures(request.clock, request.at),
                           "target_seconds": request.clock.target.total_seconds(),
                           "breached": breached})
            log.info("ticket %s resolved by %s after %s on the SLA clock", ticket.id,
                     request.agent_id, request.clock.used)
            return Decision(accepted=True, at=request.at)

    @activity.defn
    def escalate_ticket(self, request: TicketEscalation) -> TicketEscalated:
        """Level 1 goes to the group's supervisor, level 2 to the supervisor's
        manager; a level of the first-response or resolution SLA is its breach."""
        refuse_invalid({"reason": limits.text_problem(request.reason, limits.TEXT),
                        "comment": limits.text_problem(request.comment, limits.TEXT)})
        key = f"{request.workflow_id}:escalation:{request.kind.value}:{request.n}"
        with self.store.unit_of_work() as session:
            ticket = _ticket(session, request.ticket_id)
            done = session.scalar(select(schema.Escalation).where(schema.Escalation.key == key))
            if done is not None:  # a retry of an escalation that committed
                return _recorded_escalation(session, done)
            supervisor = _group_supervisor(session, ticket.group)
            target = supervisor if request.level == SUPERVISOR else _manager_of(session, supervisor)
            to_id = target.id if target else None
            session.add(schema.Escalation(
                key=key, journey=JOURNEY, entity_id=ticket.id, level=request.level,
                reason=request.reason, from_staff_id=request.from_staff_id, to_staff_id=to_id,
                at=request.at))
            ticket.escalation_level = max(ticket.escalation_level, request.level)
            ticket.status = request.stage.value
            if request.level == SUPERVISOR and request.kind is EscalationKind.first_response:
                ticket.first_response_breached = True
            if request.level == SUPERVISOR and request.kind is EscalationKind.resolution:
                ticket.resolution_breached = True
            reassigned = None
            if request.reassign and to_id and ticket.assignee_id != to_id:
                ticket.assignee_id = reassigned = to_id
                _event(session, ticket, f"{key}:reassigned", "reassigned", request.at,
                       staff_id=to_id, detail={"from": request.from_staff_id})
            ticket.updated_at = request.at
            if request.kind is not EscalationKind.low_rating and request.level == SUPERVISOR:
                # The breach is the assignee's: reported against them and their group.
                _event(session, ticket, f"{key}:breach", "breached", request.at,
                       staff_id=request.from_staff_id,
                       detail={"sla": request.kind.value, "due_at": _iso(request.due_at)})
            result = TicketEscalated(to_staff_id=to_id, reassigned_to=reassigned)
            # The answer is kept with the step for a retry to give again: by
            # then the supervisor may have changed, and the ticket is already
            # theirs, which would read as "not reassigned".
            _event(session, ticket, key, "escalated", request.at, staff_id=to_id, detail={
                "kind": request.kind.value, "level": request.level,
                "due_at": _iso(request.due_at), "reason": request.reason,
                "comment": request.comment, "from_staff_id": request.from_staff_id,
                "result": result.model_dump(mode="json")})
            log.info("ticket %s escalated (%s, level %d) to %s", ticket.id, request.kind.value,
                     request.level, to_id or "nobody")
            return result

    @activity.defn
    def reassign_ticket(self, request: TicketReassignment) -> TicketReassigned:
        """The assignee was deactivated: the ticket goes to the least-loaded active
        agent of its group (senior agents for a complaint, when one is active),
        never to the person who left; with no active agent the group's supervisor
        takes it over, and with no active supervisor either it is left unassigned
        and the first active manager up the leaver's line is told."""
        refuse_invalid({"staff_id": limits.text_problem(request.staff_id, limits.ID)})
        key = f"{request.workflow_id}:reassigned:{request.n}"
        with self.store.unit_of_work() as session:
            # Like routing: two tickets handed on at once must not both see the
            # same agent as the least loaded.
            _serialise_routing(session, request.group)
            done = session.scalar(select(schema.TicketEvent).where(schema.TicketEvent.key == key))
            if done is not None:  # a retry of a reassignment that committed
                return TicketReassigned.model_validate((done.detail or {})["result"])
            ticket = _ticket(session, request.ticket_id)
            agents = [a for a in _agent_loads(session, ticket.group)
                      if a.staff_id != request.staff_id]
            routing = choose_agent(agents, min_seniority=request.min_seniority)
            supervisor = _group_supervisor(session, ticket.group)
            if supervisor is not None and supervisor.id == request.staff_id:
                supervisor = None
            supervisor_id = supervisor.id if supervisor else None
            if routing.agent_id:
                result = TicketReassigned(assignee_id=routing.agent_id, notify_id=routing.agent_id,
                                          supervisor_id=supervisor_id, senior=routing.senior)
            elif supervisor_id:
                result = TicketReassigned(assignee_id=supervisor_id, notify_id=supervisor_id,
                                          supervisor_id=supervisor_id, fallback="supervisor")
            else:
                # The first active manager up the leaver's line, else the first one.
                manager = active_manager_above(
                    session, session.get(schema.Staff, request.staff_id), role="manager",
                ) or _manager_of(session, None)
                result = TicketReassigned(assignee_id=None,
                                          notify_id=manager.id if manager else None,
                                          fallback="unassigned")
            ticket.assignee_id = result.assignee_id
            ticket.updated_at = request.at
            _event(session, ticket, key, "reassigned", request.at, staff_id=result.assignee_id,
                   detail={"from": request.staff_id, "reason": "staff_deactivated",
                           "fallback": result.fallback, "senior": result.senior,
                           "note": routing.note, "result": result.model_dump(mode="json")})
            log.info("ticket %s: %s deactivated, now %s", ticket.id, request.staff_id,
                     result.assignee_id or f"unassigned (told {result.notify_id or 'nobody'})")
            return result

    @activity.defn
    def rate_ticket(self, request: RatingRecord) -> None:
        refuse_invalid({"score": None if 1 <= request.score <= 5 else "must be 1 to 5",
                        "comment": limits.text_problem(request.comment, limits.TEXT)})
        key = f"{request.workflow_id}:rated:{request.n}"
        with self.store.unit_of_work() as session:
            ticket = _ticket(session, request.ticket_id)
            if session.scalar(select(schema.TicketRating.id)
                              .where(schema.TicketRating.key == key)):
                return
            session.add(schema.TicketRating(
                key=key, ticket_id=ticket.id, customer_id=ticket.customer_id,
                agent_id=ticket.resolved_by, group=ticket.group, score=request.score,
                comment=request.comment, at=request.at))
            ticket.rating = request.score
            ticket.updated_at = request.at
            _event(session, ticket, key, "rated", request.at, staff_id=ticket.resolved_by,
                   detail={"score": request.score, "comment": request.comment})

    @activity.defn
    def close_ticket(self, request: TicketClosed) -> None:
        refuse_invalid({"reason": limits.text_problem(request.reason, CLOSE_REASON)})
        key = f"{request.workflow_id}:closed"
        with self.store.unit_of_work() as session:
            ticket = _ticket(session, request.ticket_id)
            if _done(session, key):
                return
            ticket.status = TicketStage.closed.value
            ticket.closed_at = request.at
            ticket.close_reason = request.reason
            ticket.updated_at = request.at
            _event(session, ticket, key, "closed", request.at, staff_id=ticket.resolved_by,
                   detail={"reason": request.reason})

    def _deadlines(self, clock: SlaClock, manager_after: timedelta) -> SlaDeadlines:
        return SlaDeadlines(
            resolution_due=clock.due_at(calendar=self.clock),
            manager_due=clock.due_at(clock.target + manager_after, calendar=self.clock),
        )


# -- helpers -------------------------------------------------------------------


def _ticket(session: Session, ticket_id: str) -> schema.Ticket:
    ticket = session.get(schema.Ticket, ticket_id)
    if ticket is None:
        raise ApplicationError(f"unknown ticket {ticket_id!r}", type="UnknownTicket",
                               non_retryable=True)
    return ticket


def _done(session: Session, key: str) -> bool:
    return session.scalar(
        select(schema.TicketEvent.id).where(schema.TicketEvent.key == key)) is not None


def _event(session: Session, ticket: schema.Ticket, key: str, kind: str, at: datetime, *,
           staff_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """The step for reports (ticket_events, with the wall-clock time it was
    written) and for funnels (journey_events)."""
    session.add(schema.TicketEvent(
        key=key, ticket_id=ticket.id, kind=kind, at=at, recorded_at=datetime.now(UTC),
        staff_id=staff_id, group=ticket.group, detail=detail))
    funnel = {k: v for k, v in (detail or {}).items() if k != "result"}
    record_event(session, key=key, journey=JOURNEY, entity_id=ticket.id, step=kind, at=at,
                 detail={**funnel, "group": ticket.group, "staff_id": staff_id})


def _recorded_escalation(session: Session, done: schema.Escalation) -> TicketEscalated:
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


def _serialise_routing(session: Session, group: str) -> None:
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


def _agent_loads(session: Session, group: str) -> list[AgentLoad]:
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


def _group_supervisor(session: Session, group: str) -> schema.Staff | None:
    return session.scalar(
        select(schema.Staff)
        .where(schema.Staff.role == "supervisor", schema.Staff.group == group,
               schema.Staff.active.is_(True))
        .order_by(schema.Staff.seniority.desc(), schema.Staff.id)
        .limit(1))


def _manager_of(session: Session, supervisor: schema.Staff | None) -> schema.Staff | None:
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


def _responder_problem(session: Session, ticket: schema.Ticket, staff_id: str) -> str | None:
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


def _first_response(session: Session, ticket: schema.Ticket, staff_id: str, at: datetime,
                    workflow_id: str) -> None:
    ticket.first_response_at = at
    ticket.first_responder_id = staff_id
    seconds = (at - ticket.created_at).total_seconds()
    ticket.first_response_seconds = seconds
    in_time = at <= ticket.first_response_due
    _event(session, ticket, f"{workflow_id}:first_response", "first_response", at,
           staff_id=staff_id, detail={"seconds": seconds, "in_time": in_time,
                                      "due_at": ticket.first_response_due.isoformat()})


def _store_clock(ticket: schema.Ticket, clock: SlaClock, at: datetime) -> None:
    ticket.sla_used_seconds = clock.used_at(at).total_seconds()
    ticket.sla_paused_seconds = clock.paused_at(at).total_seconds()


def _clock_figures(clock: SlaClock, at: datetime) -> dict[str, Any]:
    return {"used_seconds": clock.used_at(at).total_seconds(),
            "paused_seconds": clock.paused_at(at).total_seconds(),
            "pauses": clock.pauses, "clock": clock.state}


def _iso(value: datetime | None) -> str | None:
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
