"""Lead activities: intake, assignment, escalation, contacts, stage changes.

Each is one unit of work, idempotent under retry: writes are keyed by the
journey's workflow id and an occurrence counter kept in workflow state.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.journal import record_event
from activities.logs import activity_logger
from activities.messaging import entity_loader
from activities.store import Store, refuse_invalid
from domain import limits, schema
from domain.assignment import RepLoad, choose_rep
from domain.contact import InvalidContact, company_key, normalise_email, normalise_phone
from domain.journeys import Decision
from domain.leads import (
    JOURNEY,
    OPEN_STAGES,
    AssignRequest,
    AssignResult,
    ClaimRequest,
    ContactRequest,
    ConvertRequest,
    EscalateRequest,
    EscalateResult,
    FollowUpMissed,
    IntakeRequest,
    IntakeResult,
    LeadStage,
    StageChange,
)
from domain.money import to_minor
from domain.policy import LeadPolicy
from domain.scoring import lead_score
from domain.sla import CalendarClock

log = activity_logger("crm.leads")

TERMINAL_STAGES = {LeadStage.converted, LeadStage.discarded, LeadStage.stale, LeadStage.merged}


class LeadActivities:
    def __init__(self, *, store: Store, policy: LeadPolicy, clock: CalendarClock | None = None):
        self.store = store
        self.policy = policy
        self.clock = clock or CalendarClock()

    @activity.defn
    def load_lead_policy(self) -> LeadPolicy:
        return self.policy

    @activity.defn
    def intake_lead(self, request: IntakeRequest) -> IntakeResult:
        lead_in = request.lead
        problems = [
            f"{name} is required"
            for name in ("lead_id", "name", "region", "product_line", "source")
            if not str(getattr(lead_in, name) or "").strip()
        ]
        phone = email = None
        try:
            phone = normalise_phone(lead_in.phone) if lead_in.phone else None
        except InvalidContact as exc:
            problems.append(str(exc))
        try:
            email = normalise_email(lead_in.email) if lead_in.email else None
        except InvalidContact as exc:
            problems.append(str(exc))
        company = company_key(lead_in.company) if lead_in.company else None
        if not (phone or email or company):
            problems.append("a lead needs a phone, an e-mail address or a company")
        if problems:
            raise ApplicationError(
                f"lead {lead_in.lead_id!r} rejected: " + "; ".join(problems),
                type="InvalidLead",
                non_retryable=True,
            )

        with self.store.unit_of_work() as session:
            # Two intakes of the same person at once must not both miss each other.
            self.store.serialise(session, *(f"lead-intake:{k}" for k in (phone, email, company)
                                             if k))
            existing = session.get(schema.Lead, lead_in.lead_id)
            if existing is not None:  # a retry of an intake that committed
                return IntakeResult(
                    lead_id=existing.id,
                    score=existing.score,
                    duplicate_of=existing.merged_into,
                    customer_id=existing.customer_id,
                )
            keys = [(schema.Lead.phone, phone), (schema.Lead.email, email),
                    (schema.Lead.company_key, company)]
            duplicate = session.scalar(
                select(schema.Lead)
                .where(
                    schema.Lead.stage.in_([s.value for s in OPEN_STAGES]),
                    or_(*[column == value for column, value in keys if value]),
                )
                .order_by(schema.Lead.received_at, schema.Lead.id)
                .limit(1)
            )
            ckeys = [(schema.Customer.phone, phone), (schema.Customer.email, email),
                     (schema.Customer.company_key, company)]
            customer = session.scalar(
                select(schema.Customer)
                .where(or_(*[column == value for column, value in ckeys if value]))
                .order_by(schema.Customer.created_at, schema.Customer.id)
                .limit(1)
            )
            score = lead_score(
                source=lead_in.source,
                has_phone=phone is not None,
                has_email=email is not None,
                has_company=company is not None,
                need=lead_in.need,
            )
            lead = schema.Lead(
                id=lead_in.lead_id,
                name=lead_in.name.strip(),
                phone=phone,
                email=email,
                company=lead_in.company,
                company_key=company,
                region=lead_in.region,
                product_line=lead_in.product_line,
                source=lead_in.source,
                need=lead_in.need,
                locale=lead_in.locale,
                timezone=lead_in.timezone,
                score=score,
                stage=(LeadStage.merged if duplicate else LeadStage.new).value,
                customer_id=customer.id if customer else None,
                merged_into=duplicate.id if duplicate else None,
                received_at=request.now,
                closed_at=request.now if duplicate else None,
            )
            session.add(lead)
            session.flush()
            record_event(session, key=f"{request.workflow_id}:received", journey=JOURNEY,
                         entity_id=lead.id, step="received", at=request.now,
                         detail={"source": lead.source, "score": score})
            if duplicate:
                record_event(session, key=f"{request.workflow_id}:merged", journey=JOURNEY,
                             entity_id=lead.id, step="merged", at=request.now,
                             detail={"into": duplicate.id})
            log.info("lead %s received (score %s%s)", lead.id, score,
                     f", duplicate of {duplicate.id}" if duplicate else "")
            return IntakeResult(
                lead_id=lead.id,
                score=score,
                duplicate_of=duplicate.id if duplicate else None,
                customer_id=lead.customer_id,
            )

    @activity.defn
    def undo_merge(self, request: StageChange) -> None:
        """The lead a duplicate was folded into closed meanwhile: it stands alone."""
        with self.store.unit_of_work() as session:
            lead = _lead(session, request.lead_id)
            lead.merged_into = None
            lead.closed_at = None
            lead.stage = LeadStage.new.value
            record_event(session, key=f"{request.workflow_id}:unmerged", journey=JOURNEY,
                         entity_id=lead.id, step="unmerged", at=request.now)

    @activity.defn
    def assign_lead(self, request: AssignRequest) -> AssignResult:
        event_key = f"{request.workflow_id}:assign:{request.n}"
        with self.store.unit_of_work() as session:
            lead = _lead(session, request.lead_id)
            done = session.scalar(
                select(schema.JourneyEvent).where(schema.JourneyEvent.key == event_key)
            )
            if done is not None:  # retry of a committed assignment
                return _recorded_assignment(session, done, lead, request.workflow_id, request.n)
            _close_tasks(session, lead.id, request.now, status="cancelled")
            owner = choose_rep(
                _rep_loads(session),
                region=lead.region,
                product_line=lead.product_line,
                exclude=request.exclude,
            )
            if owner is None:
                manager = _pool_manager(session, lead)
                lead.owner_id = None
                lead.stage = LeadStage.pooled.value
                lead.first_touch_due = None
                pooled = AssignResult(owner_id=None, pool_manager_id=manager)
                record_event(session, key=event_key, journey=JOURNEY, entity_id=lead.id,
                             step="pooled", at=request.now,
                             detail={"reason": request.reason, "pool_manager_id": manager,
                                     "result": pooled.model_dump(mode="json")})
                log.info("lead %s pooled: no eligible rep", lead.id)
                return pooled
            due = self.clock.due(request.now, request.first_touch)
            _take_ownership(session, lead, owner, request.now, due, request.workflow_id, request.n)
            lead.stage = (
                LeadStage.assigned if request.reason == "intake" else LeadStage.escalated
            ).value
            assigned = AssignResult(owner_id=owner, due_at=due)
            # The answer is kept with the step for a retry to give again: by
            # then the lead may have moved on (contacted, escalated, pooled).
            record_event(session, key=event_key, journey=JOURNEY, entity_id=lead.id,
                         step="assigned" if request.reason == "intake" else "reassigned",
                         at=request.now, detail={"owner_id": owner, "reason": request.reason,
                                                 "result": assigned.model_dump(mode="json")})
            log.info("lead %s assigned to %s, first touch due %s", lead.id, owner, due.isoformat())
            return assigned

    @activity.defn
    def claim_lead(self, request: ClaimRequest) -> Decision:
        refuse_invalid({"owner_id": limits.text_problem(request.owner_id, limits.ID)})
        with self.store.unit_of_work() as session:
            lead = _lead(session, request.lead_id)
            key = f"{request.workflow_id}:assign:{request.n}"
            done = session.scalar(
                select(schema.JourneyEvent).where(schema.JourneyEvent.key == key))
            if done is not None:  # retry of a committed claim
                recorded = _recorded_assignment(session, done, lead, request.workflow_id,
                                                request.n)
                return Decision(accepted=True, due_at=recorded.due_at)
            staff = session.get(schema.Staff, request.owner_id)
            if staff is None:
                return Decision(accepted=False, reason=f"unknown staff {request.owner_id!r}")
            if not staff.active:
                return Decision(accepted=False, reason=f"staff {staff.id} is inactive")
            if staff.role != "rep":
                return Decision(accepted=False,
                                reason=f"staff {staff.id} is a {staff.role}, not a rep")
            if lead.stage != LeadStage.pooled.value:
                return Decision(accepted=False,
                                reason=f"lead {lead.id} is {lead.stage}, not pooled")
            due = self.clock.due(request.now, request.first_touch)
            _take_ownership(session, lead, staff.id, request.now, due, request.workflow_id,
                            request.n)
            lead.stage = LeadStage.assigned.value
            record_event(session, key=key, journey=JOURNEY, entity_id=lead.id, step="claimed",
                         at=request.now, detail={
                             "owner_id": staff.id,
                             "result": AssignResult(owner_id=staff.id, due_at=due)
                             .model_dump(mode="json")})
            return Decision(accepted=True, due_at=due)

    @activity.defn
    def escalate_lead(self, request: EscalateRequest) -> EscalateResult:
        key = f"{request.workflow_id}:escalation:{request.level}"
        with self.store.unit_of_work() as session:
            lead = _lead(session, request.lead_id)
            owner = session.get(schema.Staff, request.owner_id)
            done = session.scalar(select(schema.Escalation).where(schema.Escalation.key == key))
            if done is not None:
                # A retry: the manager the first attempt escalated to, not
                # whoever manages the owner now.
                return EscalateResult(manager_id=done.to_staff_id)
            manager = (owner.manager_id if owner and owner.manager_id
                       else _pool_manager(session, lead))
            session.add(
                schema.Escalation(
                    key=key,
                    journey=JOURNEY,
                    entity_id=lead.id,
                    level=request.level,
                    reason=request.reason,
                    from_staff_id=request.owner_id,
                    to_staff_id=manager,
                    at=request.now,
                )
            )
            record_event(session, key=key, journey=JOURNEY, entity_id=lead.id, step="escalated",
                         at=request.now, detail={"owner_id": request.owner_id,
                                                 "manager_id": manager, "reason": request.reason})
            log.info("lead %s escalated to %s: %s", lead.id, manager, request.reason)
            return EscalateResult(manager_id=manager)

    @activity.defn
    def record_contact(self, request: ContactRequest) -> Decision:
        refuse_invalid({
            "owner_id": limits.text_problem(request.owner_id, limits.ID),
            "channel": limits.text_problem(request.channel, limits.CHANNEL),
            "note": limits.text_problem(request.note, limits.TEXT),
            "at": limits.moment_problem(request.at),
        })
        key = f"{request.workflow_id}:contact:{request.n}"
        with self.store.unit_of_work() as session:
            lead = _lead(session, request.lead_id)
            done = session.scalar(select(schema.Interaction).where(schema.Interaction.key == key))
            if done is not None:  # retry of a committed contact
                return _recorded_contact(session, done, request.workflow_id, request.n)
            at = request.at or request.now
            staff = session.get(schema.Staff, request.owner_id)
            if staff is None:
                return Decision(accepted=False, reason=f"unknown staff {request.owner_id!r}")
            if lead.owner_id != request.owner_id:
                return Decision(accepted=False,
                                reason=f"{request.owner_id} does not own lead {lead.id}")
            if not request.channel.strip():
                return Decision(accepted=False, reason="channel is required")
            if at < request.assigned_at or at > request.now:
                return Decision(
                    accepted=False,
                    reason=f"contact time {at.isoformat()} is not between the assignment "
                    f"({request.assigned_at.isoformat()}) and now ({request.now.isoformat()})",
                )
            session.add(
                schema.Interaction(
                    key=key,
                    lead_id=lead.id,
                    customer_id=lead.customer_id,
                    staff_id=staff.id,
                    channel=request.channel,
                    note=request.note,
                    at=at,
                    recorded_at=request.now,
                )
            )
            first = lead.first_contact_at is None
            if first:
                lead.first_contact_at = at
            _close_tasks(session, lead.id, request.now, status="done")
            due = self.clock.due(at, request.follow_up)
            lead.follow_up_due = due
            lead.stage = LeadStage.following_up.value
            session.add(
                schema.Task(
                    key=f"{request.workflow_id}:follow_up:{request.n}",
                    kind="follow_up",
                    entity_kind="lead",
                    entity_id=lead.id,
                    assignee_id=staff.id,
                    due_at=due,
                    status="open",
                    created_at=request.now,
                )
            )
            contacted = Decision(accepted=True, due_at=due, at=at)
            record_event(session, key=key, journey=JOURNEY, entity_id=lead.id,
                         step="first_contact" if first else "contacted", at=at,
                         detail={"owner_id": staff.id, "channel": request.channel,
                                 "result": contacted.model_dump(mode="json")})
            return contacted

    @activity.defn
    def miss_follow_up(self, request: FollowUpMissed) -> Decision:
        """A follow-up deadline passed with no contact: the next one is due an
        interval after the missed one (not after now, so a late worker does not
        stretch the cadence)."""
        key = f"{request.workflow_id}:follow_up_missed:{request.n}"
        with self.store.unit_of_work() as session:
            lead = _lead(session, request.lead_id)
            if session.scalar(select(schema.JourneyEvent.id).where(schema.JourneyEvent.key == key)):
                # A retry: the deadline this miss set, kept on the task it
                # opened (the lead's own may have moved on since).
                task = session.scalar(select(schema.Task).where(
                    schema.Task.key == f"{request.workflow_id}:follow_up_after_miss:{request.n}"))
                return Decision(accepted=True,
                                due_at=task.due_at if task else lead.follow_up_due)
            start = request.due_at or request.now
            due = self.clock.due(start, request.interval)
            session.execute(
                update(schema.Task)
                .where(schema.Task.entity_kind == "lead", schema.Task.entity_id == lead.id,
                       schema.Task.kind == "follow_up", schema.Task.status == "open")
                .values(status="missed", closed_at=request.now)
            )
            session.add(
                schema.Task(
                    key=f"{request.workflow_id}:follow_up_after_miss:{request.n}",
                    kind="follow_up",
                    entity_kind="lead",
                    entity_id=lead.id,
                    assignee_id=request.owner_id or lead.owner_id,
                    due_at=due,
                    status="open",
                    created_at=request.now,
                )
            )
            lead.follow_up_due = due
            record_event(session, key=key, journey=JOURNEY, entity_id=lead.id,
                         step="follow_up_missed", at=request.now,
                         detail={"missed_due": start.isoformat(), "next_due": due.isoformat()})
            return Decision(accepted=True, due_at=due)

    @activity.defn
    def change_lead_stage(self, request: StageChange) -> None:
        refuse_invalid({"reason": limits.text_problem(request.reason, limits.TEXT)})
        key = f"{request.workflow_id}:{request.step}:{request.n}"
        with self.store.unit_of_work() as session:
            lead = _lead(session, request.lead_id)
            lead.stage = request.stage.value
            if request.stage is LeadStage.pooled:
                lead.owner_id = None
                lead.first_touch_due = None
                _close_tasks(session, lead.id, request.now, status="cancelled")
            if request.stage in TERMINAL_STAGES:
                lead.closed_at = lead.closed_at or request.now
                lead.close_reason = request.reason
                _close_tasks(session, lead.id, request.now, status="cancelled")
            record_event(session, key=key, journey=JOURNEY, entity_id=lead.id, step=request.step,
                         at=request.now,
                         detail={"reason": request.reason} if request.reason else None)

    @activity.defn
    def convert_lead(self, request: ConvertRequest) -> str:
        """Creates the customer account and the opportunity (stage "needs analysis")."""
        currency_problem = limits.currency_problem(request.currency)
        refuse_invalid({
            "opportunity_name": limits.text_problem(request.opportunity_name, limits.NAME),
            "currency": currency_problem,
            "amount": None if currency_problem else limits.amount_problem(request.amount,
                                                                          request.currency),
        })
        opportunity_id = f"opp-{request.lead_id}"
        with self.store.unit_of_work() as session:
            lead = _lead(session, request.lead_id)
            if session.get(schema.Opportunity, opportunity_id) is not None:
                return opportunity_id
            amount_minor = None
            if request.amount is not None:
                amount_minor = to_minor(Decimal(request.amount), request.currency)
            if lead.customer_id is None:
                customer = schema.Customer(
                    id=f"c-{lead.id}",
                    name=lead.company or lead.name,
                    locale=lead.locale or "zh-CN",
                    timezone=lead.timezone or "Asia/Shanghai",
                    phone=lead.phone,
                    email=lead.email,
                    company=lead.company,
                    company_key=lead.company_key,
                    owner_id=lead.owner_id,
                    created_at=request.now,
                )
                session.add(customer)
                session.flush()
                lead.customer_id = customer.id
            session.add(
                schema.Opportunity(
                    id=opportunity_id,
                    lead_id=lead.id,
                    customer_id=lead.customer_id,
                    name=(request.opportunity_name
                          or f"{lead.company or lead.name} {lead.product_line}"),
                    stage="needs_analysis",
                    owner_id=request.owner_id,
                    amount_minor=amount_minor,
                    currency=request.currency.upper(),
                    created_at=request.now,
                )
            )
            lead.stage = LeadStage.converted.value
            lead.closed_at = request.now
            _close_tasks(session, lead.id, request.now, status="done")
            record_event(session, key=f"{request.workflow_id}:converted", journey=JOURNEY,
                         entity_id=lead.id, step="converted", at=request.now,
                         detail={"opportunity_id": opportunity_id})
            return opportunity_id


# -- helpers -------------------------------------------------------------------


def _lead(session: Session, lead_id: str) -> schema.Lead:
    lead = session.get(schema.Lead, lead_id)
    if lead is None:
        raise ApplicationError(f"unknown lead {lead_id!r}", type="UnknownLead", non_retryable=True)
    return lead


def _recorded_assignment(session: Session, done: schema.JourneyEvent, lead: schema.Lead,
                         workflow_id: str, n: int) -> AssignResult:
    """What the committed assignment or claim `done` answered: its kept result,
    else (recorded before results were kept) its owner and first-touch deadline
    from the task it opened, which later steps do not change as they change
    the lead."""
    detail = done.detail or {}
    if "result" in detail:
        return AssignResult.model_validate(detail["result"])
    if done.step == "pooled":
        return AssignResult(owner_id=None, pool_manager_id=detail.get("pool_manager_id"))
    task = session.scalar(select(schema.Task).where(
        schema.Task.key == f"{workflow_id}:first_touch:{n}"))
    if task is not None:
        return AssignResult(owner_id=task.assignee_id, due_at=task.due_at)
    return AssignResult(owner_id=lead.owner_id,
                        due_at=lead.first_touch_due if lead.owner_id else None)


def _recorded_contact(session: Session, done: schema.Interaction, workflow_id: str,
                      n: int) -> Decision:
    """What the committed contact `done` answered: its kept result, else (recorded
    before results were kept) this contact's time and the follow-up it set."""
    detail = session.scalar(select(schema.JourneyEvent.detail)
                            .where(schema.JourneyEvent.key == done.key)) or {}
    if "result" in detail:
        return Decision.model_validate(detail["result"])
    task = session.scalar(select(schema.Task).where(
        schema.Task.key == f"{workflow_id}:follow_up:{n}"))
    return Decision(accepted=True, due_at=task.due_at if task else None, at=done.at)


