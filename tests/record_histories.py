"""Records the workflow histories that the replay tests keep replaying.

    python -m tests.record_histories [NAME ...]     (e.g. enrollment-R2; all by default)

Run it only when a journey's *intended* behaviour changes, and commit the new
file beside the old ones: the recorded histories stand for journeys already
running in production, which every later version of the code must replay
without non-determinism (use `workflow.patched` for changes of shape).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from domain import schema
from domain.courses import EndCourse, EnrollmentInput, LogCallback
from domain.leads import Convert, LeadInput, LogContact
from domain.lifecycle import Purchase, TierChanged
from domain.payments import Accept, ContractInput, RecordPayment
from domain.tickets import CustomerReplied, Rate, TicketInput, WaitOnCustomer
from tests.harness import eventually, make_settings, running_worker, seed_staff

HISTORIES = Path(__file__).parent / "histories"


async def record_lead_full(env: WorkflowEnvironment, workdir: Path) -> str:
    """Assignment, reminder, escalation and reassignment, a contact, two missed
    follow-ups with reminders, a second contact, a rejected signal, conversion."""
    url = f"sqlite:///{workdir / 'crm.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        handle = await h.journeys.start_lead(LeadInput(
            lead_id="R1", name="王芳", phone="+8613700137000", email="wang.fang@example.com",
            company="星辰科技有限公司", region="east", product_line="erp", source="trade_show",
            need="需要ERP系统支持三个工厂的生产排程",
        ))
        await env.sleep(timedelta(hours=24, minutes=1))
        await eventually(lambda: h.rows_escalated("R1"))
        answer = await h.journeys.log_contact("R1", LogContact(owner_id="rep-b", channel="phone"))
        assert answer.accepted
        await handle.signal("log_contact", LogContact(owner_id="rep-c", channel="phone"))
        await env.sleep(timedelta(days=6, minutes=2))
        answer = await h.journeys.log_contact("R1", LogContact(owner_id="rep-b", channel="visit",
                                                               note="demo done"))
        assert answer.accepted
        await handle.signal("convert", Convert(opportunity_name="三工厂ERP",
                                               amount=Decimal("560000")))
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_course_full(env: WorkflowEnvironment, workdir: Path) -> str:
    """Enrolment and welcome, the end moved earlier, the callback task 72 h later,
    escalation, a rejected callback from another advisor, the renewal intent."""
    url = f"sqlite:///{workdir / 'crm-course.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        now = await env.get_current_time()
        handle = await h.journeys.enroll(EnrollmentInput(
            enrollment_id="R2", customer_id="cust-1", course_id="PY-101", advisor_id="adv-1",
            ends_at=now + timedelta(days=10)))
        await asyncio.sleep(1)
        await handle.signal("end_course", EndCourse(ended_at=now + timedelta(days=2)))
        await env.sleep(timedelta(days=2 + 3 + 1, minutes=5))
        await eventually(lambda: h.rows(schema.Escalation, entity_id="R2"))
        await handle.signal("log_callback", LogCallback(advisor_id="adv-2", outcome="no_interest"))
        answer = await h.journeys.log_callback("R2", LogCallback(advisor_id="adv-1",
                                                                 outcome="renewal_intent"))
        assert answer.accepted
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_contract_full(env: WorkflowEnvironment, workdir: Path) -> str:
    """Signing, reminders, a partial payment, acceptance, the deposit overdue and
    escalated, a duplicate reference, a wrong currency, payment in full."""
    url = f"sqlite:///{workdir / 'crm-payment.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        now = await env.get_current_time()
        handle = await h.journeys.sign_contract(ContractInput(
            contract_id="R4", customer_id="cust-1", owner_id="rep-a",
            amount=Decimal("999.99"), signed_at=now))
        await asyncio.sleep(1)
        assert (await h.journeys.record_payment(
            "R4", RecordPayment(amount=Decimal("100"), reference="B1"))).accepted
        await handle.signal("accept", Accept())
        await env.sleep(timedelta(days=15))
        await eventually(lambda: h.rows(schema.Escalation, entity_id="R4"))
        await handle.signal("record_payment", RecordPayment(amount=Decimal("100"),
                                                            reference="B1"))
        await handle.signal("record_payment", RecordPayment(amount=Decimal("5"),
                                                            reference="B2", currency="USD"))
        assert (await h.journeys.record_payment(
            "R4", RecordPayment(amount=Decimal("899.99"), reference="B3"))).accepted
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_customer_full(env: WorkflowEnvironment, workdir: Path) -> str:
    """Purchases (one duplicate), dormancy and the first win-back, a purchase
    with its coupon that reactivates, a tier change to core, an opt-out."""
    url = f"sqlite:///{workdir / 'crm-lifecycle.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        now = await env.get_current_time()
        handle = await h.journeys.report_purchase("cust-1", Purchase(
            order_id="R5-1", amount=Decimal("260"), category="tea", at=now))
        await h.journeys.report_purchase("cust-1", Purchase(
            order_id="R5-1", amount=Decimal("260"), category="tea", at=now))
        await asyncio.sleep(1)
        await env.sleep(timedelta(days=181))
        await eventually(lambda: h.touches(step="winback_first", status="sent"))
        code = (await h.journeys.customer_status("cust-1")).campaign[0]
        await h.journeys.report_purchase("cust-1", Purchase(
            order_id="R5-2", amount=Decimal("90"), category="coffee", coupon_code=code))
        await handle.signal("tier_changed", TierChanged(tier="core"))
        await h.journeys.opt_out("cust-1", None)
        await eventually(lambda: h.rows(schema.Consent, subject_id="cust-1"))
        await asyncio.sleep(1)
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_customer_tier_changes(env: WorkflowEnvironment, workdir: Path) -> str:
    """A purchase, then tier changes as the outbox tells them: potential (told
    twice, acted on once: one community coupon), then core."""
    url = f"sqlite:///{workdir / 'crm-tiers.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        handle = await h.journeys.report_purchase("cust-2", Purchase(
            order_id="R6-1", amount=Decimal("300"), category="tea",
            at=await env.get_current_time()))
        for tier, change in [("potential", 3), ("potential", 3), ("core", 5)]:
            await handle.signal("tier_changed", TierChanged(tier=tier, change=change))
        await eventually(lambda: h.touches(step="core_advisor", status="sent"))
        assert len(h.rows(schema.CouponRecord, customer_id="cust-2")) == 1
        await asyncio.sleep(1)
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_ticket_full(env: WorkflowEnvironment, workdir: Path) -> str:
    """A complaint raised to high and routed to a senior agent, the warning, the
    supervisor escalation, a late answer, a pause, a rejected rating, the
    resolution, a low rating that reopens and escalates, a second resolution,
    the survey on day 7, the auto-close 3 days later."""
    url = f"sqlite:///{workdir / 'crm-ticket.db'}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    async with running_worker(env.client, store, make_settings(workdir)) as h:
        handle = await h.journeys.open_ticket(TicketInput(
            ticket_id="R3", customer_id="cust-1", type="technical", priority="normal",
            subject="打印机三天没修好，我要投诉", channel="email"))
        await env.sleep(timedelta(minutes=16))
        await eventually(lambda: h.rows(schema.Escalation, entity_id="R3"))
        assert (await h.journeys.respond("R3", "tech-2")).accepted
        await handle.signal("wait_on_customer", WaitOnCustomer())
        await handle.signal("rate", Rate(score=9))
        await env.sleep(timedelta(hours=1))
        await handle.signal("customer_replied", CustomerReplied())
        assert (await h.journeys.resolve("R3", "tech-2", "更换了定影器")).accepted
        assert (await h.journeys.rate("R3", 2, "还是卡纸")).accepted
        await eventually(lambda: len(h.rows(schema.Escalation, entity_id="R3")) == 2)
        assert (await h.journeys.resolve("R3", "tech-2", "更换了进纸轮")).accepted
        await env.sleep(timedelta(days=7, minutes=1))
        await eventually(lambda: h.touches(step="satisfaction_survey", status="sent"))
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


RECORDINGS = {"lead-R1": record_lead_full, "enrollment-R2": record_course_full,
              "contract-R4": record_contract_full, "customer-cust-1": record_customer_full,
              "ticket-R3": record_ticket_full, "customer-cust-2": record_customer_tier_changes}


async def main(names: list[str]) -> None:
    from tests.conftest import register_search_attributes, time_skipping_binary

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_binary(),
        data_converter=__import__("starter.client", fromlist=["x"]).data_converter(),
    )
    await register_search_attributes(env.client)
    try:
        for name in names or RECORDINGS:
            with tempfile.TemporaryDirectory() as tmp:
                HISTORIES.mkdir(exist_ok=True)
                text = await RECORDINGS[name](env, Path(tmp))
                (HISTORIES / f"{name}.json").write_text(text)
                print("recorded", HISTORIES / f"{name}.json")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    import sys

    asyncio.run(main(sys.argv[1:]))
