"""A campaign with a hold-out and two variants on the time-skipping server:
the e-mail to every customer outside the hold-out, the SMS 3 days later only
to those who did not buy, conversions attributed to the right variant, and a
customer never in two runs; the lift figure against a hand computation; a
declaration refused with the reason."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.campaigns import define_campaign, launch, results, set_status
from activities.segments import define_segment, refresh_segment
from activities.store import Store
from domain import schema
from domain.campaigns import (
    HOLDOUT,
    ArmResult,
    CampaignError,
    CampaignStage,
    CampaignStatus,
    arm,
    check_campaign,
    lift,
)
from domain.segments import SegmentDefinition, SegmentPolicy
from tests.harness import Harness, eventually, make_settings, running_worker, seed_staff

DAY = timedelta(days=1)
CUSTOMERS = [f"c{n:02d}" for n in range(16)]
SPRING = {
    "name": "spring", "segment": "audience", "holdout": 0.25,
    "variants": [{"name": "a"}, {"name": "b", "templates": {"offer": "offer_b"}}],
    # The seed's sequence: e-mail, then SMS 3 days later if no purchase.
    "steps": [{"message": {"channel": "email", "template": "offer"}},
              {"wait_for": {"event": "purchase", "days": 3}},
              {"message": {"channel": "sms", "template": "offer_reminder"}}],
}


@pytest_asyncio.fixture
async def harness(time_skipping_env: WorkflowEnvironment, sqlite_store: Store,
                  tmp_path: Path) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    with sqlite_store.unit_of_work() as s:
        for customer in CUSTOMERS:
            s.add(schema.Customer(id=customer, name=customer, locale="en",
                                  email=f"{customer}@example.com",
                                  phone=f"+86138000000{customer[1:]}",
                                  created_at=datetime(2026, 1, 1, tzinfo=UTC)))
    now = datetime.now(UTC)
    define_segment(sqlite_store, SegmentPolicy(), SegmentDefinition(
        name="audience", rule={"all": [{"field": {"name": "locale", "equals": "en"}},
                                       {"not": {"field": {"name": "timezone",
                                                          "equals": "Europe/London"}}}]}),
        now=now)
    refresh_segment(sqlite_store, SegmentPolicy(), "audience", now=now)
    async with running_worker(time_skipping_env.client, sqlite_store,
                              make_settings(tmp_path)) as h:
        yield h


def buy(store: Store, customer: str, order_id: str, at: datetime, amount_minor: int) -> None:
    with store.unit_of_work() as s:
        s.add(schema.Order(id=order_id, customer_id=customer, amount_minor=amount_minor,
                           currency="CNY", category="tea", at=at, recorded_at=at))


async def test_hold_out_variants_the_sms_only_to_non_buyers_and_conversions_by_variant(
        harness: Harness, time_skipping_env: WorkflowEnvironment) -> None:
    env, h = time_skipping_env, harness
    definition = define_campaign(h.store, SPRING, now=datetime.now(UTC))
    arms = {c: arm(definition, c) for c in CUSTOMERS}
    assert set(arms.values()) == {HOLDOUT, "a", "b"}
    started = await env.get_current_time()
    counts = await launch(h.store, h.client, task_queue=h.task_queue, name="spring",
                          now=started)
    assert counts == {a: list(arms.values()).count(a) for a in set(arms.values())}
    runs = [c for c in CUSTOMERS if arms[c] != HOLDOUT]
    h.journeys.started += [f"campaign-spring-{c}" for c in runs]
    recorded = {m.customer_id: m.arm for m in h.rows(schema.CampaignMember)}
    assert recorded == arms  # the hold-out recorded too, with no run

    emails = await eventually(lambda: len(h.touches(step="0_email", status="sent")) == len(runs)
                              and h.touches(step="0_email", status="sent"), timeout=60)
    assert {t.recipient_id for t in emails} == set(runs)
    assert {t.template for t in emails if arms[t.recipient_id] == "b"} == {"offer_b"}
    assert {t.template for t in emails if arms[t.recipient_id] == "a"} == {"offer"}

    # A day on, two of variant a, one of b and one of the hold-out buy.
    await env.sleep(DAY)
    buyers = ([c for c in runs if arms[c] == "a"][:2] + [c for c in runs if arms[c] == "b"][:1])
    holdout_buyer = next(c for c in CUSTOMERS if arms[c] == HOLDOUT)
    now = await env.get_current_time()
    for n, customer in enumerate([*buyers, holdout_buyer]):
        buy(h.store, customer, f"o{n}", now, 10000 * (n + 1))
    # Launching again puts no one in a second run.
    assert await launch(h.store, h.client, task_queue=h.task_queue, name="spring",
                        now=now) == {}
    assert len(h.rows(schema.CampaignMember)) == len(CUSTOMERS)

    await env.sleep(2 * DAY - timedelta(minutes=5))
    assert not h.touches(step="2_sms")
    await env.sleep(timedelta(minutes=10))
    non_buyers = set(runs) - set(buyers)
    sms = await eventually(lambda: len(h.touches(step="2_sms", status="sent")) ==
                           len(non_buyers) and h.touches(step="2_sms", status="sent"),
                           timeout=60)
    assert {t.recipient_id for t in sms} == non_buyers
    assert all(t.channel == "sms" for t in sms)
    sent = {t.recipient_id: t.sent_at for t in emails}
    assert all(t.sent_at - sent[t.recipient_id] >= 3 * DAY for t in sms)  # type: ignore[operator]
    for customer in buyers:
        status = await h.client.get_workflow_handle(f"campaign-spring-{customer}",
                                                    result_type=CampaignStatus).result()
        assert (status.stage, status.converted_by) == (CampaignStage.converted,
                                                       f"o{buyers.index(customer)}")

    by_arm = {r.arm: r for r in results(h.store, "spring")}
    assert (by_arm["a"].converted, by_arm["b"].converted, by_arm[HOLDOUT].converted) == (2, 1, 1)
    assert by_arm["a"].revenue == {"CNY": Decimal("300.00")}  # 100.00 + 200.00
    assert by_arm[HOLDOUT].revenue == {"CNY": Decimal("400.00")}


async def test_a_paused_campaign_holds_its_messages_until_resumed(
        harness: Harness, time_skipping_env: WorkflowEnvironment) -> None:
    env, h = time_skipping_env, harness
    define_campaign(h.store, {**SPRING, "name": "paused", "holdout": 0,
                              "steps": [{"wait": {"days": 1}}, *SPRING["steps"]]},
                    now=datetime.now(UTC))
    await launch(h.store, h.client, task_queue=h.task_queue, name="paused",
                 now=await env.get_current_time())
    h.journeys.started += [f"campaign-paused-{c}" for c in CUSTOMERS]
    set_status(h.store, "paused", "paused", now=datetime.now(UTC))
    await env.sleep(DAY + timedelta(hours=1))
    assert not h.touches(step="1_email")
    set_status(h.store, "paused", "active", now=datetime.now(UTC))
    await env.sleep(timedelta(hours=6))  # the next time a held run asks
    await eventually(lambda: len(h.touches(step="1_email", status="sent")) == len(CUSTOMERS),
                     timeout=60)


def test_the_lift_matches_the_hand_computation() -> None:
    """Variant 30 of 200 (15 %), hold-out 10 of 100 (10 %): lift 5 points, Wald
    standard error sqrt(.15 × .85 / 200 + .1 × .9 / 100) = 0.03921, 95 % CI
    5 ± 1.96 × 3.921 points, p = 0.202."""
    found = lift(ArmResult("a", 200, 30), ArmResult(HOLDOUT, 100, 10))
    assert found is not None
    se = math.sqrt(0.15 * 0.85 / 200 + 0.1 * 0.9 / 100)
    assert found.difference == pytest.approx(0.05)
    assert (found.low, found.high) == (pytest.approx(0.05 - 1.959964 * se, abs=1e-6),
                                       pytest.approx(0.05 + 1.959964 * se, abs=1e-6))
    assert found.p_value == pytest.approx(math.erfc(0.05 / se / math.sqrt(2)), abs=1e-9)
    assert round(found.p_value, 3) == 0.202
    assert lift(ArmResult("a", 0, 0), ArmResult(HOLDOUT, 5, 1)) is None


@pytest.mark.parametrize(("change", "reason"), [
    ({"steps": [{"message": {"channel": "fax", "template": "offer"}}]},
     "steps[0].message.channel: one of email, sms, chat, not 'fax'"),
    ({"steps": [{"wait_for": {"event": "click", "days": 3}}]},
     "steps[0].wait_for.event: one of purchase, reply"),
    ({"entry": "daily"}, "entry: Input should be 'launch' or 'on_entry'"),
    ({"audience": {"segment": "audience", "entry": "on_entry"}},
     "audience: give the segment and entry there or beside it, not both"),
    ({"coupon": {"percent": 0}}, "coupon.percent: Input should be greater than or equal to 1"),
    ({"holdout": 1.5}, "holdout: Input should be less than 1"),
    ({"variants": [{"name": "holdout"}]}, "variants: names are unique and not 'holdout'"),
])
def test_a_declaration_that_cannot_run_is_refused_with_the_reason(
        change: dict[str, object], reason: str) -> None:
    with pytest.raises(CampaignError) as refused:
        check_campaign({**SPRING, **change})
    assert str(refused.value) == reason
