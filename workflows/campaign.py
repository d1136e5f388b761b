"""CampaignJourney: one customer's run of a campaign, walking its declared steps.

The steps (messages, waits, a wait for a purchase or a reply with a timeout,
branches on either) are data in the start input, compiled to a list the run walks with a
counter, so one loop serves every campaign. Messages are marketing touches
through the one send path, with the variant's template where it has one. A
purchase — told by `converted`, or found in the store when a wait for it
ends — is a conversion: the run ends there when the campaign exits on
conversion. A reply — told by `replied`, or a contact logged with the
customer found when a wait for it ends — ends a wait for it at once. A
campaign with a coupon issues the run's own code before its first message,
and every message carries it. While the campaign is paused, a message waits
and asks again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.campaigns import (
        JOURNEY,
        CampaignInput,
        CampaignName,
        CampaignPolicy,
        CampaignStage,
        CampaignState,
        CampaignStatus,
        Converted,
        CouponTerms,
        Jump,
        JumpUnless,
        LocalTime,
        Message,
        NextTime,
        PurchaseCheck,
        PurchaseFound,
        Replied,
        ReplyCheck,
        ReplyFound,
        RunEnded,
        RunReplied,
        Wait,
        WaitFor,
        parse_steps,
        program,
    )
    from domain.journeys import Decision
    from domain.lifecycle import Coupon, CouponRequest
    from domain.messaging import MessageClass, Recipient

from workflows.kit import (
    CRM_CUSTOMER_ID,
    CRM_JOURNEY,
    CRM_STAGE,
    Agenda,
    Due,
    Inbound,
    Journey,
    Plan,
    WaitUntil,
    call,
    moves,
    start_input,
)
from workflows.kit.calls import CAMPAIGN_COUPONS, CAMPAIGN_REPLIES, patched

NEXT = WaitUntil("next_step", "the next step", fact="the step's time", wait="step")
ENDS = (CampaignStage.converted, CampaignStage.completed)


def plan(policy: CampaignPolicy | None = None) -> Plan:
    """A campaign's declared steps, one after another: messages, waits, a wait
    for a purchase or a reply, branches; a purchase ends the run as converted,
    a reply ends a wait for it."""
    stage = CampaignStage
    return Plan(
        journey=JOURNEY,
        parts=(NEXT,),
        start=stage.running,
        transitions=moves(
            (stage.running, "next_step", stage.running),
            (stage.running, "next_step", stage.converted),
            (stage.running, "next_step", stage.completed),
            (stage.running, "converted", stage.converted),
            (stage.running, "replied", stage.running),
        ),
        ends=ENDS,
    )


@dataclass
class RunState:
    campaign: str
    customer_id: str
    arm: str
    entered_at: datetime
    stage: CampaignStage = CampaignStage.running
    pc: int = 0
    next_at: datetime | None = None
    waiting_since: datetime | None = None  # a wait for an event runs from here
    waiting_for: str = "purchase"  # the event waited for
    converted_by: str | None = None
    replied_at: datetime | None = None
    replies: int = 0
    coupon: dict[str, Any] | None = None  # the run's coupon, as the messages carry it
    touches: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)


@workflow.defn(name="CampaignJourney", failure_exception_types=[pydantic.ValidationError])
class CampaignJourney(Journey):
    journey = JOURNEY
    entity_kind = "campaign"
    signals = {"converted": Converted, "replied": Replied}
    planned = staticmethod(plan)

    @workflow.init
    def __init__(self, *args: Any) -> None:
        self.run_input = r = start_input(args, CampaignInput)
        self.program = program(parse_steps(r.steps))
        self.state = RunState(campaign=r.campaign, customer_id=r.customer_id, arm=r.arm,
                              entered_at=r.entered_at)
        self.policy = CampaignPolicy()
        self._setup_journey(f"{r.campaign}:{r.customer_id}", self.state.counters, plan())

    @workflow.run
    async def run(self, *args: Any) -> CampaignStatus:
        """Takes one `CampaignInput`."""
        s = self.state
        self.policy = await call("load_campaign_policy", result_type=CampaignPolicy)
        self._upsert({CRM_JOURNEY: JOURNEY, CRM_CUSTOMER_ID: s.customer_id,
                      CRM_STAGE: s.stage.value})
        await self._advance()
        await self._serve(lambda: s.stage in ENDS)
        await self._drain()
        return self.status()

    @workflow.query(name="status")
    def status(self) -> CampaignStatus:
        s = self.state
        return CampaignStatus(campaign=s.campaign, customer_id=s.customer_id, arm=s.arm,
                              stage=s.stage, step=s.pc, converted_by=s.converted_by,
                              replied_at=s.replied_at,
                              coupon_code=s.coupon["coupon_code"] if s.coupon else None,
                              touches=list(s.touches), waiting_until=s.next_at,
                              rejections=list(self.rejections))

    def _ended_reason(self) -> str:
        return f"the campaign run is {self.state.stage.value}"

    def _agenda(self) -> Agenda:
        s = self.state
        if s.stage is CampaignStage.running:
            return Agenda.of(NEXT.entries_at(s.next_at))
        return Agenda()

    async def _step_next_step(self, entry: Due) -> None:
        s = self.state
        s.next_at = None
        if s.waiting_since is not None and s.waiting_for == "reply":
            # No reply was told in time: one logged with the customer counts.
            since, s.waiting_since = s.waiting_since, None
            if s.replied_at is None:
                s.replied_at = (await self._reply_since(since)).at
        elif s.waiting_since is not None:
            found = await self._purchase_since(s.waiting_since)
            s.waiting_since = None
            if found.order_id and await self._convert(found.order_id):
                return
        await self._advance()

    async def _on_converted(self, item: Inbound) -> Decision:
        s = self.state
        if s.stage is not CampaignStage.running:
            return Decision(accepted=False, reason=self._ended_reason())
        order_id = (item.payload.order_id or "").strip()
        if not order_id:
            return Decision(accepted=False, reason="order_id is required: the order that "
                                                   "converted the customer")
        await self._convert(order_id)
        return Decision(accepted=True)

    async def _on_replied(self, item: Inbound) -> Decision:
        s = self.state
        if not patched(CAMPAIGN_REPLIES):
            # Runs started before replies were an event refused the signal as unknown.
            return Decision(accepted=False, reason="unknown signal 'replied': this journey "
                                                   "takes converted, staff_deactivated")
        if s.stage is not CampaignStage.running:
            return Decision(accepted=False, reason=self._ended_reason())
        at = item.payload.at or item.received_at
        if at > item.received_at + timedelta(minutes=5):
            return Decision(accepted=False, reason=f"at {at.isoformat()} is in the future")
        s.replies += 1
        await call("record_campaign_reply", RunReplied(
            campaign=s.campaign, customer_id=s.customer_id, workflow_id=self.workflow_id,
            channel=item.payload.channel.strip()[:32], at=at, n=s.replies))
        s.replied_at = s.replied_at or at
        if s.waiting_since is not None and s.waiting_for == "reply":
            s.waiting_since = s.next_at = None  # the wait for it ends here
            await self._advance()
        return Decision(accepted=True)

    async def _on_staff_deactivated(self, item: Inbound) -> Decision | None:
        return self._nobody_named(item)  # a campaign run gives no one a role

    # -- the walk ---------------------------------------------------------------------------

    async def _advance(self) -> None:
        """Performs steps from the counter until one waits or the steps run out."""
        s = self.state
        while s.pc < len(self.program):
            step = self.program[s.pc]
            if isinstance(step, Message):
                state: CampaignState = await call(
                    "campaign_state", CampaignName(campaign=s.campaign), CampaignState)
                if state.status == "paused":
                    s.next_at = workflow.now() + self.policy.paused_recheck
                    self._publish()
                    return
                if self.run_input.exit_on_conversion:
                    found = await self._purchase_since(s.entered_at)
                    if found.order_id and await self._convert(found.order_id):
                        return
                template = self.run_input.templates.get(step.template, step.template)
                facts: dict[str, Any] = {"campaign": s.campaign, "variant": s.arm}
                terms = self.run_input.coupon
                if terms is not None and patched(CAMPAIGN_COUPONS):
                    facts.update(await self._coupon(terms))
                run = self.run_input.run
                name = (f"r{run}_" if run > 1 else "") + f"{s.pc}_{step.channel}"
                self.messenger.send(step=name, template=template, channel=step.channel,
                                    message_class=MessageClass.marketing,
                                    recipient=Recipient(kind="customer", id=s.customer_id),
                                    entity_kind=self.entity_kind, entity_id=self.entity_id,
                                    facts=facts)
                s.touches.append(f"{step.channel}:{template}")
                s.pc += 1
            elif isinstance(step, Wait):
                s.pc += 1
                if step.until is not None:
                    at: NextTime = await call("campaign_next_local_time", LocalTime(
                        customer_id=s.customer_id, until=step.until.isoformat("minutes"),
                        now=workflow.now()), NextTime)
                    s.next_at = at.at
                else:
                    s.next_at = workflow.now() + timedelta(days=step.days)
                self._publish()
                return
            elif isinstance(step, WaitFor):
                s.pc += 1
                s.waiting_since, s.waiting_for = workflow.now(), step.event
                s.next_at = workflow.now() + timedelta(days=step.days)
                self._publish()
                return
            elif isinstance(step, JumpUnless) and step.on == "reply":
                if s.replied_at is None and patched(CAMPAIGN_REPLIES):
                    s.replied_at = (await self._reply_since(s.entered_at)).at
                s.pc = s.pc + 1 if s.replied_at is not None else step.target
            elif isinstance(step, JumpUnless):
                bought = s.converted_by is not None
                if not bought:
                    bought = (await self._purchase_since(s.entered_at)).order_id is not None
                s.pc = s.pc + 1 if bought else step.target
            elif isinstance(step, Jump):
                s.pc = step.target
        await self._end(CampaignStage.completed, s.converted_by)

    async def _purchase_since(self, since: datetime) -> PurchaseFound:
        found: PurchaseFound = await call("campaign_purchase_since", PurchaseCheck(
            customer_id=self.state.customer_id, since=since), PurchaseFound)
        return found

    async def _reply_since(self, since: datetime) -> ReplyFound:
        found: ReplyFound = await call("campaign_reply_since", ReplyCheck(
            customer_id=self.state.customer_id, since=since), ReplyFound)
        return found

    async def _coupon(self, terms: CouponTerms) -> dict[str, Any]:
        """The run's coupon, issued once under the run's key (a retry, and
        every later message, gets the same code) and kept with the win-back's."""
        s = self.state
        if s.coupon is None:
            coupon: Coupon = await call("issue_coupon", CouponRequest(
                customer_id=s.customer_id,
                key=f"{self.workflow_id}:{s.entered_at.isoformat()}:coupon",
                campaign=s.campaign[:32], percent=terms.percent,
                valid_for=timedelta(days=terms.valid_days), now=workflow.now()), Coupon)
            s.coupon = {"coupon_code": coupon.code, "discount_percent": coupon.percent,
                        "expires_at": coupon.expires_at}
        return s.coupon

    async def _convert(self, order_id: str) -> bool:
        """A purchase: the run ends converted when the campaign exits on
        conversion (True), else it is noted and the steps go on."""
        s = self.state
        s.converted_by = s.converted_by or order_id
        if not self.run_input.exit_on_conversion:
            return False
        await self._end(CampaignStage.converted, order_id)
        return True

    async def _end(self, outcome: CampaignStage, order_id: str | None) -> None:
        s = self.state
        s.stage, s.next_at = outcome, None
        await call("end_campaign_run", RunEnded(
            campaign=s.campaign, customer_id=s.customer_id, workflow_id=self.workflow_id,
            outcome=outcome, order_id=order_id, now=workflow.now()))
        self._publish()

    def _stage_name(self) -> str:
        return self.state.stage.value

    def _publish(self) -> None:
        s = self.state
        self._upsert({CRM_STAGE: s.stage.value})
        workflow.set_current_details(
            f"**Campaign {s.campaign}**, customer {s.customer_id} ({s.arm}) — "
            f"`{s.stage.value}`, step {s.pc} of {len(self.program)}"
            + (f", next at {s.next_at.isoformat()}" if s.next_at else ""))
