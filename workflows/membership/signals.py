"""What the membership journey does with each signal: orders, refunds,
behaviour points, grants and redemptions; the referral reward on the first
paid order."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.journeys import Decision
    from domain.loyalty import CURRENCY, Grant, Redeem
    from domain.loyalty_requests import (
        OrderPoints,
        PointsChange,
        PointsResult,
        ReferralResult,
        ReferralReward,
        RefundRequest,
    )
    from domain.messaging import MessageClass, Recipient

from workflows.kit import Inbound, call
from workflows.membership.base import MembershipBase


class MembershipSignals(MembershipBase):
    """The membership's signal handlers."""

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

