"""Lead activities: intake, assignment, escalation, contacts, stage changes
(their reads and writes of the store are in `activities.lead_records`).

Each is one unit of work, idempotent under retry: writes are keyed by the
journey's workflow id and an occurrence counter kept in workflow state.
"""

from __future__ import annotations

from sqlalchemy import select, update
from temporalio import activity

from activities.journal import record_event
from activities.lead_conversion import convert
from activities.lead_records import (
    checked_contacts,
    close_tasks,
    get_lead,
    matching_customer,
    open_duplicate,
    open_follow_up,
    pool_manager,
    recorded_assignment,
    recorded_contact,
    rep_loads,
    take_ownership,
)
from activities.logs import activity_logger
from activities.store import Store, refuse_invalid
from domain import limits, schema
from domain.assignment import choose_rep
from domain.journeys import Decision
from domain.leads import (
    JOURNEY,
    AssignRequest,
    AssignResult,
    ClaimRequest,
    ContactRequest,
    ConvertRequest,
    EscalateRequest,
    EscalateResult,
    FollowUpMissed,
    IntakeAndAssign,
    IntakeRequest,
    IntakeResult,
    LeadStage,
    StageChange,
)
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
        phone, email, company = checked_contacts(lead_in)
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
            duplicate = open_duplicate(session, phone, email, company)
            customer = matching_customer(session, phone, email, company)
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
            lead = get_lead(session, request.lead_id)
            lead.merged_into = None
            lead.closed_at = None
            lead.stage = LeadStage.new.value
            record_event(session, key=f"{request.workflow_id}:unmerged", journey=JOURNEY,
                         entity_id=lead.id, step="unmerged", at=request.now)

    @activity.defn
    def assign_lead(self, request: AssignRequest) -> AssignResult:
        event_key = f"{request.workflow_id}:assign:{request.n}"
        with self.store.unit_of_work() as session:
            lead = get_lead(session, request.lead_id)
            done = session.scalar(
                select(schema.JourneyEvent).where(schema.JourneyEvent.key == event_key)
            )
            if done is not None:  # retry of a committed assignment
                return recorded_assignment(session, done, lead, request.workflow_id, request.n)
            close_tasks(session, lead.id, request.now, status="cancelled")
            owner = choose_rep(
                rep_loads(session),
                region=lead.region,
                product_line=lead.product_line,
                exclude=request.exclude,
            )
            if owner is None:
                manager = pool_manager(session, lead)
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
            take_ownership(session, lead, owner, request.now, due, request.workflow_id, request.n)
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
    def intake_and_assign_lead(self, request: IntakeAndAssign) -> IntakeResult:
        """`intake_lead`, then `assign_lead` unless the lead duplicates an open
        one. Each keeps its own unit of work and answers a retry as it did the
        first time, so a retry after either finds its work done."""
        intake = self.intake_lead(request.intake)
        if intake.duplicate_of:
            return intake
        return intake.model_copy(update={"assignment": self.assign_lead(request.assign)})

    @activity.defn
    def claim_lead(self, request: ClaimRequest) -> Decision:
        refuse_invalid({"owner_id": limits.text_problem(request.owner_id, limits.ID)})
        with self.store.unit_of_work() as session:
            lead = get_lead(session, request.lead_id)
            key = f"{request.workflow_id}:assign:{request.n}"
            done = session.scalar(
                select(schema.JourneyEvent).where(schema.JourneyEvent.key == key))
            if done is not None:  # retry of a committed claim
                recorded = recorded_assignment(session, done, lead, request.workflow_id,
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
            take_ownership(session, lead, staff.id, request.now, due, request.workflow_id,
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
            lead = get_lead(session, request.lead_id)
            owner = session.get(schema.Staff, request.owner_id)
            done = session.scalar(select(schema.Escalation).where(schema.Escalation.key == key))
            if done is not None:
                # A retry: the manager the first attempt escalated to, not
                # whoever manages the owner now.
                return EscalateResult(manager_id=done.to_staff_id)
            manager = (owner.manager_id if owner and owner.manager_id
                       else pool_manager(session, lead))
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
            lead = get_lead(session, request.lead_id)
            done = session.scalar(select(schema.Interaction).where(schema.Interaction.key == key))
            if done is not None:  # retry of a committed contact
                return recorded_contact(session, done, request.workflow_id, request.n)
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
            close_tasks(session, lead.id, request.now, status="done")
            due = self.clock.due(at, request.follow_up)
            lead.follow_up_due = due
            lead.stage = LeadStage.following_up.value
            open_follow_up(session, f"{request.workflow_id}:follow_up:{request.n}", lead.id,
                           staff.id, due, request.now)
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
            lead = get_lead(session, request.lead_id)
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
            open_follow_up(session, f"{request.workflow_id}:follow_up_after_miss:{request.n}",
                           lead.id, request.owner_id or lead.owner_id, due, request.now)
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
            lead = get_lead(session, request.lead_id)
            lead.stage = request.stage.value
            if request.stage is LeadStage.pooled:
                lead.owner_id = None
                lead.first_touch_due = None
                close_tasks(session, lead.id, request.now, status="cancelled")
            if request.stage in TERMINAL_STAGES:
                lead.closed_at = lead.closed_at or request.now
                lead.close_reason = request.reason
                close_tasks(session, lead.id, request.now, status="cancelled")
            record_event(session, key=key, journey=JOURNEY, entity_id=lead.id, step=request.step,
                         at=request.now,
                         detail={"reason": request.reason} if request.reason else None)

    @activity.defn
    def convert_lead(self, request: ConvertRequest) -> str:
        """Creates the customer account and the opportunity (stage "needs analysis")."""
        return convert(self.store, request)
