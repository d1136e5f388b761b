"""The demo: staff and a handful of leads, driven through every turn of the lead
journey with time sped up, so a newcomer sees it all within two minutes in the
Temporal UI and in the outbox; the converted lead's opportunity goes on to a
won deal, its contract, onboarding and first payment.

With the default scale a day lasts five seconds: the 24-hour first touch is
5 s, the 3-day follow-up 15 s, and a lead nobody follows up goes stale after
five missed follow-ups, about 80 s in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from rich.console import Console
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from activities.store import Store
from activities.store.staff import StaffMember, add_staff
from domain.leads import Convert, LeadInput, LeadStage, LogContact
from domain.onboarding import Delivered, GroupReady
from domain.opportunities import Advance, SendQuote, Win, WinContract
from domain.payments import RecordPayment
from starter.client import Journeys
from starter.opportunities import Opportunities

DEMO_TIME_SCALE = 17280.0  # one day in five seconds
T = TypeVar("T")

STAFF = [
    StaffMember(
        id="mgr-zhang",
        name="张经理",
        role="manager",
        regions=["east", "north"],
        chat="mgr-zhang",
        email="zhang.manager@example.com",
    ),
    StaffMember(
        id="rep-li",
        name="李娜",
        role="rep",
        regions=["east"],
        product_lines=["erp", "crm"],
        manager_id="mgr-zhang",
        seniority=5,
        chat="rep-li",
        email="li.na@example.com",
    ),
    StaffMember(
        id="rep-wang",
        name="王强",
        role="rep",
        regions=["east"],
        product_lines=["erp", "crm"],
        manager_id="mgr-zhang",
        seniority=3,
        chat="rep-wang",
        email="wang.qiang@example.com",
    ),
    StaffMember(
        id="rep-zhao",
        name="赵磊",
        role="rep",
        regions=["east"],
        product_lines=["erp", "crm"],
        manager_id="mgr-zhang",
        seniority=1,
        chat="rep-zhao",
        email="zhao.lei@example.com",
    ),
]


async def _answered(query: Callable[[], Awaitable[T]], *, within: float = 60.0) -> T:
    """A journey's answer once it has one (it is being started by another)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await query()
        except RPCError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def deal_to_cash(journeys: Journeys, opportunity_id: str, *, out: Console,
                       run: str) -> None:
    """The converted lead's opportunity from needs analysis to its first
    payment: proposal and the quote, negotiation, won (the contract, its payment
    journey and onboarding), the service group and delivery, the 30 % deposit."""
    pipeline = Opportunities(journeys.client, task_queue=journeys.task_queue)
    try:
        opened = await _answered(lambda: pipeline.status(opportunity_id))
    except RPCError:
        out.print(f"  opportunity-{opportunity_id}: not started (the conversion was refused?)")
        return
    out.print(f"  opportunity-{opportunity_id}: {opened.stage.value}, owner {opened.owner_id}")
    await pipeline.advance(opportunity_id, Advance(stage="proposal", note="需求调研完成"))
    await pipeline.send_quote(opportunity_id, SendQuote(amount=Decimal("360000")))
    await pipeline.advance(opportunity_id, Advance(stage="negotiation", note="报价已接受"))
    await pipeline.win(opportunity_id, Win(contract=WinContract(amount=Decimal("360000"))))
    out.print(f"  opportunity-{opportunity_id}: proposal, quote sent, negotiation, won")
    contract = await _answered(lambda: journeys.contract_status(opportunity_id))
    while not contract.milestones:  # the journey is recording the contract
        await asyncio.sleep(0.1)
        contract = await journeys.contract_status(opportunity_id)
    out.print(f"  contract-{opportunity_id}: signed, {len(contract.milestones)} milestones; "
              f"onboarding-{opportunity_id} started")
    onboarding = journeys.client.get_workflow_handle(f"onboarding-{opportunity_id}")
    await _answered(lambda: onboarding.query("status"))
    await onboarding.signal("group_ready", GroupReady(link=f"https://work.weixin.qq.com/g/{run}"))
    await onboarding.signal("delivered", Delivered(by=opened.owner_id, note="最小可用版本上线"))
    out.print(f"  onboarding-{opportunity_id}: service group ready, first version delivered")
    deposit = contract.milestones[0].amount
    answer = await journeys.record_payment(opportunity_id, RecordPayment(
        amount=deposit, reference=f"DEMO-{run}"))
    out.print(f"  contract-{opportunity_id}: first payment {deposit} "
              f"{'received' if answer.accepted else 'refused'}")


def seed_demo_staff(store: Store) -> None:
    for member in STAFF:
        add_staff(store, member, now=datetime.now(UTC))