def _rep_loads(session: Session) -> list[RepLoad]:
    open_counts = dict(
        session.execute(
            select(schema.Lead.owner_id, func.count())
            .where(
                schema.Lead.owner_id.is_not(None),
                schema.Lead.stage.in_([s.value for s in OPEN_STAGES]),
            )
            .group_by(schema.Lead.owner_id)
        ).all()
    )
    return [
        RepLoad(
            staff_id=rep.id,
            regions=frozenset(rep.regions or ()),
            product_lines=frozenset(rep.product_lines or ()),
            open_leads=open_counts.get(rep.id, 0),
            capacity=rep.capacity,
            seniority=rep.seniority,
            active=rep.active,
        )
        for rep in session.scalars(select(schema.Staff).where(schema.Staff.role == "rep"))
    ]


def _pool_manager(session: Session, lead: schema.Lead) -> str | None:
    """The active manager covering the lead's region (then any active manager)."""
    managers = list(
        session.scalars(
            select(schema.Staff)
            .where(schema.Staff.role == "manager", schema.Staff.active.is_(True))
            .order_by(schema.Staff.id)
        )
    )
    for manager in managers:
        if lead.region in (manager.regions or ()):
            return manager.id
    return managers[0].id if managers else None


def _take_ownership(
    session: Session, lead: schema.Lead, owner: str, now: datetime, due: datetime,
    workflow_id: str, n: int,
) -> None:
    lead.owner_id = owner
    lead.assigned_at = now
    lead.first_touch_due = due
    session.add(
        schema.Task(
            key=f"{workflow_id}:first_touch:{n}",
            kind="first_touch",
            entity_kind="lead",
            entity_id=lead.id,
            assignee_id=owner,
            due_at=due,
            status="open",
            created_at=now,
        )
    )


def _close_tasks(session: Session, lead_id: str, now: datetime, *, status: str) -> None:
    session.execute(
        update(schema.Task)
        .where(
            schema.Task.entity_kind == "lead",
            schema.Task.entity_id == lead_id,
            schema.Task.status == "open",
        )
        .values(status=status, closed_at=now)
        .execution_options(synchronize_session=False)
    )


@entity_loader("lead")
def _lead_for_message(session: Session, lead_id: str) -> dict[str, Any] | None:
    lead = session.get(schema.Lead, lead_id)
    if lead is None:
        return None
    owner = session.get(schema.Staff, lead.owner_id) if lead.owner_id else None
    return {
        "id": lead.id,
        "name": lead.name,
        "company": lead.company,
        "region": lead.region,
        "product_line": lead.product_line,
        "source": lead.source,
        "score": lead.score,
        "stage": lead.stage,
        "owner": {"id": owner.id, "name": owner.name} if owner else None,
        "first_touch_due": lead.first_touch_due,
        "follow_up_due": lead.follow_up_due,
    }
