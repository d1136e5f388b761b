"""CustomerLifecycle on the time-skipping server: dormancy at day 180 (not
179), the second offer at 194, lost at 224, reactivation credit, opt-out,
duplicate orders, customers who never met the rule, tier strategies, the
exclusive advisor's hand-over when they are deactivated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from activities.store.staff import StaffMember, add_staff, deactivate_staff
from domain import schema
from domain.lifecycle import LifecycleStage, Purchase, TierChanged
from tests.harness import Harness, eventually, make_settings, running_worker, seed_staff

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest_asyncio.fixture
async def harness(env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
                  ) -> AsyncIterator[Harness]:
    seed_staff(sqlite_store)
    async with running_worker(env.client, sqlite_store, make_settings(tmp_path)) as h:
        yield h


async def lifecycle_when(h: Harness, customer_id: str, predicate: Any) -> Any:
    latest = None
    for _ in range(400):
        try:
            latest = await h.journeys.customer_status(customer_id)
            if predicate(latest):
                return latest
        except Exception:  # noqa: BLE001 - not started yet
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{customer_id}: condition never held; last {latest}")


async def bought(h: Harness, env: WorkflowEnvironment, customer_id: str, order_id: str,
                 amount: str = "150", category: str = "tea", **extra: Any) -> None:
    before = (await h.journeys.customer_status(customer_id)).orders \
        if h.journeys.started.count(f"customer-{customer_id}") else 0
    at = extra.pop("at", None) or await env.get_current_time()
    await h.journeys.report_purchase(customer_id, Purchase(
        order_id=order_id, amount=Decimal(amount), category=category, at=at, **extra))
    await lifecycle_when(h, customer_id, lambda s: s.orders > before or
                         any(order_id in str(r.payload) for r in s.rejections))


async def test_purchase_creates_the_customer_and_records_the_order_once(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await bought(harness, env, "new-1", "O1", "88.50", "coffee")
    await harness.journeys.report_purchase("new-1", Purchase(order_id="O1", amount=Decimal(
        "88.50"), category="coffee"))
    await bought(harness, env, "new-1", "O2", "20", "tea")
    status = await harness.journeys.customer_status("new-1")
    assert status.orders == 2 and status.stage is LifecycleStage.active
    [customer] = harness.rows(schema.Customer, id="new-1")
    assert customer.order_count == 2 and customer.favourite_category == "coffee"
    assert len(harness.rows(schema.Order, customer_id="new-1")) == 2


async def test_dormant_at_day_180_not_179_then_second_offer_at_194_and_lost_at_224(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await bought(harness, env, "cust-1", "D1", "150", "tea")
    await env.sleep(179 * DAY + 23 * HOUR)
    assert not harness.touches(step="winback_first")
    await env.sleep(2 * HOUR)
    status = await lifecycle_when(harness, "cust-1",
                                  lambda s: s.stage is LifecycleStage.winback_first)
    [first] = await eventually(lambda: harness.touches(step="winback_first", status="sent"))
    assert first.message_class == "marketing"
    [coupon] = harness.rows(schema.CouponRecord, customer_id="cust-1")
    assert coupon.discount_percent == 10 and coupon.code in status.campaign
    [message] = [m for m in harness.outbox_messages() if m["key"] == first.key]
    assert coupon.code in message["body"] and "tea" in message["body"]

    await env.sleep(13 * DAY + 22 * HOUR)  # day 193 + 23 h
    assert not harness.touches(step="winback_second")
    await env.sleep(2 * HOUR)
    await lifecycle_when(harness, "cust-1", lambda s: s.stage is LifecycleStage.winback_second)
    await eventually(lambda: harness.touches(step="winback_second", status="sent"))
    assert {c.discount_percent for c in harness.rows(schema.CouponRecord,
                                                     customer_id="cust-1")} == {10, 20}

    await env.sleep(29 * DAY + 22 * HOUR)  # day 223 + 23 h
    assert (await harness.journeys.customer_status("cust-1")).stage is \
        LifecycleStage.winback_second
    await env.sleep(2 * HOUR)
    await lifecycle_when(harness, "cust-1", lambda s: s.stage is LifecycleStage.lost)
    assert harness.rows(schema.Customer, id="cust-1")[0].lifecycle_state == "lost"
    await env.sleep(400 * DAY)
    assert len([t for t in harness.touches() if t.recipient_id == "cust-1"]) == 2


async def test_a_customer_below_the_rule_is_marked_lost_without_a_message(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await bought(harness, env, "cust-2", "S1", "99.99")  # M < 100
    await env.sleep(180 * DAY + HOUR)
    await lifecycle_when(harness, "cust-2", lambda s: s.stage is LifecycleStage.lost)
    assert not harness.touches(recipient_id="cust-2")


async def test_a_purchase_after_the_offer_reactivates_and_credits_the_campaign(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await bought(harness, env, "cust-1", "R1", "300")
    await env.sleep(180 * DAY + HOUR)
    status = await lifecycle_when(harness, "cust-1",
                                  lambda s: s.stage is LifecycleStage.winback_first)
    code = status.campaign[0]
    await bought(harness, env, "cust-1", "R2", "120", coupon_code=code)
    status = await lifecycle_when(harness, "cust-1", lambda s: s.stage is LifecycleStage.active)
    assert status.credited == 1 and status.campaign == []
    [order] = harness.rows(schema.Order, id="R2")
    [touch] = harness.touches(step="winback_first")
    assert (order.credited_coupon, order.credited_touch) == (code, touch.key)
    [coupon] = harness.rows(schema.CouponRecord, code=code)
    assert coupon.redeemed_order_id == "R2"
    steps = [e.step for e in harness.rows(schema.JourneyEvent, entity_id="cust-1")]
    assert "reactivated" in steps and "dormant" in steps
    # the clock restarted from the new purchase
    assert status.next_step_at == order.at + 180 * DAY


async def test_opt_out_suppresses_the_win_back(harness: Harness,
                                               env: WorkflowEnvironment) -> None:
    await bought(harness, env, "cust-1", "P1", "500")
    await harness.journeys.opt_out("cust-1", "email")
    await eventually(lambda: harness.rows(schema.Consent, subject_id="cust-1"))
    await env.sleep(180 * DAY + HOUR)
    [touch] = await eventually(lambda: harness.touches(step="winback_first",
                                                       status="suppressed"))
    assert touch.reason == "opted out of marketing on email"


async def test_backdated_purchase_older_than_the_window_sends_nothing(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    now = await env.get_current_time()
    await bought(harness, env, "cust-2", "B1", "500", at=now - 200 * DAY)
    status = await lifecycle_when(harness, "cust-2", lambda s: s.stage is LifecycleStage.lost)
    assert status.next_step_at is None
    await env.sleep(30 * DAY)
    assert not harness.touches(recipient_id="cust-2")


async def test_bad_purchases_are_rejected(harness: Harness, env: WorkflowEnvironment) -> None:
    await bought(harness, env, "cust-1", "G1")
    handle = harness.client.get_workflow_handle("customer-cust-1")
    await handle.signal("purchase", Purchase(order_id="G2", amount=Decimal("-1")))
    await handle.signal("purchase", Purchase(order_id="G3", amount=Decimal("5"), currency="USD"))
    await handle.signal("purchase", Purchase(order_id="", amount=Decimal("5")))
    await handle.signal("tier_changed", TierChanged(tier="platinum"))
    status = await lifecycle_when(harness, "cust-1", lambda s: len(s.rejections) == 4)
    reasons = [r.reason for r in status.rejections]
    assert "must be positive" in reasons[0] and "USD is not the store's CNY" in reasons[1]
    assert "order_id is required" in reasons[2] and "unknown tier 'platinum'" in reasons[3]
    assert status.orders == 1


async def test_core_tier_assigns_an_exclusive_advisor_potential_gets_the_coupon(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await bought(harness, env, "cust-1", "T1")
    handle = harness.client.get_workflow_handle("customer-cust-1")
    await handle.signal("tier_changed", TierChanged(tier="core"))
    await lifecycle_when(harness, "cust-1", lambda s: s.tier == "core")
    [customer] = await eventually(lambda: [c for c in harness.rows(schema.Customer, id="cust-1")
                                           if c.advisor_id])
    assert customer.advisor_id == "adv-1"
    await eventually(lambda: harness.touches(step="core_advisor", recipient_id="adv-1"))
    await bought(harness, env, "cust-2", "T2")
    await harness.client.get_workflow_handle("customer-cust-2").signal(
        "tier_changed", TierChanged(tier="potential"))
    await eventually(lambda: harness.touches(step="community_coupon", recipient_id="cust-2"))
    assert harness.rows(schema.CouponRecord, customer_id="cust-2", campaign="community")


async def test_a_tier_change_told_twice_is_acted_on_once(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    await bought(harness, env, "cust-2", "T3")
    handle = harness.client.get_workflow_handle("customer-cust-2")
    # The outbox's dispatch was retried after signalling: change 7 arrives
    # twice, and then an older change (5) late. Signals are acted on in order,
    # so once change 9 shows, the ones before it have been dealt with.
    for tier, change in [("potential", 7), ("potential", 7), ("regular", 5), ("core", 9)]:
        await handle.signal("tier_changed", TierChanged(tier=tier, change=change))
    await lifecycle_when(harness, "cust-2", lambda s: s.tier == "core")
    await eventually(lambda: harness.touches(step="core_advisor"))
    assert len(harness.touches(step="community_coupon", recipient_id="cust-2")) == 1
    assert len(harness.rows(schema.CouponRecord, customer_id="cust-2", campaign="community")) == 1
    # Entering potential again, later, is a new change and gets a new coupon.
    await handle.signal("tier_changed", TierChanged(tier="potential", change=12))
    await lifecycle_when(harness, "cust-2", lambda s: s.tier == "potential")
    await eventually(lambda: len(harness.touches(step="community_coupon",
                                                 recipient_id="cust-2")) == 2)
    assert len(harness.rows(schema.CouponRecord, customer_id="cust-2", campaign="community")) == 2


# -- the exclusive advisor is deactivated ----------------------------------------------


async def core_customer(h: Harness, env: WorkflowEnvironment, customer_id: str,
                        order_id: str) -> str:
    """A customer who bought and was told they are core; returns their advisor."""
    await bought(h, env, customer_id, order_id)
    await h.client.get_workflow_handle(f"customer-{customer_id}").signal(
        "tier_changed", TierChanged(tier="core"))
    [customer] = await eventually(lambda: [c for c in h.rows(schema.Customer, id=customer_id)
                                           if c.advisor_id])
    return customer.advisor_id


def lifecycle_steps(h: Harness, customer_id: str) -> list[str]:
    return [e.step for e in h.rows(schema.JourneyEvent, journey="lifecycle",
                                   entity_id=customer_id)]


async def test_a_deactivated_advisor_hands_the_core_customer_to_the_least_loaded_active_one(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    # An inactive advisor with no customers and the lowest id is never chosen.
    add_staff(harness.store, StaffMember(id="adv-0", name="Advisor Zero", role="advisor",
                                         active=False, chat="adv-0"),
              now=await env.get_current_time())
    assert await core_customer(harness, env, "cust-1", "H1") == "adv-1"

    ids = deactivate_staff(harness.store, "adv-1", now=await env.get_current_time())
    assert ids == ["customer-cust-1"]
    await harness.journeys.tell_staff_deactivated(ids, "adv-1")

    [customer] = await eventually(lambda: [c for c in harness.rows(schema.Customer, id="cust-1")
                                           if c.advisor_id != "adv-1"])
    assert customer.advisor_id == "adv-2"
    [touch] = await eventually(lambda: harness.touches(step="advisor_handover", status="sent"))
    assert (touch.recipient_kind, touch.recipient_id) == ("staff", "adv-2")
    [message] = [m for m in harness.outbox_messages() if m["key"] == touch.key]
    assert "adv-1" in message["body"] and "cust-1" in message["body"]
    [event] = harness.rows(schema.JourneyEvent, entity_id="cust-1", step="advisor_replaced")
    assert event.detail["advisor_id"] == "adv-2"
    assert event.detail["previous_advisor_id"] == "adv-1"
    status = await harness.journeys.customer_status("cust-1")
    assert status.tier == "core" and status.rejections == []
    # The new advisor holds the customer: a deactivation of adv-2 finds them.
    assert deactivate_staff(harness.store, "adv-2", now=await env.get_current_time()) \
        == ["customer-cust-1"]


async def test_a_deactivation_of_someone_else_changes_nothing_and_a_bad_one_is_rejected(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    assert await core_customer(harness, env, "cust-1", "E1") == "adv-1"
    assert deactivate_staff(harness.store, "adv-2", now=await env.get_current_time()) == []
    # Told anyway (a broadcast), then a malformed one and one without a staff_id.
    await harness.journeys.tell_staff_deactivated(["customer-cust-1"], "adv-2")
    handle = harness.client.get_workflow_handle("customer-cust-1")
    await handle.signal("staff_deactivated", "adv-1")
    await handle.signal("staff_deactivated", {"who": "adv-1"})
    # Signals are acted on in order: once this order shows, the ones before it are done.
    await bought(harness, env, "cust-1", "E2")

    status = await harness.journeys.customer_status("cust-1")
    reasons = [r.reason for r in status.rejections]
    assert len(reasons) == 2
    assert "expected a JSON object, got str" in reasons[0]
    assert reasons[1] == "staff_id is required"
    assert [r.reason for r in harness.rows(schema.SignalRejection, entity_id="cust-1")] \
        == reasons
    [customer] = harness.rows(schema.Customer, id="cust-1")
    assert customer.advisor_id == "adv-1"
    assert not [s for s in lifecycle_steps(harness, "cust-1")
                if s in {"advisor_replaced", "advisor_unassigned", "advisor_released"}]
    assert not harness.touches(step="advisor_handover")
    assert not harness.touches(step="advisor_needed")


async def test_with_no_active_advisor_left_the_advisor_is_cleared_and_the_manager_told(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    assert await core_customer(harness, env, "cust-1", "N1") == "adv-1"
    assert deactivate_staff(harness.store, "adv-2", now=await env.get_current_time()) == []
    ids = deactivate_staff(harness.store, "adv-1", now=await env.get_current_time())
    assert ids == ["customer-cust-1"]
    await harness.journeys.tell_staff_deactivated(ids, "adv-1")

    [event] = await eventually(lambda: harness.rows(schema.JourneyEvent, entity_id="cust-1",
                                                    step="advisor_unassigned"))
    assert event.detail["reason"] == "no active advisor is left"
    assert event.detail["advisor_id"] is None
    assert harness.rows(schema.Customer, id="cust-1")[0].advisor_id is None
    [touch] = await eventually(lambda: harness.touches(step="advisor_needed", status="sent"))
    assert touch.recipient_id == "sup-edu"  # adv-1's manager
    assert not harness.touches(step="advisor_handover")
    assert (await harness.journeys.customer_status("cust-1")).rejections == []
    # Nobody holds the customer any more: a later deactivation does not find them.
    assert deactivate_staff(harness.store, "adv-1", now=await env.get_current_time()) == []


async def test_a_customer_no_longer_core_loses_the_deactivated_advisor_without_a_new_one(
    harness: Harness, env: WorkflowEnvironment
) -> None:
    assert await core_customer(harness, env, "cust-2", "L1") == "adv-1"
    # The sweep has since moved them down (regular carries no strategy, so the
    # journey is not told; the store's tier is the newer).
    with harness.store.unit_of_work() as session:
        customer = session.get(schema.Customer, "cust-2")
        assert customer is not None
        customer.tier = "regular"
    ids = deactivate_staff(harness.store, "adv-1", now=await env.get_current_time())
    await harness.journeys.tell_staff_deactivated(ids, "adv-1")

    [event] = await eventually(lambda: harness.rows(schema.JourneyEvent, entity_id="cust-2",
                                                    step="advisor_released"))
    assert event.detail["reason"] == "the customer is no longer core (tier regular)"
    assert harness.rows(schema.Customer, id="cust-2")[0].advisor_id is None
    await bought(harness, env, "cust-2", "L2")  # the hand-over is done before this
    assert not harness.touches(step="advisor_handover")
    assert not harness.touches(step="advisor_needed")
