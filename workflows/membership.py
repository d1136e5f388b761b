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

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import pydantic

    from domain.journeys import Decision
    from domain.loyalty import (
        CURRENCY,
        JOURNEY,
        Behaviour,
        DatesRequest,
        Enrolment,
        EnrolRequest,
        ExpiryRequest,
        Grant,
        LevelRequest,
        LevelResult,
        LoyaltyPolicy,
        MemberPurchase,
        MembershipCarry,
        MembershipDates,
        MembershipInput,
        MembershipStage,
        MembershipStatus,
        OrderPoints,
        PointsChange,
        PointsResult,
        Redeem,
        ReferralResult,
        ReferralReward,
        Refund,
        RefundRequest,
        RetentionRequest,
        RetentionResult,
    )
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
    refusal,
    span,
    start_input,
    upsert_search_attributes,
)


def steps(policy: LoyaltyPolicy) -> dict[str, WaitUntil]:
    return {
        "retention_offer": WaitUntil(
            "retention_offer", "保级 retention offer to a member who would drop a level",
            fact=f"{span(policy.retention_before)} before the anniversary"),
        "anniversary": WaitUntil("anniversary", "level set for the next year",
                                 fact="the membership anniversary"),
        "birthday": WaitUntil("birthday", "birthday greeting and gift, once a year",
                              fact="the birthday month's first day", local_time=True),
        "expiry_reminder": WaitUntil(
            "expiry_reminder", "points expiry reminder",
            fact=f"{span(policy.expiry_reminder_before)} before points expire"),
        "points_expiry": WaitUntil("points_expiry", "points expire",
                                   fact="the end of the year after they were earned",
                                   local_time=True),
    }


def plan(policy: LoyaltyPolicy | None = None) -> Plan:
    """Points earned, redeemed and expiring; 30 days before the anniversary the
    保级 offer to a member who would drop a level; the level set at the
    anniversary; the birthday gift once a year."""
    policy = policy or LoyaltyPolicy()
    stage = MembershipStage
    return Plan(
        journey=JOURNEY,
        parts=tuple(steps(policy).values()),
        start=stage.member,
        transitions=moves(
            (stage.member, "retention_offer", stage.retention_offered),
            ((stage.member, stage.retention_offered), "anniversary", stage.member),
        ),
        notes=("one membership year per run, continuing as new at the anniversary",),
    )


