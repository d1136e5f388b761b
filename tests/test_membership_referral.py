"""Referrals on the time-skipping server: a new member who names a code at
sign-up is linked; their first paid order rewards both, once, and the
referrer is told; an unknown code is refused with its reason and the
membership stands without it. The programme's figures count the conversion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.loyalty import LoyaltyPolicy
from starter import loyalty
from tests.harness import Harness
from tests.membership_support import buy, join, ledger, membership_worker, status_when


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest_asyncio.fixture
async def harness(env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    async for h in membership_worker(env, sqlite_store, tmp_path,
                                     LoyaltyPolicy(member_weekdays=[])):
        yield h


def kinds(h: Harness, customer_id: str) -> list[tuple[str, int]]:
    return [(r.kind, r.points) for r in ledger(h, customer_id)]


async def test_a_referral_is_rewarded_on_the_referee_s_first_paid_order_once(
        harness: Harness, env: WorkflowEnvironment) -> None:
    start = await env.get_current_time()
    referrer = await join(harness, "alice")
    assert referrer.referral_code and referrer.referral_code.startswith("R")
    referee = await join(harness, "bob", referral_code=referrer.referral_code)
    assert referee.referrer_id == "alice" and referee.rejections == []

    await buy(harness, env, "bob", "B1", "30")
    await status_when(harness, "bob", lambda s: s.referral_rewarded)
    await buy(harness, env, "bob", "B2", "40")
    assert kinds(harness, "bob") == [("earned", 30), ("referral", 200), ("earned", 40)]
    assert kinds(harness, "alice") == [("referral", 500)]
    [told] = harness.touches(recipient_id="alice")
    assert (told.step, told.message_class) == ("referral_reward", "transactional")
    # Alice's own codes are stable: her journey answers the one she was given.
    assert (await loyalty.status(harness.client, "alice")).referral_code == \
        referrer.referral_code

    figures = loyalty.figures(harness.store, start - timedelta(days=1),
                              start + timedelta(days=1))
    assert figures["referral_conversions"] == 1 and figures["joined"] == 2
    assert figures["points_issued"] == 770 and figures["members_per_level"] == {"bronze": 2}


async def test_an_unknown_code_is_refused_and_the_membership_stands(
        harness: Harness, env: WorkflowEnvironment) -> None:
    status = await join(harness, "carol", referral_code="RGUESSED")
    await status_when(harness, "carol", lambda s: bool(s.rejections))
    status = await loyalty.status(harness.client, "carol")
    [rejection] = status.rejections
    assert (rejection.signal, rejection.reason) == ("referral",
                                                    "unknown referral code 'RGUESSED'")
    assert status.referrer_id is None
    await buy(harness, env, "carol", "C1", "10")
    assert kinds(harness, "carol") == [("earned", 10)]
