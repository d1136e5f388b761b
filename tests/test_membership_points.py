"""MembershipJourney's points on the time-skipping server: member day double,
birthday month triple, both the highest (not six times); a repeated order
earns once; a refund reverses exactly it; behaviour points once per ref;
grants and redemptions through their updates (refused beyond the balance,
with a receipt); bad signals refused with their reason; points expiring at
their instant with a reminder 30 days before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.lifecycle import Purchase
from domain.loyalty import Behaviour, Grant, LoyaltyPolicy, Redeem, Refund
from starter import loyalty
from tests.harness import Harness, refused
from tests.membership_support import (
    DAY,
    balance,
    buy,
    join,
    ledger,
    local_today,
    membership_worker,
    signal,
    skip_to,
    status_when,
)


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest_asyncio.fixture
async def harness(env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    # Today is member day, whatever day the test runs.
    today = local_today(await env.get_current_time())
    policy = LoyaltyPolicy(member_weekdays=[], member_dates=[today])
    async for h in membership_worker(env, sqlite_store, tmp_path, policy):
        yield h


async def test_member_day_doubles_the_birthday_month_triples_and_both_earn_the_highest(
        harness: Harness, env: WorkflowEnvironment) -> None:
    month = local_today(await env.get_current_time()).month
    other = 1 if month != 1 else 2
    await join(harness, "plain", birth_date=date(1990, other, 10))
    await join(harness, "birthday", birth_date=date(1990, month, 10))
    await buy(harness, env, "plain", "P1", "100.50")
    await buy(harness, env, "birthday", "B1", "100.50")
    assert [r.points for r in ledger(harness, "plain")] == [200]
    assert ledger(harness, "plain")[0].reason == "member day"
    [both] = ledger(harness, "birthday")
    assert (both.points, both.reason) == (300, "birthday month")


async def test_a_repeated_order_earns_once_and_a_refund_reverses_it(
        harness: Harness, env: WorkflowEnvironment) -> None:
    await join(harness, "m1")
    await buy(harness, env, "m1", "O1", "10")
    await buy(harness, env, "m1", "O2", "5")
    await harness.journeys.report_purchase("m1", Purchase(
        order_id="O1", amount=Decimal("10"), category="tea"))
    await signal(harness, "m1", "refund", Refund(order_id="O1", reason="returned"))
    await signal(harness, "m1", "refund", Refund(order_id="O1"), changes=False)
    await signal(harness, "m1", "refund", Refund(order_id="nope"))
    rows = [(r.kind, r.points, r.balance_after) for r in ledger(harness, "m1")]
    assert rows == [("earned", 20, 20), ("earned", 10, 30), ("reversed", -20, 10)]
    status = await loyalty.status(harness.client, "m1")
    assert [r.reason for r in status.rejections] == ["order nope earned no points here"]


async def test_behaviour_grants_and_redemption_refused_beyond_the_balance(
        harness: Harness, env: WorkflowEnvironment) -> None:
    await join(harness, "m2")
    await signal(harness, "m2", "behaviour", Behaviour(kind="share", ref="S1"))
    await signal(harness, "m2", "behaviour", Behaviour(kind="share", ref="S1"), changes=False)
    await signal(harness, "m2", "behaviour", Behaviour(kind="dance", ref="D1"))
    granted = await loyalty.ask(harness.client, "m2", "grant_now", Grant(
        points=100, reason="物流延迟补偿", staff_id="rep-a", ref="late-1"))
    assert granted.accepted
    assert await refused(loyalty.ask(harness.client, "m2", "grant_now", Grant(
        points=10, reason=" ", staff_id="rep-a"))) == "a grant needs a reason"
    assert await refused(loyalty.ask(harness.client, "m2", "grant_now", Grant(
        points=10, reason="goodwill", staff_id="someone"))) == (
        "someone is not an active staff member: only staff grant points")
    assert balance(harness, "m2") == 150
    too_much = await refused(loyalty.ask(harness.client, "m2", "redeem_now",
                                         Redeem(points=151, for_="tea set")))
    assert too_much == "redemption refused: 151 points asked, the balance is 150"
    receipt = await loyalty.ask(harness.client, "m2", "redeem_now",
                                Redeem(points=120, for_="cash off", ref="R1"))
    assert receipt.reason == "receipt redeem:R1; balance 30"
    assert balance(harness, "m2") == 30
    status = await loyalty.status(harness.client, "m2")
    assert [r.reason for r in status.rejections] == [
        "unknown behaviour 'dance': expected one of check_in, share, survey",
        "someone is not an active staff member: only staff grant points",
        "redemption refused: 151 points asked, the balance is 150"]
    assert [t.step for t in harness.touches(recipient_id="m2")] == ["redeem_receipt"]


async def test_points_expire_at_their_instant_with_a_reminder_30_days_before(
        harness: Harness, env: WorkflowEnvironment) -> None:
    await join(harness, "m3")
    await buy(harness, env, "m3", "O1", "7")
    [credit] = ledger(harness, "m3")
    expiry = credit.expires_at
    assert expiry is not None and expiry > await env.get_current_time() + 365 * DAY
    await status_when(harness, "m3", lambda s: s.next_expiry_at == expiry)
    await skip_to(env, expiry - timedelta(days=30, minutes=1))
    await status_when(harness, "m3", lambda s: s.cycle >= 2)
    assert harness.touches(recipient_id="m3", step="points_expiring") == []
    await skip_to(env, expiry - timedelta(days=30) + timedelta(minutes=1))
    await status_when(harness, "m3", lambda s: harness.touches(
        recipient_id="m3", step="points_expiring"))
    await skip_to(env, expiry - timedelta(seconds=1))
    assert balance(harness, "m3") == 14
    await skip_to(env, expiry + timedelta(seconds=1))
    await status_when(harness, "m3", lambda s: s.next_expiry_at is None)
    expired = ledger(harness, "m3")[-1]
    assert (expired.kind, expired.points, expired.at, expired.balance_after) == (
        "expired", -14, expiry, 0)
    assert len(harness.touches(recipient_id="m3", step="points_expiring")) == 1
