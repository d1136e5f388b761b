"""MembershipJourney: a customer's loyalty membership, one membership year per run.

Orders earn points by the policy's rules (member day, birthday month,
campaigns), refunds take them back, shares, check-ins and surveys earn
behaviour points, staff grant compensation with a reason, and the member
redeems points up to the balance, with a receipt. Points expire at the end
of the year after they were earned, with a reminder 30 days before. Thirty
days before the anniversary a member whose year's spend would drop them a
level gets the 保级 offer (what they still need to spend, and the gift that
keeping the level brings), once; at the anniversary the level is set from
the trailing year and the member told of a change. In the birthday month's
first days the member gets a greeting with a gift, once a year. A member
who joined with a referral code rewards both on their first paid order.

Each run serves one membership year and continues as new at the
anniversary, carrying its state (and its touch counters) over, so the
history stays small however long the membership lasts.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.journeys import Decision
    from domain.loyalty import (
        CURRENCY,
        JOURNEY,
        Behaviour,
        Grant,
        LoyaltyPolicy,
        MemberPurchase,
        MembershipCarry,
        MembershipInput,
        MembershipStage,
        MembershipStatus,
        Redeem,
        Refund,
    )
    from domain.loyalty_requests import (
        Enrolment,
        EnrolRequest,
        ExpiryRequest,
        LevelRequest,
        LevelResult,
        PointsResult,
        RetentionRequest,
        RetentionResult,
    )
    from domain.messaging import MessageClass

from workflows.kit import (
    CRM_CUSTOMER_ID,
    CRM_JOURNEY,
    Due,
    Inbound,
    call,
    refusal,
    start_input,
)
from workflows.membership.plan import plan
from workflows.membership.signals import MembershipSignals


@workflow.defn(name="MembershipJourney", failure_exception_types=[pydantic.ValidationError])
class MembershipJourney(MembershipSignals):
    journey = JOURNEY
    entity_kind = "member"
    signals = {"purchase": MemberPurchase, "refund": Refund, "behaviour": Behaviour,
               "grant": Grant, "redeem": Redeem}
    planned = staticmethod(plan)

    @workflow.init
    def __init__(self, *args: Any) -> None:
        self.start = start = start_input(args, MembershipInput)
        self.customer_id = start.customer_id
        self.policy: LoyaltyPolicy = start.policy or LoyaltyPolicy()
        self.carry = start.carry or MembershipCarry(
            joined_at=start.joined_at or workflow.now())
        self._setup_journey(start.customer_id, self.carry.counters, plan(self.policy))
        self.rejections = list(self.carry.rejections)
        self.dates = None
        self.referral_code = None
        self._renew = False

    @workflow.run
    async def run(self, *args: Any) -> None:
        """Takes one `MembershipInput` (started by `crm loyalty join`)."""
        start, c = self.start, self.carry
        if start.policy is None:
            self.policy = await call("load_loyalty_policy", result_type=LoyaltyPolicy)
            self.plan = plan(self.policy)
        enrolment: Enrolment = await call("enrol_member", EnrolRequest(
            customer_id=self.customer_id, workflow_id=self.workflow_id,
            joined_at=c.joined_at, birth_date=start.birth_date,
            referral_code=start.referral_code if start.carry is None else None,
            now=workflow.now()), Enrolment)
        self.referral_code = enrolment.referral_code
        if start.carry is None:
            c.referrer_id = enrolment.referrer_id
            if enrolment.referral_refused:
                await self._reject(Inbound(name="referral", payload=None,
                                           received_at=workflow.now(),
                                           raw={"referral_code": start.referral_code}),
                                   enrolment.referral_refused)
        await self._refresh_dates()
        self._upsert({CRM_JOURNEY: JOURNEY, CRM_CUSTOMER_ID: self.customer_id})
        self._publish()
        while True:
            await self._serve(lambda: self._renew or self._history_full())
            # Finish the touches on their way, answering what arrives meanwhile
            # (and what came with the anniversary), before the next year's run.
            while self.inbox or not self.messenger.settled():
                if self.inbox:
                    await self._act_on(self.inbox.pop(0))
                    continue
                await workflow.wait_condition(
                    lambda: bool(self.inbox) or self.messenger.settled())
            await self.messenger.drain()
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self.inbox:
                break
        c.rejections = list(self.rejections)
        c.runs += 1
        workflow.continue_as_new(MembershipInput(customer_id=self.customer_id,
                                                 policy=self.policy, carry=c))

    # -- updates and the query ---------------------------------------------------------

    @workflow.update(name="redeem_now")
    async def redeem_now(self, payload: Redeem) -> Decision:
        """`redeem` with an answer: the receipt, or why not (beyond the balance)."""
        return await self._answer("redeem", payload)

    @redeem_now.validator
    def _validate_redeem_now(self, payload: Redeem) -> None:
        if problem := self._redeem_problem(payload):
            raise refusal(problem)

    @workflow.update(name="grant_now")
    async def grant_now(self, payload: Grant) -> Decision:
        """`grant` with an answer."""
        return await self._answer("grant", payload)

    @grant_now.validator
    def _validate_grant_now(self, payload: Grant) -> None:
        if problem := self._grant_problem(payload):
            raise refusal(problem)

    @workflow.query(name="status")
    def status(self) -> MembershipStatus:
        c, d = self.carry, self.dates
        return MembershipStatus(
            customer_id=self.customer_id, stage=c.stage, level=c.level,
            discount_percent=self.policy.level(c.level).discount_percent,
            joined_at=c.joined_at, cycle=c.cycle,
            anniversary_at=d.anniversary_at if d else None,
            retention_offer_at=self._retention_at(),
            birthday_at=d.birthday_at if d else None, next_expiry_at=c.next_expiry_at,
            referral_code=self.referral_code, referrer_id=c.referrer_id,
            referral_rewarded=c.referral_rewarded, runs=c.runs,
            rejections=list(self.rejections), policy=self.policy)

    async def _step_retention_offer(self, entry: Due) -> None:
        c = self.carry
        c.retention_checked_cycles.append(c.cycle)
        assert self.dates is not None
        request = RetentionRequest(customer_id=self.customer_id, workflow_id=self.workflow_id,
                                   level=c.level, cycle=c.cycle,
                                   anniversary_at=self.dates.anniversary_at, now=workflow.now())
        check: RetentionResult = await call("check_retention", request, RetentionResult)
        if check.would_drop:
            await call("record_retention_offer", request)
            c.retention_offered_cycles.append(c.cycle)
            c.stage = MembershipStage.retention_offered
            self._send("retention_offer", MessageClass.marketing, {
                "level": c.level, "needed": str(check.needed_minor / 100),
                "currency": CURRENCY, "gift_points": self.policy.retention_gift_points,
                "anniversary_at": self.dates.anniversary_at, "drops_to": check.drops_to})
        self._publish()

    async def _step_anniversary(self, entry: Due) -> None:
        c = self.carry
        offered = c.cycle in c.retention_offered_cycles
        result: LevelResult = await call("set_level", LevelRequest(
            customer_id=self.customer_id, workflow_id=self.workflow_id, level=c.level,
            cycle=c.cycle, offered=offered, now=workflow.now()), LevelResult)
        if result.kept_after_offer and self.policy.retention_gift_points:
            await self._credit(f"retention:{c.cycle}", "gift",
                               self.policy.retention_gift_points, "保级 gift")
            self._send("retention_gift", MessageClass.transactional,
                       {"level": result.level, "points": self.policy.retention_gift_points})
        if result.changed:
            self._send("level_changed", MessageClass.reminder, {
                "previous": result.previous, "level": result.level,
                "discount_percent": result.discount_percent})
        c.level, c.stage, c.cycle = result.level, MembershipStage.member, c.cycle + 1
        self._renew = True
        self._publish()

    async def _step_birthday(self, entry: Due) -> None:
        c, year = self.carry, entry.data
        c.birthday_years = [*c.birthday_years, year][-5:]
        points = self.policy.birthday_gift_points
        if points:
            await self._credit(f"birthday:{year}", "gift", points, f"birthday {year}")
        self._send("birthday", MessageClass.marketing, {"points": points, "year": year})
        await self._refresh_dates()

    async def _step_expiry_reminder(self, entry: Due) -> None:
        c = self.carry
        c.expiry_reminded_for = c.next_expiry_at
        result: PointsResult = await call("expire_points", ExpiryRequest(
            customer_id=self.customer_id, workflow_id=self.workflow_id,
            now=workflow.now()), PointsResult)
        if result.expiring_points:
            self._send("points_expiring", MessageClass.marketing, {
                "points": result.expiring_points, "expires_at": c.next_expiry_at})

    async def _step_points_expiry(self, entry: Due) -> None:
        result: PointsResult = await call("expire_points", ExpiryRequest(
            customer_id=self.customer_id, workflow_id=self.workflow_id,
            now=workflow.now()), PointsResult)
        self.carry.next_expiry_at = result.next_expiry_at
        self._publish()

