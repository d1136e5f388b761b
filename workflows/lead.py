"""LeadJourney: a new lead's first touch within 24 hours, then the 3-day re-follow.

Intake de-duplicates and scores the lead and welcomes the customer; the lead
is assigned to the least-loaded eligible rep (or pooled for claiming). The
owner must log a first contact within the policy's first-touch window: a
reminder goes out before the deadline; on breach the manager is alerted and
the lead is reassigned, back to the pool after the last reassignment. After
each contact a follow-up falls due; missed follow-ups remind the owner until
the lead goes stale. Converting or discarding ends the journey.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.journeys import Decision
    from domain.leads import (
        JOURNEY,
        AssignRequest,
        AssignResult,
        Claim,
        ClaimRequest,
        ContactRequest,
        Convert,
        ConvertRequest,
        Discard,
        EscalateRequest,
        EscalateResult,
        FollowUpMissed,
        IntakeRequest,
        IntakeResult,
        LeadInput,
        LeadStage,
        LeadStatus,
        LogContact,
        Merge,
        StageChange,
        contact_problem,
        lead_workflow_id,
    )
    from domain.messaging import MessageClass, Recipient
    from domain.policy import LeadPolicy

from workflows.kit import (
    CRM_JOURNEY,
    CRM_OWNER_ID,
    CRM_SLA_DEADLINE,
    CRM_STAGE,
    Agenda,
    Cadence,
    Deadline,
    Due,
    Inbound,
    Journey,
    Plan,
    call,
    moves,
    refusal,
    start_input,
    upsert_search_attributes,
)

CONTACT_CHECKED = "contact-checked"
OWNED = (LeadStage.assigned, LeadStage.escalated, LeadStage.following_up)
ENDED = (LeadStage.converted, LeadStage.discarded, LeadStage.stale, LeadStage.merged)
OPEN = (LeadStage.new, LeadStage.pooled, *OWNED)


def first_touch(policy: LeadPolicy) -> Deadline:
    return Deadline("first_touch_missed", "first touch", within=policy.first_touch,
                    reminder_before=policy.reminder_before, reminder_step="first_touch_reminder",
                    on_miss="escalate to the owner's manager and reassign, "
                            f"{policy.max_reassignments} times; then the pool")


def follow_up(policy: LeadPolicy) -> Cadence:
    return Cadence("follow_up_missed", "follow-up", every=policy.follow_up_interval,
                   until_misses=policy.max_missed_follow_ups, then="stale")


def plan(policy: LeadPolicy | None = None) -> Plan:
    """A 24-hour first touch with a reminder 4 hours before, escalation and
    reassignment twice, then the pool; a 3-day re-follow until 5 misses."""
    policy = policy or LeadPolicy()
    stage = LeadStage
    return Plan(
        journey=JOURNEY,
        parts=(first_touch(policy), follow_up(policy)),
        start=stage.new,
        transitions=moves(
            (stage.new, "intake", stage.assigned),
            (stage.new, "intake", stage.pooled),
            (stage.new, "intake", stage.merged),
            ((stage.assigned, stage.escalated), "first_touch_missed", stage.escalated),
            ((stage.assigned, stage.escalated), "first_touch_missed", stage.pooled),
            (OWNED, "staff_deactivated", stage.escalated),
            (OWNED, "staff_deactivated", stage.pooled),
            (stage.pooled, "claim", stage.assigned),
            (OWNED, "log_contact", stage.following_up),
            (stage.following_up, "follow_up_missed", stage.stale),
            (OPEN, "convert", stage.converted),
            (OPEN, "discard", stage.discarded),
        ),
        ends=ENDED,
    )


@dataclass
class LeadState:
    lead_id: str
    stage: LeadStage = LeadStage.new
    score: int | None = None
    owner_id: str | None = None
    assigned_at: datetime | None = None
    deadline: datetime | None = None
    reminded: bool = False
    reassignments: int = 0
    previous_owners: list[str] = field(default_factory=list)
    missed_follow_ups: int = 0
    contacts: int = 0
    merged_leads: list[str] = field(default_factory=list)
    opportunity_id: str | None = None
    counters: dict[str, int] = field(default_factory=dict)


@workflow.defn(name="LeadJourney", failure_exception_types=[pydantic.ValidationError])
class LeadJourney(Journey):
    journey = JOURNEY
    entity_kind = "lead"
    signals = {"claim": Claim, "log_contact": LogContact, "convert": Convert,
               "discard": Discard, "merge": Merge}
    planned = staticmethod(plan)

    @workflow.init
    def __init__(self, *args: Any) -> None:
        self.lead = lead = start_input(args, LeadInput)
        self.state = LeadState(lead_id=lead.lead_id)
        self.policy: LeadPolicy = lead.policy or LeadPolicy()
        self._setup_journey(lead.lead_id, self.state.counters, plan(self.policy))
        self.intake_done = False

    @workflow.run
    async def run(self, *args: Any) -> LeadStatus:
        """Takes one `LeadInput`."""
        s, lead = self.state, self.lead
        if lead.policy is None:
            self.policy = await call("load_lead_policy", result_type=LeadPolicy)
            self.plan = plan(self.policy)
        upsert_search_attributes({CRM_JOURNEY: JOURNEY, CRM_STAGE: s.stage.value})
        intake = await self._intake(lead)
        s.score = intake.score
        if intake.duplicate_of and await self._merge_into(intake.duplicate_of):
            return await self._finish()
        self.intake_done = True
        self.messenger.send(
            step="welcome",
            message_class=MessageClass.reminder,
            recipient=Recipient(kind="lead", id=s.lead_id),
            entity_kind="lead",
            entity_id=s.lead_id,
        )
        await self._assign(reason="intake")

        await self._serve(lambda: s.stage in ENDED)
        return await self._finish()

    # -- signals, updates and the query ------------------------------------------

    @workflow.update(name="claim_now")
    async def claim_now(self, payload: Claim) -> Decision:
        """`claim` with an answer: accepted, or why not."""
        return await self._answer("claim", payload)

    @claim_now.validator
    def _validate_claim_now(self, payload: Claim) -> None:
        if not payload.owner_id:
            raise refusal("owner_id is required")
        if self.intake_done and self.state.stage is not LeadStage.pooled:
            raise refusal(f"lead is {self.state.stage.value}, not in the pool")

    @workflow.update(name="log_contact_now")
    async def log_contact_now(self, payload: LogContact) -> Decision:
        """`log_contact` with an answer: accepted (and the next follow-up), or why not."""
        return await self._answer("log_contact", payload)

    @log_contact_now.validator
    def _validate_log_contact_now(self, payload: LogContact) -> None:
        if problem := contact_problem(payload):
            raise refusal(problem)
        if self.intake_done and payload.owner_id != self.state.owner_id:
            raise refusal(
                f"{payload.owner_id or 'nobody'} does not own this lead "
                f"(owner: {self.state.owner_id or 'none'})"
            )

    @workflow.query(name="status")
    def status(self) -> LeadStatus:
        s = self.state
        return LeadStatus(
            lead_id=s.lead_id,
            stage=s.stage,
            owner_id=s.owner_id,
            score=s.score,
            waiting_for=self._waiting_for(),
            deadline=s.deadline,
            reassignments=s.reassignments,
            previous_owners=list(s.previous_owners),
            merged_leads=list(s.merged_leads),
            missed_follow_ups=s.missed_follow_ups,
            contacts=s.contacts,
            opportunity_id=s.opportunity_id,
            rejections=list(self.rejections),
            policy=self.policy,
        )

    # -- intake and assignment ---------------------------------------------------

    async def _intake(self, lead: LeadInput) -> IntakeResult:
        request = IntakeRequest(
            lead=lead.model_copy(update={"policy": None}),
            workflow_id=workflow.info().workflow_id,
            now=workflow.now(),
        )
        try:
            return await call("intake_lead", request, IntakeResult)
        except ActivityError as err:
            # Invalid contact details: the journey fails at once with the reason,
            # and nothing was written.
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(err)
            raise ApplicationError(message, type="InvalidLead", non_retryable=True) from err

    async def _merge_into(self, existing_lead_id: str) -> bool:
        """Folds this duplicate into the open journey of the lead it duplicates."""
        s = self.state
        handle = workflow.get_external_workflow_handle(lead_workflow_id(existing_lead_id))
        try:
            await handle.signal("merge", Merge(lead_id=s.lead_id))
        except Exception:  # noqa: BLE001 - the other journey ended meanwhile
            workflow.logger.info("lead %s: %s closed, kept as a new lead", s.lead_id,
                                 existing_lead_id)
            await call("undo_merge", self._stage_change(LeadStage.new, "unmerged"))
            return False
        self._set_stage(LeadStage.merged)
        s.merged_leads = [existing_lead_id]
        return True

    async def _assign(self, *, reason: str) -> None:
        s = self.state
        if s.owner_id:
            s.previous_owners.append(s.owner_id)
        assigned_at = workflow.now()
        result: AssignResult = await call(
            "assign_lead",
            AssignRequest(
                lead_id=s.lead_id,
                workflow_id=workflow.info().workflow_id,
                now=assigned_at,
                first_touch=self.policy.first_touch,
                exclude=s.previous_owners,
                reason=reason,
                n=self._count("assign"),
            ),
            AssignResult,
        )
        if result.owner_id is None:
            self._to_pool(result.pool_manager_id, reason)
            return
        s.owner_id = result.owner_id
        s.assigned_at = assigned_at  # the time the store recorded
        s.deadline = result.due_at
        s.reminded = False
        self._set_stage(LeadStage.assigned if reason == "intake" else LeadStage.escalated)
        self._notify_staff(s.owner_id, "assigned", {"reason": reason})

    def _to_pool(self, manager_id: str | None, reason: str) -> None:
        s = self.state
        s.owner_id = None
        s.deadline = None
        self._set_stage(LeadStage.pooled)
        if manager_id:
            self._notify_staff(manager_id, "pooled", {"reason": reason})

    # -- the clock ---------------------------------------------------------------

    def _agenda(self) -> Agenda:
        s = self.state
        if s.stage in (LeadStage.assigned, LeadStage.escalated):
            return Agenda.of(first_touch(self.policy).entries(s.deadline, reminded=s.reminded))
        if s.stage is LeadStage.following_up:
            return Agenda.of(follow_up(self.policy).entries(s.deadline))
        return Agenda()

    async def _step_first_touch_reminder(self, entry: Due) -> None:
        s = self.state
        s.reminded = True
        self._notify_staff(s.owner_id, "first_touch_reminder", {"due_at": s.deadline})

    async def _step_first_touch_missed(self, entry: Due) -> None:
        s = self.state
        owner = s.owner_id
        assert owner is not None
        level = self._count("escalation")
        escalation: EscalateResult = await call(
            "escalate_lead",
            EscalateRequest(
                lead_id=s.lead_id,
                workflow_id=workflow.info().workflow_id,
                owner_id=owner,
                now=workflow.now(),
                level=level,
                reason=f"no first touch by {s.deadline.isoformat() if s.deadline else '?'}",
            ),
            EscalateResult,
        )
        if escalation.manager_id:
            self._notify_staff(escalation.manager_id, "escalated", {"owner_id": owner})
        if s.reassignments >= self.policy.max_reassignments:
            s.previous_owners.append(owner)
            s.owner_id = None
            await call("change_lead_stage",
                       self._stage_change(LeadStage.pooled, "returned_to_pool"))
            self._to_pool(escalation.manager_id, "reassignments exhausted")
            return
        s.reassignments += 1
        await self._assign(reason="first_touch_missed")

    async def _step_follow_up_missed(self, entry: Due) -> None:
        s = self.state
        s.missed_follow_ups += 1
        if s.missed_follow_ups >= self.policy.max_missed_follow_ups:
            await call(
                "change_lead_stage",
                self._stage_change(LeadStage.stale, "stale",
                                   reason=f"{s.missed_follow_ups} follow-ups missed in a row"),
            )
            self._set_stage(LeadStage.stale)
            return
        missed_at = s.deadline
        result: Decision = await call(
            "miss_follow_up",
            FollowUpMissed(
                lead_id=s.lead_id,
                workflow_id=workflow.info().workflow_id,
                owner_id=s.owner_id or "",
                due_at=s.deadline,
                interval=self.policy.follow_up_interval,
                now=workflow.now(),
                n=self._count("follow_up_missed"),
            ),
            Decision,
        )
        s.deadline = result.due_at
        self._notify_staff(s.owner_id, "follow_up_reminder",
                           {"missed_at": missed_at, "due_at": s.deadline,
                            "missed": s.missed_follow_ups})
        self._publish()

    # -- acting on signals ---------------------------------------------------------

    async def _on_claim(self, item: Inbound) -> Decision:
        s, claim = self.state, item.payload
        if s.stage is not LeadStage.pooled:
            return Decision(accepted=False, reason=f"lead is {s.stage.value}, not in the pool")
        if not claim.owner_id:
            return Decision(accepted=False, reason="owner_id is required")
        claimed_at = workflow.now()
        decision: Decision = await call(
            "claim_lead",
            ClaimRequest(
                lead_id=s.lead_id,
                workflow_id=workflow.info().workflow_id,
                owner_id=claim.owner_id,
                now=claimed_at,
                first_touch=self.policy.first_touch,
                n=self._count("assign"),
            ),
            Decision,
        )
        if decision.accepted:
            s.owner_id = claim.owner_id
            s.assigned_at = claimed_at
            s.deadline = decision.due_at
            s.reminded = False
            # A claim is a person's decision: the reassignment chain starts over.
            s.reassignments = 0
            self._set_stage(LeadStage.assigned)
        return decision

    async def _on_log_contact(self, item: Inbound) -> Decision:
        s, contact = self.state, item.payload
        if s.stage not in OWNED:
            return Decision(accepted=False, reason=f"lead is {s.stage.value}: nobody owns it")
        # A contact without an owner was refused before too (as someone else's);
        # a channel outside the list was taken, and journeys that took one
        # replay so.
        problem = contact_problem(contact)
        if problem and (not contact.owner_id or workflow.patched(CONTACT_CHECKED)):
            return Decision(accepted=False, reason=problem)
        if contact.owner_id != s.owner_id:
            return Decision(
                accepted=False,
                reason=f"{contact.owner_id or 'nobody'} does not own this lead "
                       f"(owner: {s.owner_id})",
            )
        assert s.assigned_at is not None
        decision: Decision = await call(
            "record_contact",
            ContactRequest(
                lead_id=s.lead_id,
                workflow_id=workflow.info().workflow_id,
                owner_id=contact.owner_id,
                channel=contact.channel,
                note=contact.note,
                at=contact.at,
                # A contact logged while intake was still running counts from
                # the assignment, not from before it.
                now=max(item.received_at, s.assigned_at),
                assigned_at=s.assigned_at,
                follow_up=self.policy.follow_up_interval,
                n=self._count("contact"),
            ),
            Decision,
        )
        if decision.accepted:
            s.contacts += 1
            s.missed_follow_ups = 0
            s.deadline = decision.due_at
            self._set_stage(LeadStage.following_up)
        return decision

    async def _on_convert(self, item: Inbound) -> Decision:
        s, convert = self.state, item.payload
        if s.stage in ENDED:
            return Decision(accepted=False, reason=f"lead is already {s.stage.value}")
        if convert.amount is not None and convert.amount < 0:
            return Decision(accepted=False, reason=f"amount {convert.amount} is negative")
        try:
            s.opportunity_id = await call(
                "convert_lead",
                ConvertRequest(
                    lead_id=s.lead_id,
                    workflow_id=workflow.info().workflow_id,
                    owner_id=s.owner_id,
                    opportunity_name=convert.opportunity_name,
                    amount=convert.amount,
                    currency=convert.currency,
                    now=workflow.now(),
                ),
            )
        except ActivityError as err:
            cause = err.cause
            return Decision(accepted=False,
                            reason=cause.message if isinstance(cause, ApplicationError)
                            else str(err))
        s.deadline = None
        self._set_stage(LeadStage.converted)
        return Decision(accepted=True)

    async def _on_discard(self, item: Inbound) -> Decision:
        s, discard = self.state, item.payload
        if s.stage in ENDED:
            return Decision(accepted=False, reason=f"lead is already {s.stage.value}")
        if not discard.reason.strip():
            return Decision(accepted=False, reason="a reason is required to discard a lead")
        await call("change_lead_stage",
                   self._stage_change(LeadStage.discarded, "discarded", reason=discard.reason))
        s.deadline = None
        self._set_stage(LeadStage.discarded)
        return Decision(accepted=True)

    async def _on_merge(self, item: Inbound) -> Decision:
        s, merge = self.state, item.payload
        if not merge.lead_id:
            return Decision(accepted=False, reason="lead_id is required")
        if merge.lead_id not in s.merged_leads:
            s.merged_leads.append(merge.lead_id)
            if s.owner_id:
                self._notify_staff(s.owner_id, "duplicate_merged", {"duplicate_id": merge.lead_id})
        self._publish()
        return Decision(accepted=True)

    async def _on_staff_deactivated(self, item: Inbound) -> Decision | None:
        s = self.state
        # As every journey does: a signal naming nobody is rejected (recorded),
        # not ignored. Journeys that ignored one keep doing so on replay.
        if rejected := self._nobody_named(item):
            return rejected
        if s.stage not in OWNED or item.payload.staff_id != s.owner_id:
            return None  # a broadcast about someone else: nothing to do
        await self._assign(reason="owner_deactivated")
        return Decision(accepted=True)

    # -- small helpers -------------------------------------------------------------

    async def _finish(self) -> LeadStatus:
        await self._drain()
        return self.status()

    def _ended_reason(self) -> str:
        return f"lead is {self.state.stage.value}"

    def _stage_change(self, stage: LeadStage, step: str, reason: str | None = None) -> StageChange:
        return StageChange(
            lead_id=self.state.lead_id,
            workflow_id=workflow.info().workflow_id,
            stage=stage,
            now=workflow.now(),
            step=step,
            n=self._count(step),
            reason=reason,
        )

    def _set_stage(self, stage: LeadStage) -> None:
        self.state.stage = stage
        self._publish()

    def _waiting_for(self) -> str | None:
        s = self.state
        if s.stage in (LeadStage.assigned, LeadStage.escalated):
            return f"first contact by {s.owner_id}"
        if s.stage is LeadStage.following_up:
            return f"follow-up by {s.owner_id}"
        if s.stage is LeadStage.pooled:
            return "a rep to claim it"
        return None

    def _publish(self) -> None:
        """Search attributes and current details, for admins in the UI and CLI."""
        s = self.state
        upsert_search_attributes({
            CRM_STAGE: s.stage.value,
            CRM_OWNER_ID: s.owner_id,
            CRM_SLA_DEADLINE: s.deadline,
        })
        lines = [f"**Lead {s.lead_id}** — stage `{s.stage.value}`"]
        if s.owner_id:
            lines.append(f"owner: {s.owner_id}")
        waiting = self._waiting_for()
        if waiting:
            due = f" until {s.deadline.isoformat()}" if s.deadline else ""
            lines.append(f"waiting for {waiting}{due}")
        if s.reassignments:
            lines.append(f"reassigned {s.reassignments}×")
        if s.missed_follow_ups:
            lines.append(f"follow-ups missed in a row: {s.missed_follow_ups}")
        workflow.set_current_details("\n\n".join(lines))
