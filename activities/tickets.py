"""Ticket activities: opening and routing, responses, the SLA clock's moves,
escalations, resolution, ratings and closing (their reads and writes of the
store are in `activities.ticket_records`).

Each is one unit of work, idempotent under retry: writes are keyed by the
journey's workflow id and an occurrence counter kept in workflow state. Every
step is written twice, for two readers: `ticket_events` (who, which group,
the SLA figures: reported per group and agent) and `journey_events` (funnels).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.logs import activity_logger
from activities.store import Store, refuse_invalid
from activities.store.staff import active_manager_above
from activities.ticket_records import (
    agent_loads,
    clock_figures,
    get_ticket,
    group_supervisor,
    iso,
    manager_of,
    record_close,
    record_first_response,
    record_rating,
    record_step,
    recorded_escalation,
    responder_problem,
    serialise_routing,
    step_done,
    store_clock,
)
from domain import limits, schema
from domain.journeys import Decision
from domain.sla import CalendarClock, SlaClock
from domain.ticket_routing import choose_agent, complaint_words_in, raised_priority
from domain.tickets import (
    JOURNEY,
    SUPERVISOR,
    ClockChange,
    EscalationKind,
    OpenTicketRequest,
    RatingRecord,
    ResolveRequest,
    ResponseRequest,
    SlaDeadlines,
    TicketClosed,
    TicketEscalated,
    TicketEscalation,
    TicketOpened,
    TicketPolicy,
    TicketReassigned,
    TicketReassignment,
    TicketStage,
    TicketTransfer,
)

log = activity_logger("crm.tickets")

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
            serialise_routing(session, policy.group_for(t.type))
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
            routing = choose_agent(agent_loads(session, group),
                                   min_seniority=policy.senior_seniority if words else None)
            supervisor = group_supervisor(session, group)
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
            record_step(session, ticket, key, "opened", request.opened_at, detail={
                "type": t.type.value, "priority": priority.value, "channel": t.channel,
                "first_response_due": first_due.isoformat(),
                "resolution_due": iso(deadlines.resolution_due),
                "result": opened.model_dump(mode="json")})
            if words:
                record_step(session, ticket, f"{request.workflow_id}:complaint", "complaint",
                            request.opened_at,
                            detail={"words": words, "from": t.priority.value, "to": priority.value,
                                    "raised": opened.priority_raised})
            record_step(session, ticket, f"{request.workflow_id}:assigned:0", "assigned",
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
            ticket = get_ticket(session, request.ticket_id)
            if step_done(session, key):
                return Decision(accepted=True, at=request.at)
            problem = responder_problem(session, ticket, request.agent_id)
            if problem:
                return Decision(accepted=False, reason=problem)
            if ticket.assignee_id is None:
                ticket.assignee_id = request.agent_id
            if request.first:
                record_first_response(session, ticket, request.agent_id, request.at,
                                      request.workflow_id)
            ticket.updated_at = request.at
            record_step(session, ticket, key, "responded", request.at, staff_id=request.agent_id,
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
            ticket = get_ticket(session, request.ticket_id)
            if step_done(session, key):
                return deadlines
            store_clock(ticket, request.clock, request.at)
            ticket.resolution_due_at = deadlines.resolution_due
            ticket.status = request.stage.value
            if request.kind == "reopened":
                ticket.reopen_count += 1
                ticket.resolved_at = None
            ticket.updated_at = request.at
            record_step(session, ticket, key, request.kind, request.at, detail={
                "reason": request.reason, **clock_figures(request.clock, request.at),
                "resolution_due": iso(deadlines.resolution_due)})
            return deadlines

    @activity.defn
    def resolve_ticket(self, request: ResolveRequest) -> Decision:
        refuse_invalid({"agent_id": limits.text_problem(request.agent_id, limits.ID),
                        "resolution": limits.text_problem(request.resolution, limits.TEXT)})
        key = f"{request.workflow_id}:resolved:{request.n}"
        with self.store.unit_of_work() as session:
            ticket = get_ticket(session, request.ticket_id)
            if step_done(session, key):
                return Decision(accepted=True, at=request.at)
            problem = responder_problem(session, ticket, request.agent_id)
            if problem:
                return Decision(accepted=False, reason=problem)
            if request.first_response:
                # The resolution notice is the customer's first answer.
                record_first_response(session, ticket, request.agent_id, request.at,
                                      request.workflow_id)
            store_clock(ticket, request.clock, request.at)
            ticket.resolution_due_at = None
            ticket.resolved_at = request.at
            ticket.resolved_by = request.agent_id
            ticket.resolution = request.resolution
            ticket.status = TicketStage.resolved.value
            ticket.updated_at = request.at
            breached = request.clock.used >= request.clock.target
            record_step(session, ticket, key, "resolved", request.at, staff_id=request.agent_id,
                        detail={**clock_figures(request.clock, request.at),
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
            ticket = get_ticket(session, request.ticket_id)
            done = session.scalar(select(schema.Escalation).where(schema.Escalation.key == key))
            if done is not None:  # a retry of an escalation that committed
                return recorded_escalation(session, done)
            supervisor = group_supervisor(session, ticket.group)
            target = supervisor if request.level == SUPERVISOR else manager_of(session, supervisor)
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
                record_step(session, ticket, f"{key}:reassigned", "reassigned", request.at,
                            staff_id=to_id, detail={"from": request.from_staff_id})
            ticket.updated_at = request.at
            if request.kind is not EscalationKind.low_rating and request.level == SUPERVISOR:
                # The breach is the assignee's: reported against them and their group.
                record_step(session, ticket, f"{key}:breach", "breached", request.at,
                            staff_id=request.from_staff_id,
                            detail={"sla": request.kind.value, "due_at": iso(request.due_at)})
            result = TicketEscalated(to_staff_id=to_id, reassigned_to=reassigned)
            # The answer is kept with the step for a retry to give again: by
            # then the supervisor may have changed, and the ticket is already
            # theirs, which would read as "not reassigned".
            record_step(session, ticket, key, "escalated", request.at, staff_id=to_id, detail={
                "kind": request.kind.value, "level": request.level,
                "due_at": iso(request.due_at), "reason": request.reason,
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
            serialise_routing(session, request.group)
            done = session.scalar(select(schema.TicketEvent).where(schema.TicketEvent.key == key))
            if done is not None:  # a retry of a reassignment that committed
                return TicketReassigned.model_validate((done.detail or {})["result"])
            ticket = get_ticket(session, request.ticket_id)
            agents = [a for a in agent_loads(session, ticket.group)
                      if a.staff_id != request.staff_id]
            routing = choose_agent(agents, min_seniority=request.min_seniority)
            supervisor = group_supervisor(session, ticket.group)
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
                ) or manager_of(session, None)
                result = TicketReassigned(assignee_id=None,
                                          notify_id=manager.id if manager else None,
                                          fallback="unassigned")
            ticket.assignee_id = result.assignee_id
            ticket.updated_at = request.at
            record_step(session, ticket, key, "reassigned", request.at, staff_id=result.assignee_id,
                        detail={"from": request.staff_id, "reason": "staff_deactivated",
                                "fallback": result.fallback, "senior": result.senior,
                                "note": routing.note, "result": result.model_dump(mode="json")})
            log.info("ticket %s: %s deactivated, now %s", ticket.id, request.staff_id,
                     result.assignee_id or f"unassigned (told {result.notify_id or 'nobody'})")
            return result

    @activity.defn
    def transfer_ticket(self, request: TicketTransfer) -> TicketReassigned:
        """The ticket goes to another group's least-loaded active agent (as
        routing chooses; senior agents for a complaint), else that group's
        supervisor, else nobody and a manager is told. Its deadlines stand."""
        refuse_invalid({"to_group": limits.text_problem(request.to_group, limits.GROUP),
                        "by": limits.text_problem(request.by, limits.ID),
                        "reason": limits.text_problem(request.reason, limits.TEXT)})
        key = f"{request.workflow_id}:transferred:{request.n}"
        with self.store.unit_of_work() as session:
            serialise_routing(session, request.to_group)
            done = session.scalar(select(schema.TicketEvent).where(schema.TicketEvent.key == key))
            if done is not None:  # a retry of a transfer that committed
                return TicketReassigned.model_validate((done.detail or {})["result"])
            ticket = get_ticket(session, request.ticket_id)
            routing = choose_agent(agent_loads(session, request.to_group),
                                   min_seniority=request.min_seniority)
            supervisor = group_supervisor(session, request.to_group)
            supervisor_id = supervisor.id if supervisor else None
            if routing.agent_id:
                result = TicketReassigned(assignee_id=routing.agent_id, notify_id=routing.agent_id,
                                          supervisor_id=supervisor_id, senior=routing.senior)
            elif supervisor_id:
                result = TicketReassigned(assignee_id=supervisor_id, notify_id=supervisor_id,
                                          supervisor_id=supervisor_id, fallback="supervisor")
            else:
                manager = manager_of(session, None)
                result = TicketReassigned(assignee_id=None,
                                          notify_id=manager.id if manager else None,
                                          fallback="unassigned")
            from_group = ticket.group
            ticket.group = request.to_group
            ticket.assignee_id = result.assignee_id
            ticket.updated_at = request.at
            record_step(session, ticket, key, "transferred", request.at,
                        staff_id=result.assignee_id,
                        detail={"from_group": from_group, "to_group": request.to_group,
                                "by": request.by, "reason": request.reason,
                                "fallback": result.fallback,
                                "result": result.model_dump(mode="json")})
            log.info("ticket %s transferred from %s to %s / %s by %s", ticket.id, from_group,
                     request.to_group, result.assignee_id or "nobody", request.by)
            return result

    @activity.defn
    def rate_ticket(self, request: RatingRecord) -> None:
        refuse_invalid({"score": None if 1 <= request.score <= 5 else "must be 1 to 5",
                        "comment": limits.text_problem(request.comment, limits.TEXT)})
        with self.store.unit_of_work() as session:
            record_rating(session, request)
        if request.close is not None:  # the close the rating brings, in the same activity
            self.close_ticket(request.close)

    @activity.defn
    def close_ticket(self, request: TicketClosed) -> None:
        refuse_invalid({"reason": limits.text_problem(request.reason, CLOSE_REASON)})
        with self.store.unit_of_work() as session:
            record_close(session, request)

    def _deadlines(self, clock: SlaClock, manager_after: timedelta) -> SlaDeadlines:
        return SlaDeadlines(
            resolution_due=clock.due_at(calendar=self.clock),
            manager_due=clock.due_at(clock.target + manager_after, calendar=self.clock),
        )