@workflow.defn(name="MembershipJourney", failure_exception_types=[pydantic.ValidationError])
class MembershipJourney(Journey):
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
        self.dates: MembershipDates | None = None
        self.referral_code: str | None = None
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
        upsert_search_attributes({CRM_JOURNEY: JOURNEY, CRM_CUSTOMER_ID: self.customer_id})
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

    # -- the clock ---------------------------------------------------------------------

    def _agenda(self) -> Agenda:
        c, d, part = self.carry, self.dates, steps(self.policy)
        if d is None:
            return Agenda()
        entries = [*part["anniversary"].entries_at(d.anniversary_at),
                   *part["retention_offer"].entries_at(self._retention_at())]
        if d.birthday_at is not None and d.birthday_year not in c.birthday_years:
            entries += part["birthday"].entries_at(d.birthday_at, data=d.birthday_year)
        if c.next_expiry_at is not None:
            if c.expiry_reminded_for != c.next_expiry_at:
                entries += [replace(e, void_after=c.next_expiry_at) for e in
                            part["expiry_reminder"].entries_at(
                                c.next_expiry_at - self.policy.expiry_reminder_before)]
            entries += part["points_expiry"].entries_at(c.next_expiry_at)
        return Agenda.of(entries)

    def _retention_at(self) -> datetime | None:
        c, d = self.carry, self.dates
        if d is None or c.cycle in c.retention_checked_cycles:
            return None
        return d.anniversary_at - self.policy.retention_before

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

    # -- acting on signals ---------------------------------------------------------------

    async def _on_purchase(self, item: Inbound) -> Decision:
        c, p = self.carry, item.payload
        if not p.order_id.strip():
            return Decision(accepted=False, reason="order_id is required")
        if p.amount <= 0:
            return Decision(accepted=False, reason=f"amount {p.amount} must be positive")
        if p.currency and p.currency.upper() != CURRENCY:
            return Decision(accepted=False,
                            reason=f"currency {p.currency} is not the programme's {CURRENCY}")
        if p.at is not None and p.at > item.received_at + timedelta(minutes=5):
            return Decision(accepted=False,
                            reason=f"purchase time {p.at.isoformat()} is in the future")
        result: PointsResult = await call("earn_for_order", OrderPoints(
            customer_id=self.customer_id, workflow_id=self.workflow_id, purchase=p,
            now=item.received_at), PointsResult)
        if result.duplicate:
            return Decision(accepted=True, reason="order already recorded")
        self._points_changed(result)
        if result.first_paid_order and c.referrer_id and not c.referral_rewarded:
            c.referral_rewarded = True
            reward: ReferralResult = await call("reward_referral", ReferralReward(
                referee_id=self.customer_id, referrer_id=c.referrer_id, order_id=p.order_id,
                workflow_id=self.workflow_id, now=workflow.now()), ReferralResult)
            if reward.rewarded:
                self.messenger.send(
                    step="referral_reward", message_class=MessageClass.transactional,
                    recipient=Recipient(kind="customer", id=c.referrer_id),
                    entity_kind=self.entity_kind, entity_id=c.referrer_id,
                    facts={"points": reward.referrer_points, "referee": self.customer_id})
        return Decision(accepted=True, reason=f"{result.points} points")

    async def _on_refund(self, item: Inbound) -> Decision:
        refund = item.payload
        if not refund.order_id.strip():
            return Decision(accepted=False, reason="order_id is required")
        result: PointsResult = await call("reverse_order", RefundRequest(
            customer_id=self.customer_id, refund=refund, now=item.received_at), PointsResult)
        if result.refused:
            return Decision(accepted=False, reason=result.refused)
        if result.duplicate:
            return Decision(accepted=True, reason="refund already recorded")
        self._points_changed(result)
        return Decision(accepted=True, reason=f"{-result.points} points reversed")

    async def _on_behaviour(self, item: Inbound) -> Decision:
        b = item.payload
        points = self.policy.behaviour_points.get(b.kind)
        if not points:
            return Decision(accepted=False, reason=f"unknown behaviour {b.kind!r}: expected one "
                            "of " + ", ".join(sorted(self.policy.behaviour_points)))
        if not b.ref.strip():
            return Decision(accepted=False, reason="ref is required (the share, check-in or "
                            "survey id)")
        return await self._credit(f"{b.kind}:{b.ref}", "behaviour", points, b.kind, b.ref)

    async def _on_grant(self, item: Inbound) -> Decision:
        g = item.payload
        if problem := self._grant_problem(g):
            return Decision(accepted=False, reason=problem)
        ref = g.ref.strip() or str(self._count("grant"))
        return await self._credit(f"grant:{ref}", "granted", g.points,
                                  f"{g.reason} (by {g.staff_id})", g.staff_id)

    async def _on_redeem(self, item: Inbound) -> Decision:
        r = item.payload
        if problem := self._redeem_problem(r):
            return Decision(accepted=False, reason=problem)
        ref = r.ref.strip() or str(self._count("redemption"))
        result: PointsResult = await call("change_points", PointsChange(
            customer_id=self.customer_id, key=f"redeem:{ref}", kind="redeemed",
            points=r.points, reason=r.for_, source=ref, now=workflow.now()), PointsResult)
        if result.refused:
            return Decision(accepted=False, reason=f"redemption refused: {result.refused}")
        if not result.duplicate:
            self._points_changed(result)
            self._send("redeem_receipt", MessageClass.transactional, {
                "receipt": result.receipt, "points": r.points, "redeemed_for": r.for_,
                "balance": result.balance})
        return Decision(accepted=True, reason=f"receipt {result.receipt}; "
                        f"balance {result.balance}")

    async def _on_staff_deactivated(self, item: Inbound) -> Decision | None:
        if rejected := self._nobody_named(item):
            return rejected
        return None  # staff hold no role in a membership

    def _grant_problem(self, g: Grant) -> str | None:
        if g.points <= 0:
            return f"points {g.points} must be positive"
        if not g.reason.strip():
            return "a grant needs a reason"
        if not g.staff_id.strip():
            return "staff_id is required (who grants)"
        return None

    def _redeem_problem(self, r: Redeem) -> str | None:
        if r.points <= 0:
            return f"points {r.points} must be positive"
        if not r.for_.strip():
            return "for is required (the goods, service or cash off redeemed)"
        return None

    # -- small helpers -------------------------------------------------------------------

    async def _credit(self, key: str, kind: str, points: int, reason: str,
                      source: str = "") -> Decision:
        result: PointsResult = await call("change_points", PointsChange(
            customer_id=self.customer_id, key=key, kind=kind, points=points, reason=reason,
            source=source, now=workflow.now()), PointsResult)
        if result.refused:
            return Decision(accepted=False, reason=result.refused)
        if result.duplicate:
            return Decision(accepted=True, reason="already recorded")
        self._points_changed(result)
        return Decision(accepted=True, reason=f"{points} points")

    def _points_changed(self, result: PointsResult) -> None:
        self.carry.next_expiry_at = result.next_expiry_at
        self._publish()

    async def _refresh_dates(self) -> None:
        c = self.carry
        self.dates = await call("membership_dates", DatesRequest(
            customer_id=self.customer_id, joined_at=c.joined_at, cycle=c.cycle,
            birthday_years=c.birthday_years, now=workflow.now()), MembershipDates)
        if self.start.carry is None and c.next_expiry_at is None:
            c.next_expiry_at = self.dates.next_expiry_at

    def _history_full(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or \
            info.get_current_history_length() >= self.policy.max_history_events

    def _send(self, step: str, message_class: MessageClass, facts: dict[str, Any]) -> None:
        self.messenger.send(step=step, message_class=message_class,
                            recipient=Recipient(kind="customer", id=self.customer_id),
                            entity_kind=self.entity_kind, entity_id=self.customer_id,
                            facts=facts)

    def _publish(self) -> None:
        c = self.carry
        upsert_search_attributes({CRM_STAGE: c.stage.value})
        lines = [f"**Member {self.customer_id}** — {c.level}, year {c.cycle} "
                 f"(`{c.stage.value}`)"]
        if nxt := self._agenda().next():
            lines.append(f"next: {nxt.summary}, at {nxt.at.isoformat()}")
        workflow.set_current_details("\n\n".join(lines))
