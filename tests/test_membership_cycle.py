"""MembershipJourney's year on the time-skipping server: the level set at the
anniversary from the trailing year's spend (and the member told of a change),
the 保级 offer 30 days before the next anniversary only to a member whose
spend would drop them a level, once; the birthday gift once a year, even when
the anniversary's continue-as-new falls in the birthday month's first days."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.loyalty import LoyaltyPolicy, anniversary
from starter import loyalty
from tests.harness import Harness
from tests.membership_support import (
    DAY,
    SHANGHAI,
    buy,
    first_of_next_month,
    join,
    ledger,
    membership_worker,
    skip_to,
    status_when,
)

HOUR = timedelta(hours=1)


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest_asyncio.fixture
async def harness(env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    async for h in membership_worker(env, sqlite_store, tmp_path,
                                     LoyaltyPolicy(member_weekdays=[])):
        yield h


def steps(h: Harness, customer_id: str) -> list[str]:
    return [t.step for t in h.touches(recipient_id=customer_id)
            if t.step in ("retention_offer", "level_changed", "retention_gift", "birthday")]


async def test_the_retention_offer_only_to_a_member_who_would_drop_once_then_the_level_set(
        harness: Harness, env: WorkflowEnvironment) -> None:
    now = await env.get_current_time()
    joined = now - 300 * DAY
    for member in ("drops", "keeps"):
        await join(harness, member, joined_at=joined)
        await buy(harness, env, member, f"{member}-1", "12000", at=now - 100 * DAY)
    first, second = anniversary(joined, 1), anniversary(joined, 2)

    await skip_to(env, first + HOUR)
    for member in ("drops", "keeps"):
        status = await status_when(harness, member, lambda s: s.cycle == 2)
        assert (status.level, status.discount_percent) == ("gold", 20)
        assert steps(harness, member) == ["level_changed"]
    await buy(harness, env, "keeps", "keeps-2", "10000")

    await skip_to(env, second - timedelta(days=30) - HOUR)
    assert steps(harness, "drops") == ["level_changed"]
    await skip_to(env, second - timedelta(days=30) + HOUR)
    offered = await status_when(harness, "drops", lambda s: s.stage.value == "retention_offered")
    assert offered.retention_offer_at is None  # asked once this year
    [offer] = harness.touches(recipient_id="drops", step="retention_offer")
    assert offer.message_class == "marketing"
    keeps = await status_when(harness, "keeps", lambda s: s.retention_offer_at is None)
    assert keeps.stage.value == "member" and steps(harness, "keeps") == ["level_changed"]

    await skip_to(env, second + HOUR)
    dropped = await status_when(harness, "drops", lambda s: s.cycle == 3)
    assert (dropped.level, dropped.discount_percent, dropped.stage.value) == ("bronze", 0,
                                                                              "member")
    assert steps(harness, "drops") == ["level_changed", "retention_offer", "level_changed"]
    kept = await status_when(harness, "keeps", lambda s: s.cycle == 3)
    assert kept.level == "gold" and steps(harness, "keeps") == ["level_changed"]
    [stored] = harness.rows(schema.LoyaltyMember,
                            customer_id="drops")
    assert (stored.level, stored.discount_percent) == ("bronze", 0)


async def test_the_birthday_gift_once_a_year_across_continue_as_new(
        harness: Harness, env: WorkflowEnvironment) -> None:
    greeting = first_of_next_month(await env.get_current_time())
    month = greeting.astimezone(SHANGHAI).month
    # The anniversary, and with it the next run, two days into the birthday month.
    joined = anniversary(greeting + 2 * DAY, -1)
    await join(harness, "bday", joined_at=joined, birth_date=date(1991, month, 20))
    await skip_to(env, greeting - HOUR)
    assert steps(harness, "bday") == []
    await skip_to(env, greeting + HOUR)
    await status_when(harness, "bday", lambda s: steps(harness, "bday") == ["birthday"])
    await skip_to(env, greeting + 2 * DAY + HOUR)
    status = await status_when(harness, "bday", lambda s: s.cycle == 2)
    year = greeting.astimezone(SHANGHAI).year
    assert status.runs == 2 and status.birthday_at == datetime(
        year + 1, month, 1, 10, tzinfo=SHANGHAI).astimezone(UTC)
    await skip_to(env, greeting + 7 * DAY)
    assert steps(harness, "bday") == ["birthday"]
    await skip_to(env, status.birthday_at + HOUR)
    await status_when(harness, "bday", lambda s: len(steps(harness, "bday")) == 2)
    gifts = [(r.kind, r.points, r.source) for r in ledger(harness, "bday") if r.kind == "gift"]
    assert len(gifts) == 2 and {g[1] for g in gifts} == {200}


async def test_a_member_who_takes_up_the_offer_keeps_the_level_and_gets_the_gift(
        harness: Harness, env: WorkflowEnvironment) -> None:
    now = await env.get_current_time()
    joined = now - 300 * DAY
    await join(harness, "taker", joined_at=joined)
    await buy(harness, env, "taker", "T-1", "12000", at=now - 100 * DAY)
    second = anniversary(joined, 2)
    await skip_to(env, second - timedelta(days=30) + HOUR)
    await status_when(harness, "taker", lambda s: s.stage.value == "retention_offered")
    await buy(harness, env, "taker", "T-2", "10000")
    await skip_to(env, second + HOUR)
    kept = await status_when(harness, "taker", lambda s: s.cycle == 3)
    assert (kept.level, kept.stage.value) == ("gold", "member")
    assert steps(harness, "taker") == ["level_changed", "retention_offer", "retention_gift"]
    gift = [r for r in ledger(harness, "taker") if r.kind == "gift"]
    assert [(g.points, g.reason) for g in gift] == [(500, "保级 gift")]
    figures = loyalty.figures(harness.store, now, second + DAY)
    assert (figures["retention_offers"], figures["retention_taken_up"]) == (1, 1)
