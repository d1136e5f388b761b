"""CustomerLifecycle: one long-lived journey per customer, driven by purchases.

Every purchase restarts the dormancy clock. When it runs out (180 days after
the last purchase) a customer who meets the dormant tier's rule gets a
win-back message with a unique coupon, personalised by their favourite
category; without a purchase, a stronger offer 14 days later; without one 30
days after that, they are marked lost and left alone. A customer who does not
meet the rule is marked lost without a message. A purchase at any point
reactivates them and credits the campaign. Tier changes from the daily RFM
sweep arrive as `tier_changed`: core customers get an exclusive advisor,
potential ones the community coupon. When that advisor is deactivated
(`staff_deactivated`), a customer still core is handed to the least-loaded
active advisor, who is told; with none left (the advisor's manager is told),
or once the customer is no longer core, the advisor is cleared.

The journey runs for the customer's lifetime, so it continues as new whenever
the server suggests it or its history reaches the policy's bound, after
finishing what it was doing, carrying its state (and its touch counters) over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.journeys import Decision
    from domain.lifecycle import (
        JOURNEY,
        AdvisorHandover,
        AdvisorHandoverRequest,
        AdvisorRequest,
        AdvisorResult,
        Coupon,
        CouponRequest,
        DormancyCheck,
        DormancyResult,
        LifecycleCarry,
        LifecycleInput,
        LifecycleMark,
        LifecyclePolicy,
        LifecycleStage,
        LifecycleStatus,
        OptOut,
        OptOutRequest,
        Purchase,
        PurchaseRequest,
        PurchaseResult,
        Tier,
        TierChanged,
    )
    from domain.messaging import MessageClass, Recipient

from workflows.kit import (
    CRM_CUSTOMER_ID,
    CRM_JOURNEY,
    CRM_SLA_DEADLINE,
    CRM_STAGE,
    CRM_TIER,
    STORE_RETRY,
    Agenda,
    Due,
    Inbound,
    Journey,
    Plan,
    WaitUntil,
    call,
    moves,
    patched,
    start_input,
)

CURRENCY = "CNY"
SERVE_DURING_HANDOVER = "serve-during-handover"
IN_CAMPAIGN = (LifecycleStage.winback_first, LifecycleStage.winback_second, LifecycleStage.lost)


def steps(policy: LifecyclePolicy) -> dict[LifecycleStage, WaitUntil]:
    """The step each waiting stage ends in."""
    return {
        LifecycleStage.active: WaitUntil("dormancy_check", "dormancy check",
                                         fact="the last purchase", offset=policy.dormant_after),
        LifecycleStage.winback_first: WaitUntil("second_offer", "second win-back offer",
                                                fact="the first offer",
                                                offset=policy.second_touch_after),
        LifecycleStage.winback_second: WaitUntil("mark_lost", "marked lost",
                                                 fact="the second offer",
                                                 offset=policy.lost_after),
    }


def plan(policy: LifecyclePolicy | None = None) -> Plan:
    """180 days without a purchase: a win-back offer (or lost, if the customer
    does not meet the dormant rule); 14 days on a stronger one; 30 days on, lost."""
    policy = policy or LifecyclePolicy()
    stage = LifecycleStage
    return Plan(
        journey=JOURNEY,
        parts=tuple(steps(policy).values()),
        start=stage.prospect,
        transitions=moves(
            ((stage.prospect, stage.active, stage.winback_first, stage.winback_second,
              stage.lost), "purchase", stage.active),
            (stage.active, "dormancy_check", stage.winback_first),
            (stage.active, "dormancy_check", stage.lost),
            (stage.winback_first, "second_offer", stage.winback_second),
            (stage.winback_second, "mark_lost", stage.lost),
        ),
        notes=("runs for the customer's lifetime, continuing as new",),
    )


@workflow.defn(name="CustomerLifecycle", failure_exception_types=[pydantic.ValidationError])
class CustomerLifecycle(Journey):
    journey = JOURNEY
    entity_kind = "customer"
    signals = {"purchase": Purchase, "opt_out": OptOut, "tier_changed": TierChanged}
    planned = staticmethod(plan)

    @workflow.init
    def __init__(self, *args: Any) -> None:
        self.start = start = start_input(args, LifecycleInput)
        self.customer_id = start.customer_id
        self.carry = start.carry or LifecycleCarry(stage=LifecycleStage.prospect)
        self.policy: LifecyclePolicy = start.policy or LifecyclePolicy()
        self._setup_journey(start.customer_id, self.carry.counters, plan(self.policy))
        self.rejections = list(self.carry.rejections)

    @workflow.run
    async def run(self, *args: Any) -> None:
        """Takes one `LifecycleInput` (signal-with-start with its customer id)."""
        start = self.start
        if start.policy is None:
            self.policy = await call("load_lifecycle_policy", result_type=LifecyclePolicy)
            self.plan = plan(self.policy)
        if start.carry is None:
            await call("ensure_customer", self._about())
        self._upsert({CRM_JOURNEY: JOURNEY, CRM_CUSTOMER_ID: self.customer_id})
        self._publish()
        while True:
            if self._time_to_continue():
                # Finish what is on its way, acting meanwhile on what arrives: a
                # purchase does not wait hours behind a win-back held by quiet
                # hours. Older runs waited, and replay so.
                serve = patched(SERVE_DURING_HANDOVER)
                while serve and not self.messenger.settled():
                    await workflow.wait_condition(
                        lambda: bool(self.inbox) or self.messenger.settled())
                    if self.inbox:
                        await self._act_on(self.inbox.pop(0))
                await self.messenger.drain()
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self.inbox:
                    self.carry.rejections = list(self.rejections)
                    self.carry.runs += 1
                    workflow.continue_as_new(LifecycleInput(
                        customer_id=self.customer_id, policy=self.policy, carry=self.carry))
            item = await self._next_inbound(self._agenda().next())
            if item is None:
                await self._on_clock()
            else:
                await self._act_on(item)

    # -- signals and the query -----------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> LifecycleStatus:
        c = self.carry
        return LifecycleStatus(
            customer_id=self.customer_id, stage=c.stage, tier=c.tier,
            last_purchase_at=c.last_purchase_at, dormant_at=c.dormant_at,
            next_step_at=c.next_step_at, orders=c.orders, campaign=list(c.campaign),
            credited=c.credited, runs=c.runs, rejections=list(self.rejections),
            policy=self.policy)

    # -- the clock ---------------------------------------------------------------------

    def _agenda(self) -> Agenda:
        c = self.carry
        step = steps(self.policy).get(c.stage)
        return Agenda.of(step.entries_at(c.next_step_at)) if step else Agenda()

    async def _step_dormancy_check(self, entry: Due) -> None:
        check: DormancyResult = await call("check_dormancy", DormancyCheck(
            customer_id=self.customer_id, workflow_id=self.workflow_id,
            now=workflow.now(), rfm=self.policy.rfm), DormancyResult)
        if not check.meets_rule:
            await self._lost(f"dormant without meeting the rule (F={check.frequency}, "
                             f"M={check.monetary})")
            return
        await self._win_back("winback_first", self.policy.first_offer_percent,
                             check.favourite_category)
        await self._mark("dormant", "dormant")
        self._enter(LifecycleStage.winback_first, workflow.now() + self.policy.second_touch_after)

    async def _step_second_offer(self, entry: Due) -> None:
        await self._win_back("winback_second", self.policy.second_offer_percent, None)
        self._enter(LifecycleStage.winback_second, workflow.now() + self.policy.lost_after)

    async def _step_mark_lost(self, entry: Due) -> None:
        await self._lost("no purchase after two win-back offers")

    async def _win_back(self, step: str, percent: int, category: str | None) -> None:
        coupon: Coupon = await call("issue_coupon", CouponRequest(
            customer_id=self.customer_id,
            key=f"{self.workflow_id}:{step}:{self.counters.get(step, 0) + 1}",
            campaign="winback", percent=percent, valid_for=self.policy.coupon_valid_for,
            now=workflow.now()), Coupon)
        self.carry.campaign.append(coupon.code)
        self._send(step, MessageClass.marketing, {
            "coupon_code": coupon.code, "discount_percent": coupon.percent,
            "expires_at": coupon.expires_at, "category": category})

    async def _lost(self, reason: str) -> None:
        await self._mark("lost", "lost", reason)
        self._enter(LifecycleStage.lost, None)

    # -- acting on signals ---------------------------------------------------------------

    async def _on_purchase(self, item: Inbound) -> Decision:
        c, p = self.carry, item.payload
        if not p.order_id.strip():
            return Decision(accepted=False, reason="order_id is required")
        if p.amount <= 0:
            return Decision(accepted=False, reason=f"amount {p.amount} must be positive")
        if p.currency and p.currency.upper() != CURRENCY:
            return Decision(accepted=False,
                            reason=f"currency {p.currency} is not the store's {CURRENCY}")
        if p.at is not None and p.at > item.received_at + timedelta(minutes=5):
            return Decision(accepted=False, reason=f"purchase time {p.at.isoformat()} is in "
                            "the future")
        try:
            result: PurchaseResult = await call("record_purchase", PurchaseRequest(
                customer_id=self.customer_id, workflow_id=self.workflow_id,
                purchase=p, currency=CURRENCY,
                campaign=c.campaign if c.stage in IN_CAMPAIGN else [],
                now=item.received_at), PurchaseResult)
        except ActivityError as err:
            cause = err.cause
            return Decision(accepted=False, reason=cause.message
                            if isinstance(cause, ApplicationError) else str(err))
        if result.duplicate:
            return Decision(accepted=True, reason="order already recorded")
        c.orders = result.orders
        c.last_purchase_at = result.last_purchase_at
        if result.credited_coupon:
            c.credited += 1
        assert c.last_purchase_at is not None
        dormant_at = c.last_purchase_at + self.policy.dormant_after
        if dormant_at <= workflow.now():
            # A purchase reported after its own dormancy window: too late for a
            # win-back, so nothing is sent.
            if c.stage is LifecycleStage.prospect:
                await self._lost("purchase reported after its dormancy window")
            return Decision(accepted=True)
        if c.stage in IN_CAMPAIGN:
            await self._mark("active", "reactivated",
                             f"credited to coupon {result.credited_coupon}")
            c.campaign = []
        c.dormant_at = dormant_at
        self._enter(LifecycleStage.active, dormant_at)
        return Decision(accepted=True)

    async def _on_opt_out(self, item: Inbound) -> Decision:
        await call("record_opt_out", OptOutRequest(
            customer_id=self.customer_id, channel=item.payload.channel, now=workflow.now()))
        return Decision(accepted=True)

    async def _on_tier_changed(self, item: Inbound) -> Decision:
        tier = item.payload.tier
        if tier not in {t.value for t in Tier}:
            return Decision(accepted=False, reason=f"unknown tier {tier!r}")
        change, last = item.payload.change, self.carry.tier_change
        if change is not None and last is not None and change <= last:
            # The outbox told this change again (its dispatch was retried).
            return Decision(accepted=True, reason=f"tier change {change} already acted on")
        if change is not None:
            self.carry.tier_change = change
        self.carry.tier = tier
        if tier == Tier.core:
            advisor: AdvisorResult = await call("assign_exclusive_advisor", self._about(),
                                                AdvisorResult)
            self._notify_staff(advisor.advisor_id, "core_advisor", {})
        elif tier == Tier.potential:
            coupon: Coupon = await call("issue_coupon", CouponRequest(
                customer_id=self.customer_id,
                key=f"{self.workflow_id}:community_coupon:"
                    f"{self.counters.get('community_coupon', 0) + 1}",
                campaign="community", percent=self.policy.community_coupon_percent,
                valid_for=timedelta(days=30), now=workflow.now()), Coupon)
            self._send("community_coupon", MessageClass.marketing, {
                "coupon_code": coupon.code, "discount_percent": coupon.percent,
                "expires_at": coupon.expires_at})
        self._publish()
        return Decision(accepted=True)

    async def _on_staff_deactivated(self, item: Inbound) -> Decision | None:
        if rejected := self._nobody_named(item):
            return rejected
        staff_id = item.payload.staff_id.strip()
        # The advisor is kept in the store, not in the journey's state, so the
        # activity decides whether the signal concerns this customer at all.
        request = AdvisorHandoverRequest(
            customer_id=self.customer_id, workflow_id=self.workflow_id,
            staff_id=staff_id, tier=self.carry.tier,
            n=self.counters.get("handover", 0) + 1, now=workflow.now())
        handover: AdvisorHandover = await call("hand_over_exclusive_advisor", request,
                                               AdvisorHandover)
        if not handover.held:
            return None  # a broadcast about someone else: nothing to do
        self._count("handover")
        if handover.advisor_id:
            self._notify_staff(handover.advisor_id, "advisor_handover",
                               {"previous_advisor_id": staff_id})
        elif handover.core:
            self._notify_staff(handover.manager_id, "advisor_needed",
                               {"previous_advisor_id": staff_id})
        return Decision(accepted=True)

    # -- small helpers -------------------------------------------------------------------

    def _time_to_continue(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or \
            info.get_current_history_length() >= self.policy.max_history_events

    def _about(self) -> AdvisorRequest:
        return AdvisorRequest(customer_id=self.customer_id,
                              workflow_id=self.workflow_id, now=workflow.now())

    async def _mark(self, state: str, step: str, reason: str | None = None) -> None:
        await call("mark_lifecycle", LifecycleMark(
            customer_id=self.customer_id, workflow_id=self.workflow_id, state=state,
            step=step, n=self._count(f"mark_{step}"), now=workflow.now(), reason=reason))

    def _send(self, step: str, message_class: MessageClass, facts: dict[str, object]) -> None:
        self.messenger.send(step=step, message_class=message_class,
                            recipient=Recipient(kind="customer", id=self.customer_id),
                            entity_kind=self.entity_kind, entity_id=self.customer_id,
                            facts=facts)

    def _enter(self, stage: LifecycleStage, next_step_at: datetime | None) -> None:
        self.carry.stage = stage
        self.carry.next_step_at = next_step_at
        self._publish()

    def _stage_name(self) -> str:
        return self.carry.stage.value

    def _publish(self) -> None:
        c = self.carry
        self._upsert({CRM_STAGE: c.stage.value, CRM_TIER: c.tier,
                      CRM_SLA_DEADLINE: c.next_step_at})
        lines = [f"**Customer {self.customer_id}** — `{c.stage.value}`"
                 + (f", tier {c.tier}" if c.tier else ""), f"orders: {c.orders}"]
        if nxt := self._agenda().next():
            lines.append(f"waiting for a purchase; next: {nxt.summary}, at {nxt.at.isoformat()}")
        workflow.set_current_details("\n\n".join(lines))


@workflow.defn(name="RfmSweep")
class RfmSweep:
    """The daily sweep (started by the `rfm-daily` schedule), then the tier
    changes that carry a strategy told to their journeys in paced batches."""

    @workflow.run
    async def run(self, day: str, dispatch_only: bool = False) -> dict[str, object]:
        """`day`: the business day (ISO; empty: today). `dispatch_only`: a run
        continued as new, which only goes on telling the day's changes."""
        result: dict[str, object] = {"day": day, "mode": "continued"} if dispatch_only else \
            await workflow.execute_activity(
                "sweep_rfm", day, start_to_close_timeout=timedelta(minutes=30),
                retry_policy=STORE_RETRY)
        told = 0
        while True:
            batch = await workflow.execute_activity(
                "dispatch_tier_changes", 200, start_to_close_timeout=timedelta(minutes=5),
                retry_policy=STORE_RETRY, result_type=int)
            told += batch
            if batch < 200:
                break
            if workflow.info().is_continue_as_new_suggested():
                if workflow.patched("rfm-continue-dispatch-only"):
                    # The sweep is done: the next run only tells what is left.
                    workflow.continue_as_new(args=[str(result["day"]), True])
                workflow.continue_as_new(day)
            await workflow.sleep(timedelta(seconds=1))  # at most 200 journeys a second
        return {**result, "told": told}
