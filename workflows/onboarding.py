"""OnboardingJourney: from signing to a first delivery within 3 days.

On a signed contract (won from an opportunity, or signed with `crm contract
sign`) the service lead gets the task of setting up the customer's dedicated
service group; when it is ready (`group_ready {link}`) the customer is
welcomed with its contact. The first delivery is due 3 days after signing,
with a reminder a day before; a breach is escalated to the service lead's
manager. A week after the delivery (`delivered {by, note?}`) the customer is
checked in on, and the onboarding is complete. The delivery's acceptance is
the contract's acceptance (policy), told to its payment journey.

Its own journey rather than part of PaymentJourney: the payment journey's
running instances and recorded histories stay as they are, and onboarding can
start for a contract whichever way it was signed.
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
    from domain.messaging import MessageClass, Recipient
    from domain.onboarding import (
        JOURNEY,
        Delivered,
        DeliveryEscalation,
        DeliveryRecord,
        EscalatedTo,
        GroupReady,
        GroupRecord,
        OnboardingInput,
        OnboardingOpened,
        OnboardingPolicy,
        OnboardingStage,
        OnboardingStatus,
        OnboardingStep,
        OpenOnboarding,
        ServiceLeadHandover,
    )

from workflows.kit import (
    CRM_CUSTOMER_ID,
    CRM_JOURNEY,
    CRM_OWNER_ID,
    CRM_SLA_DEADLINE,
    CRM_STAGE,
    Agenda,
    Deadline,
    Due,
    Inbound,
    Journey,
    Plan,
    WaitUntil,
    call,
    moves,
    refusal,
    start_input,
)

AWAITING = (OnboardingStage.awaiting_delivery, OnboardingStage.escalated)


def delivery(policy: OnboardingPolicy) -> Deadline:
    return Deadline("delivery_missed", "first delivery", within=policy.delivery_within,
                    reminder_before=policy.reminder_before, reminder_step="delivery_reminder",
                    on_miss="escalate to the service lead's manager")


def check_in(policy: OnboardingPolicy) -> WaitUntil:
    return WaitUntil("check_in", "check-in with the customer", fact="the delivery",
                     offset=policy.check_in_after)


def plan(policy: OnboardingPolicy | None = None) -> Plan:
    """The service group set up and a first delivery within 3 days of signing,
    a reminder a day before, the service lead's manager on a breach; a
    check-in a week after the delivery."""
    policy = policy or OnboardingPolicy()
    stage = OnboardingStage
    return Plan(
        journey=JOURNEY,
        parts=(delivery(policy), check_in(policy)),
        start=stage.awaiting_delivery,
        transitions=moves(
            (stage.awaiting_delivery, "delivery_missed", stage.escalated),
            (AWAITING, "delivered", stage.delivered),
            (stage.delivered, "check_in", stage.completed),
        ),
        ends=(stage.completed,),
    )


@dataclass
class OnboardingState:
    contract_id: str
    customer_id: str
    owner_id: str
    stage: OnboardingStage = OnboardingStage.awaiting_delivery
    service_lead_id: str | None = None
    delivery_due_at: datetime | None = None
    reminded: bool = False
    group_link: str | None = None
    delivered_at: datetime | None = None
    delivered_by: str | None = None
    escalated_to: str | None = None
    counters: dict[str, int] = field(default_factory=dict)


@workflow.defn(name="OnboardingJourney", failure_exception_types=[pydantic.ValidationError])
class OnboardingJourney(Journey):
    journey = JOURNEY
    entity_kind = "onboarding"
    signals = {"group_ready": GroupReady, "delivered": Delivered}
    planned = staticmethod(plan)

    @workflow.init
    def __init__(self, *args: Any) -> None:
        self.onboarding = o = start_input(args, OnboardingInput)
        self.state = OnboardingState(contract_id=o.contract_id, customer_id=o.customer_id,
                                     owner_id=o.owner_id)
        self.policy: OnboardingPolicy = o.policy or OnboardingPolicy()
        self._setup_journey(o.contract_id, self.state.counters, plan(self.policy))

    @workflow.run
    async def run(self, *args: Any) -> OnboardingStatus:
        """Takes one `OnboardingInput`."""
        s, o = self.state, self.onboarding
        if o.policy is None:
            self.policy = await call("load_onboarding_policy", result_type=OnboardingPolicy)
            self.plan = plan(self.policy)
        self._upsert({CRM_JOURNEY: JOURNEY, CRM_CUSTOMER_ID: s.customer_id})
        try:
            opened: OnboardingOpened = await call("open_onboarding", OpenOnboarding(
                onboarding=o.model_copy(update={"policy": None}), workflow_id=self.workflow_id,
                service_group=self.policy.service_group,
                delivery_within=self.policy.delivery_within, now=workflow.now()),
                OnboardingOpened)
        except ActivityError as err:
            cause = err.cause
            raise ApplicationError(cause.message if isinstance(cause, ApplicationError)
                                   else str(err), type="InvalidOnboarding",
                                   non_retryable=True) from err
        s.service_lead_id, s.delivery_due_at = opened.service_lead_id, opened.delivery_due_at
        self._notify_staff(s.service_lead_id, "service_group_task",
                           {"due_at": s.delivery_due_at})
        self._publish()
        await self._serve(lambda: s.stage is OnboardingStage.completed)
        await self._drain()
        return self.status()

    @workflow.update(name="delivered_now")
    async def delivered_now(self, payload: Delivered) -> Decision:
        """`delivered` with an answer: accepted, or why not."""
        return await self._answer("delivered", payload)

    @delivered_now.validator
    def _validate_delivered_now(self, payload: Delivered) -> None:
        if problem := self._delivery_problem(payload):
            raise refusal(problem)

    @workflow.query(name="status")
    def status(self) -> OnboardingStatus:
        s = self.state
        on_time = (s.delivered_at <= s.delivery_due_at
                   if s.delivered_at and s.delivery_due_at else None)
        return OnboardingStatus(
            contract_id=s.contract_id, customer_id=s.customer_id, owner_id=s.owner_id,
            service_lead_id=s.service_lead_id, stage=s.stage, delivery_due_at=s.delivery_due_at,
            group_link=s.group_link, delivered_at=s.delivered_at, delivered_by=s.delivered_by,
            on_time=on_time, escalated_to=s.escalated_to, deadline=self._agenda().next_at(),
            rejections=list(self.rejections), policy=self.policy)

    def _ended_reason(self) -> str:
        return f"the onboarding is {self.state.stage.value}"

    # -- the clock -------------------------------------------------------------------------

    def _agenda(self) -> Agenda:
        s = self.state
        if s.stage is OnboardingStage.awaiting_delivery:
            return Agenda.of(delivery(self.policy).entries(s.delivery_due_at,
                                                           reminded=s.reminded))
        if s.stage is OnboardingStage.delivered:
            return Agenda.of(check_in(self.policy).entries(s.delivered_at))
        return Agenda()

    async def _step_delivery_reminder(self, entry: Due) -> None:
        s = self.state
        s.reminded = True
        self._notify_staff(s.service_lead_id, "delivery_reminder", {"due_at": s.delivery_due_at})
        self._publish()

    async def _step_delivery_missed(self, entry: Due) -> None:
        s = self.state
        to: EscalatedTo = await call("escalate_delivery", DeliveryEscalation(
            contract_id=s.contract_id, workflow_id=self.workflow_id,
            service_lead_id=s.service_lead_id, now=workflow.now()), EscalatedTo)
        s.escalated_to = to.manager_id
        self._notify_staff(to.manager_id, "delivery_escalated",
                           {"due_at": s.delivery_due_at, "service_lead_id": s.service_lead_id})
        s.stage = OnboardingStage.escalated
        self._publish()

    async def _step_check_in(self, entry: Due) -> None:
        s = self.state
        await call("record_onboarding_step", OnboardingStep(
            contract_id=s.contract_id, workflow_id=self.workflow_id, step="checked_in",
            now=workflow.now()))
        self._send_customer("check_in", {"delivered_at": s.delivered_at})
        s.stage = OnboardingStage.completed
        self._publish()

    # -- acting on signals -----------------------------------------------------------------

    async def _on_group_ready(self, item: Inbound) -> Decision:
        s, ready = self.state, item.payload
        if not ready.link.strip():
            return Decision(accepted=False, reason="link is required: how the customer joins")
        if s.group_link is not None:
            return Decision(accepted=False, reason=f"the service group is ready ({s.group_link})")
        if s.stage is OnboardingStage.completed:
            return Decision(accepted=False, reason=self._ended_reason())
        await call("record_group_ready", GroupRecord(
            contract_id=s.contract_id, workflow_id=self.workflow_id, link=ready.link,
            now=workflow.now()))
        s.group_link = ready.link
        self._send_customer("welcome", {"group_link": ready.link})
        self._publish()
        return Decision(accepted=True)

    async def _on_delivered(self, item: Inbound) -> Decision:
        s, done = self.state, item.payload
        if problem := self._delivery_problem(done):
            return Decision(accepted=False, reason=problem)
        record = DeliveryRecord(contract_id=s.contract_id, workflow_id=self.workflow_id,
                                by=done.by, note=done.note, now=workflow.now())
        await call("record_delivery", record)
        if self.policy.delivery_is_acceptance:
            await call("accept_on_delivery", record)
        s.delivered_at, s.delivered_by = record.now, done.by
        s.stage = OnboardingStage.delivered
        self._notify_staff(s.owner_id, "delivered", {"by": done.by, "note": done.note})
        self._publish()
        return Decision(accepted=True, at=s.delivered_at)

    async def _on_staff_deactivated(self, item: Inbound) -> Decision | None:
        if rejected := self._nobody_named(item):
            return rejected
        s, gone = self.state, item.payload.staff_id
        if s.stage is OnboardingStage.completed or gone != s.service_lead_id:
            return None
        to: EscalatedTo = await call("hand_over_onboarding", ServiceLeadHandover(
            contract_id=s.contract_id, workflow_id=self.workflow_id, from_staff_id=gone,
            now=workflow.now(), n=self._count("handover")), EscalatedTo)
        if to.manager_id is None:
            return None
        s.service_lead_id = to.manager_id
        if s.group_link is None:
            self._notify_staff(s.service_lead_id, "service_group_task",
                               {"due_at": s.delivery_due_at})
        self._publish()
        return Decision(accepted=True)

    def _delivery_problem(self, done: Delivered) -> str | None:
        s = self.state
        if not done.by.strip():
            return "by is required: who delivered"
        if s.stage not in AWAITING:
            return f"the first delivery is already recorded ({s.stage.value})"
        return None

    # -- small helpers ---------------------------------------------------------------------

    def _send_customer(self, step: str, facts: dict[str, Any]) -> None:
        self.messenger.send(step=step, message_class=MessageClass.reminder,
                            recipient=Recipient(kind="customer", id=self.state.customer_id),
                            entity_kind=self.entity_kind, entity_id=self.entity_id, facts=facts)

    def _stage_name(self) -> str:
        return self.state.stage.value

    def _publish(self) -> None:
        s = self.state
        deadline = self._agenda().next_at()
        self._upsert({CRM_STAGE: s.stage.value,
                      CRM_OWNER_ID: s.service_lead_id or s.owner_id,
                      CRM_SLA_DEADLINE: deadline})
        workflow.set_current_details(
            f"**Onboarding of contract {s.contract_id}** — stage `{s.stage.value}`\n\n"
            f"service lead: {s.service_lead_id or 'nobody'}; group: "
            f"{s.group_link or 'not ready'}; delivery due {s.delivery_due_at}")
