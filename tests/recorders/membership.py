"""Recordings of the membership journey: a year of it (membership-mem-1:
orders on member day and in the birthday month, a refund, behaviour points, a
grant, a redemption, the birthday gift, the 保级 offer and the anniversary's
continue-as-new) and every signal and update in every shape
(membership-mem-2, with a referral).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path

from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from domain.lifecycle import Purchase
from domain.loyalty import Grant, LoyaltyPolicy, MembershipStatus, Redeem, anniversary
from starter import loyalty
from starter.client import Journeys
from tests.recorders.common import _malformed, _rejected, _when, _worker, fresh, signal_all

SHANGHAI_HOURS = timedelta(hours=8)


def _policy(now: datetime) -> LoyaltyPolicy:
    local = (now + SHANGHAI_HOURS).date()
    return LoyaltyPolicy(member_weekdays=[], member_dates=[local])


async def record_membership_year(env: WorkflowEnvironment, workdir: Path) -> str:
    """A member who joined 300 days ago with a 12,000 order (gold at the first
    anniversary), orders now, a refund, a share, a grant, a redemption; then
    the year on: birthday, the 保级 offer, the anniversary (continue-as-new)."""
    store, settings = fresh(workdir, "crm-membership.db")
    task_queue = "record-membership-mem-1"
    now = await env.get_current_time()
    async with _worker(env, store, settings, task_queue, membership_policy=_policy(now)):
        journeys = Journeys(env.client, task_queue=task_queue)
        local = (now + SHANGHAI_HOURS).date()
        next_month = 1 if local.month == 12 else local.month + 1
        handle = await loyalty.join(env.client, task_queue, "mem-1",
                                    joined_at=now - timedelta(days=300),
                                    birth_date=date(1990, next_month, 9))
        await _when(lambda: loyalty.status(env.client, "mem-1"),
                    lambda s: s.referral_code is not None, "joined")
        for order, amount, at in (("M1", "12000", now - timedelta(days=100)),
                                  ("M2", "88", now), ("M3", "20", now)):
            await journeys.report_purchase("mem-1", Purchase(
                order_id=order, amount=amount, category="tea", at=at))
        await signal_all(handle, [
            ("refund", [{"order_id": "M3", "reason": "returned"}]),
            ("behaviour", [{"kind": "share", "ref": "S1"}]),
        ])
        await loyalty.ask(env.client, "mem-1", "grant_now", Grant(
            points=100, reason="物流延迟补偿", staff_id="rep-a", ref="late-1"))
        await loyalty.ask(env.client, "mem-1", "redeem_now",
                          Redeem(points=50, for_="cash off", ref="X1"))
        await asyncio.sleep(1)
        joined = now - timedelta(days=300)
        await env.sleep(anniversary(joined, 1) - now + timedelta(hours=1))
        await _when(lambda: loyalty.status(env.client, "mem-1"), lambda s: s.cycle == 2,
                    "the anniversary")
        history = await env.client.get_workflow_handle(  # the first year's run
            handle.id, run_id=handle.first_execution_run_id).fetch_history()
    store.dispose()
    return history.to_json()


async def record_membership_every_signal(env: WorkflowEnvironment, workdir: Path) -> str:
    """Every membership signal and update, accepted and refused in every shape;
    a referral rewarded on the first paid order; an unknown referral code."""
    store, settings = fresh(workdir, "crm-membership-every.db")
    task_queue = "record-membership-mem-2"
    now = await env.get_current_time()
    async with _worker(env, store, settings, task_queue, membership_policy=_policy(now)):
        journeys = Journeys(env.client, task_queue=task_queue)
        referrer = await loyalty.join(env.client, task_queue, "mem-0")
        code = (await _when(lambda: loyalty.status(env.client, "mem-0"),
                            lambda s: s.referral_code is not None, "referrer")).referral_code
        handle = await loyalty.join(env.client, task_queue, "mem-2", referral_code=code)
        await journeys.report_purchase("mem-2", Purchase(
            order_id="E1", amount="50", category="tea", at=now))
        await signal_all(handle, [
            ("purchase", [{"order_id": "E1", "amount": "50", "at": now.isoformat()}]),
            ("purchase", [{"order_id": " ", "amount": "10"}]),
            ("purchase", [{"order_id": "E2", "amount": "0"}]),
            ("purchase", [{"order_id": "E3", "amount": "10", "currency": "USD"}]),
            ("purchase", [{"order_id": "E4", "amount": "10",
                           "at": (now + timedelta(days=1)).isoformat()}]),
            ("purchase", [{"order_id": "E5", "amount": "much"}]),
            ("purchase", [{"order_id": "E6", "amount": "10.001"}]),
            ("refund", [{"order_id": "E1"}]),
            ("refund", [{"order_id": "E1"}]),                        # told twice
            ("refund", [{"order_id": "nope"}]),
            ("refund", [{"order_id": ""}]),
            ("behaviour", [{"kind": "check_in", "ref": "C1"}]),
            ("behaviour", [{"kind": "check_in", "ref": "C1"}]),      # told twice
            ("behaviour", [{"kind": "dance", "ref": "D1"}]),
            ("behaviour", [{"kind": "survey", "ref": " "}]),
            ("grant", [{"points": 300, "reason": "late delivery", "staff_id": "rep-a"}]),
            ("grant", [{"points": 0, "reason": "x", "staff_id": "rep-a"}]),
            ("grant", [{"points": 5, "reason": "", "staff_id": "rep-a"}]),
            ("grant", [{"points": 5, "reason": "x", "staff_id": ""}]),
            ("redeem", [{"points": 10, "for": "tea set", "ref": "Y1"}]),
            ("redeem", [{"points": 10, "for": "tea set", "ref": "Y1"}]),  # told twice
            ("redeem", [{"points": 99999, "for": "a car"}]),
            ("redeem", [{"points": 0, "for": "nothing"}]),
            ("redeem", [{"points": 5, "for": ""}]),
            *_malformed("redeem", not_an_object="Y2"),
        ])
        status = await _rejected(handle, MembershipStatus, 20)
        for update, payload in (("redeem_now", Redeem(points=99999, for_="a car")),
                                ("redeem_now", Redeem(points=0, for_="x")),
                                ("grant_now", Grant(points=1, reason="", staff_id="a"))):
            try:
                await loyalty.ask(env.client, "mem-2", update, payload)
            except WorkflowUpdateFailedError:
                pass
        await loyalty.ask(env.client, "mem-2", "redeem_now", Redeem(points=5, for_="cash off"))
        await loyalty.ask(env.client, "mem-2", "grant_now",
                          Grant(points=5, reason="survey", staff_id="rep-a"))
        assert status.referral_rewarded
        await asyncio.sleep(1)
        history = await handle.fetch_history()
        await referrer.terminate("recorded")
    store.dispose()
    return history.to_json()


# The histories this journey's recorders write, by file name (the workflow id).
RECORDINGS = {"membership-mem-1": record_membership_year,
              "membership-mem-2": record_membership_every_signal}
