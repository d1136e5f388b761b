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

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.leads import (
        JOURNEY,
        Claim,
        Convert,
        Discard,
        IntakeAndAssign,
        IntakeRequest,
        IntakeResult,
        LeadInput,
        LeadStage,
        LeadStatus,
        LogContact,
        Merge,
        contact_problem,
        lead_workflow_id,
    )
    from domain.messaging import MessageClass, Recipient
    from domain.policy import LeadPolicy

from workflows.kit import (
    CRM_JOURNEY,
    CRM_STAGE,
    FOLDED_STORE_CALLS,
    answering,
    call,
    since,
    start_input,
)
from workflows.lead.clock import LeadClockSteps
from workflows.lead.plan import ENDED, LeadState, plan
from workflows.lead.signals import LeadSignals


@workflow.defn(name="LeadJourney", failure_exception_types=[pydantic.ValidationError])
class LeadJourney(LeadSignals, LeadClockSteps):
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
        self._upsert({CRM_JOURNEY: JOURNEY, CRM_STAGE: s.stage.value})
        intake_at = workflow.now()
        intake = await self._intake(lead, intake_at)
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
        if intake.assignment is not None:
            self._take_assignment(intake.assignment, "intake", intake_at)
        else:
            await self._assign(reason="intake")

        await self._serve(lambda: s.stage in ENDED)
        return await self._finish()

    claim_now = answering("claim", Claim, "_claim_problem")
    # Accepted, the answer carries the next follow-up.
    log_contact_now = answering("log_contact", LogContact, "_log_contact_problem")

    def _claim_problem(self, payload: Claim) -> str | None:
        if not payload.owner_id:
            return "owner_id is required"
        if self.intake_done and self.state.stage is not LeadStage.pooled:
            return f"lead is {self.state.stage.value}, not in the pool"
        return None

    def _log_contact_problem(self, payload: LogContact) -> str | None:
        if problem := contact_problem(payload):
            return problem
        if self.intake_done and payload.owner_id != self.state.owner_id:
            return (f"{payload.owner_id or 'nobody'} does not own this lead "
                    f"(owner: {self.state.owner_id or 'none'})")
        return None

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

    async def _intake(self, lead: LeadInput, now: datetime) -> IntakeResult:
        """The lead recorded, scored and checked for duplicates; in a journey
        started since FOLDED_STORE_CALLS, assigned in the same activity."""
        request = IntakeRequest(
            lead=lead.model_copy(update={"policy": None}),
            workflow_id=self.workflow_id,
            now=now,
        )
        try:
            if since(FOLDED_STORE_CALLS):
                return await call("intake_and_assign_lead", IntakeAndAssign(
                    intake=request, assign=self._assign_request("intake", now)), IntakeResult)
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

    async def _finish(self) -> LeadStatus:
        await self._drain()
        return self.status()

    def _ended_reason(self) -> str:
        return f"lead is {self.state.stage.value}"