async def run_demo(
    journeys: Journeys,
    store: Store,
    *,
    console: Console | None = None,
    seconds_per_day: float = 86400 / DEMO_TIME_SCALE,
) -> None:
    out = console or Console()
    seed_demo_staff(store)
    run = datetime.now(UTC).strftime("%H%M%S")
    day = seconds_per_day

    def lead(n: int, name: str, **extra: object) -> LeadInput:
        values: dict[str, object] = {
            "lead_id": f"D{run}-{n}",
            "name": name,
            "region": "east",
            "product_line": "erp",
            "source": "web_form",
            "email": f"demo.{run}.{n}@example.com",
            "need": "三个工厂的生产排程和库存管理",
        }
        values.update(extra)
        return LeadInput.model_validate(values)

    async def owner(lead_id: str) -> str | None:
        for _ in range(100):
            status = await journeys.lead_status(lead_id)
            if status.stage is not LeadStage.new:
                return status.owner_id
            await asyncio.sleep(0.1)
        return None

    async def after(seconds: float, action: Callable[[], Awaitable[object]]) -> None:
        await asyncio.sleep(seconds)
        await action()

    async def contact(lead_id: str, note: str) -> None:
        # The owner read a moment ago may just have been replaced (a missed
        # first touch reassigns the lead): the new owner makes the call.
        for _ in range(3):
            owner_id = await owner(lead_id)
            if not owner_id:
                return
            try:
                answer = await journeys.log_contact(
                    lead_id, LogContact(owner_id=owner_id, channel="phone", note=note))
            except WorkflowUpdateFailedError as refused:
                reason = getattr(refused.cause, "message", str(refused))
                if "does not own" in reason:
                    continue
                out.print(f"  {lead_id}: {owner_id}'s contact refused ({reason})")
                return
            except RPCError as ended:  # the journey completed while the call was made
                out.print(f"  {lead_id}: {owner_id}'s contact not taken ({ended})")
                return
            out.print(f"  {lead_id}: {owner_id} logged a contact "
                      f"(next follow-up due {answer.due_at})")
            return

    converting = lead(1, "陈静", phone="+8613800138001", company="星辰制造有限公司")
    escalating = lead(2, "刘洋", phone="+8613800138002")
    going_stale = lead(3, "周敏", phone="+8613800138003", product_line="crm")
    duplicate = lead(
        4,
        "陈静（展会）",
        phone="138 0013 8001",
        source="trade_show",
        email=f"chen.jing.{run}@example.com",
    )
    pooled = lead(5, "孙悦", phone="+8613800138005", region="north")

    out.print(f"[bold]Demo run {run}[/]: one day lasts {day:g} s")
    for item in (converting, escalating, going_stale):
        await journeys.start_lead(item)
        out.print(f"  started lead-{item.lead_id} ({item.name})")
    await asyncio.sleep(0.5)
    await journeys.start_lead(duplicate)
    out.print(f"  started lead-{duplicate.lead_id}: same phone as {converting.lead_id}, will merge")
    await journeys.start_lead(pooled)
    out.print(f"  started lead-{pooled.lead_id}: no rep covers region north, goes to the pool")

    async def claim_pooled() -> None:
        try:
            await journeys.claim_lead(pooled.lead_id, "rep-zhao")
            outcome = "accepted"
        except WorkflowUpdateFailedError as refused:
            outcome = getattr(refused.cause, "message", str(refused))
        out.print(f"  {pooled.lead_id}: claimed by rep-zhao -> {outcome}")

    async def discard_pooled() -> None:
        await journeys.discard_lead(pooled.lead_id, "今年没有预算")
        out.print(f"  {pooled.lead_id}: discarded by rep-zhao (no budget this year)")

    async def convert() -> None:
        await journeys.convert_lead(
            converting.lead_id, Convert(opportunity_name="星辰制造 ERP", amount="380000")
        )
        out.print(f"  {converting.lead_id}: converted to an opportunity")
        await deal_to_cash(journeys, f"opp-{converting.lead_id}", out=out, run=run)

    await asyncio.gather(
        after(0.4 * day, lambda: contact(converting.lead_id, "首次电话沟通，约演示")),
        after(0.2 * day, lambda: contact(going_stale.lead_id, "发了资料，之后没人跟进")),
        # lead 5 waits in the pool; a rep claims it, calls, and drops it
        after(1.2 * day, claim_pooled),
        after(1.4 * day, lambda: contact(pooled.lead_id, "客户说今年没有预算")),
        after(2.0 * day, discard_pooled),
        # nobody calls lead 2: reminder at 20 h, escalation and reassignment at 24 h
        after(1.6 * day, lambda: contact(escalating.lead_id, "新负责人接手后首次联系")),
        # lead 1 misses one follow-up (reminder), then converts
        after(4.0 * day, convert),
    )
    out.print(f"  waiting for lead-{going_stale.lead_id} to go stale (5 missed follow-ups)…")
    result = await journeys.lead(going_stale.lead_id).result()
    out.print(f"  {going_stale.lead_id}: {result.stage.value}")
    out.print("[bold green]Demo done.[/] Look in the UI for CrmJourney='lead' and in the outbox.")
