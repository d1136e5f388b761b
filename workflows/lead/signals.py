"""What the lead journey does with each signal."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.journeys import Decision
    from domain.leads import (
        ClaimRequest,
        ContactRequest,
        ConvertRequest,
        LeadStage,
        contact_problem,
    )
    from domain.opportunities import LeadHandover

from workflows.kit import FOLDED_STORE_CALLS, Inbound, call, patched, since
from workflows.lead.base import LeadBase
from workflows.lead.plan import CONTACT_CHECKED, ENDED, OPPORTUNITY_HANDOVER, OWNED


class LeadSignals(LeadBase):
    """The lead's signal handlers."""

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
                workflow_id=self.workflow_id,
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
        if problem and (not contact.owner_id or patched(CONTACT_CHECKED)):
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
                workflow_id=self.workflow_id,
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
            # Since FOLDED_STORE_CALLS one activity also starts the opportunity's journey.
            folded = since(FOLDED_STORE_CALLS)
            s.opportunity_id = await call(
                "convert_lead_and_start_opportunity" if folded else "convert_lead",
                ConvertRequest(
                    lead_id=s.lead_id,
                    workflow_id=self.workflow_id,
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
        if not folded and patched(OPPORTUNITY_HANDOVER):
            await call("start_opportunity_journey", LeadHandover(
                opportunity_id=s.opportunity_id, lead_workflow_id=self.workflow_id))
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
