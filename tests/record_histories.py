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
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.common import RawValue
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.failures import ShortFailures
from activities.store import Store, migrate
from domain import schema
from domain.courses import CourseStage, CourseStatus, EndCourse, EnrollmentInput, LogCallback
from domain.leads import Convert, LeadInput, LeadStage, LeadStatus, LogContact
from domain.lifecycle import LifecycleStatus, Purchase, TierChanged
from domain.payments import Accept, ContractInput, ContractStage, ContractStatus, RecordPayment
from domain.policy import LeadPolicy, MessagingPolicy, QuietHours
from domain.settings import Settings
from domain.tickets import (
    CustomerReplied,
    Rate,
    TicketInput,
    TicketPolicy,
    TicketReassigned,
    TicketReassignment,
    TicketStage,
    TicketStatus,
    WaitOnCustomer,
)
from starter.client import Journeys
from tests.harness import (
    NO_QUIET_HOURS,
    eventually,
    local_window_around,
    make_settings,
    refused,
    running_worker,
    seed_staff,
)
from worker import WORKFLOWS, build_activities

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


# -- every signal of every journey, refused ones included ----------------------------
#
# The histories below send each journey every signal it takes, accepted and
# refused (a rule broken, a malformed payload, no argument, two arguments, a
# payload that is not JSON, an unknown name, a staff_deactivated naming nobody),
# and the cases the fault run found: a signal received before a deadline but
# handled after it, a signal received after a step already due, and an update
# and a signal while the journey waits for its last touch before completing.
# A change of what a running journey does with any of them then fails replay
# unless it is behind `workflow.patched`.

ZONE = "Asia/Shanghai"  # the seeded customers' zone
NOT_JSON = RawValue(Payload(metadata={"encoding": b"json/plain"}, data=b"{not json"))


def _fresh(workdir: Path, name: str) -> tuple[Store, Settings]:
    url = f"sqlite:///{workdir / name}"
    migrate(url)
    store = Store.from_url(url)
    seed_staff(store)
    return store, make_settings(workdir)


def _activity_name(fn: Any) -> str:
    return activity._Definition.must_from_callable(fn).name  # noqa: SLF001


@asynccontextmanager
async def _worker(env: WorkflowEnvironment, store: Store, settings: Settings, task_queue: str,
                  *, replace: tuple[Any, ...] = (), cache: bool = True,
                  **overrides: Any) -> AsyncIterator[None]:
    """A worker that can be stopped and started again on the same task queue
    without ending the journeys (the harness's ends them on exit), with some
    activities replaced (a store outage). Without a cache it keeps no sticky
    queue, so a worker started after it gets the journey's next task at once."""
    overrides = {"lead_policy": LeadPolicy(), "messaging_policy": NO_QUIET_HOURS, **overrides}
    with ThreadPoolExecutor(max_workers=8) as executor:
        activities = build_activities(settings, store, env.client, task_queue, **overrides)
        replacements = {_activity_name(fn): fn for fn in replace}
        activities = [replacements.get(_activity_name(fn), fn) for fn in activities]
        async with Worker(env.client, task_queue=task_queue, workflows=WORKFLOWS,
                          activities=activities, activity_executor=executor,
                          max_concurrent_activities=8, interceptors=[ShortFailures()],
                          max_cached_workflows=100 if cache else 0):
            yield


async def _when(query: Callable[[], Awaitable[Any]], predicate: Callable[[Any], bool],
                what: str) -> Any:
    """The status once `predicate` holds (activities run in real time)."""
    latest = None
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        latest = await query()
        if predicate(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} never held; last {latest}")


async def _rejected(handle: WorkflowHandle, result_type: Any, count: int) -> Any:
    """The status once the journey has recorded `count` rejections."""
    return await _when(lambda: handle.query("status", result_type=result_type),
                       lambda s: len(s.rejections) >= count, f"{count} rejections")


async def _signal_all(handle: WorkflowHandle, signals: list[tuple[str, list[Any]]]) -> None:
    for name, args in signals:
        await handle.signal(name, args=args)


def _malformed(valid_name: str, *, not_an_object: str) -> list[tuple[str, list[Any]]]:
    """Every way a caller gets a signal's arguments wrong."""
    return [
        (valid_name, []),                                       # no argument
        (valid_name, [{"reason": "a"}, {"reason": "b"}]),       # two arguments
        (valid_name, [not_an_object]),                          # not a JSON object
        (valid_name, [NOT_JSON]),                               # not JSON at all
        ("escalate_now", [{}]),                                 # no such signal
        ("staff_deactivated", [{"staff_id": "  "}]),            # names nobody
        ("staff_deactivated", [{"staff_id": "someone-else"}]),  # not ours: ignored
    ]


async def record_lead_every_signal(env: WorkflowEnvironment, workdir: Path) -> str:
    """A lead nobody covers: pooled, every signal refused in every shape, a
    claim, the owner deactivated (back to the pool), a second claim, a contact,
    a duplicate merged, conversion while the welcome waits for the morning,
    then an update and a signal refused while it waits."""
    store, settings = _fresh(workdir, "crm-lead-every.db")
    task_queue = "record-lead-r5"
    now = await env.get_current_time()
    quiet = MessagingPolicy(quiet_hours=local_window_around(now, ZONE, before_min=10,
                                                            after_min=180))
    async with _worker(env, store, settings, task_queue, messaging_policy=quiet):
        journeys = Journeys(env.client, task_queue=task_queue)
        handle = await journeys.start_lead(LeadInput(
            lead_id="R5", name="赵敏", phone="+8613600136555", email="zhao.min@example.com",
            region="north", product_line="erp", source="referral", timezone=ZONE))
        status = lambda: journeys.lead_status("R5")  # noqa: E731
        await _when(status, lambda s: s.stage is LeadStage.pooled, "pooled")
        await _signal_all(handle, [
            ("log_contact", [{"owner_id": "rep-a", "channel": "phone"}]),  # nobody owns it
            ("claim", [{}]),                                               # no owner_id
            ("log_contact", [{"owner_id": 42, "channel": "phone"}]),       # malformed
            ("discard", [{"reason": " "}]),                                # no reason
            ("merge", [{"lead_id": ""}]),                                  # no lead id
            ("convert", [{"amount": "-5"}]),                               # negative
            *_malformed("discard", not_an_object="no budget"),
        ])
        await _rejected(handle, LeadStatus, 12)
        assert (await journeys.claim_lead("R5", "rep-a")).accepted
        await refused(journeys.log_contact("R5", LogContact(owner_id="rep-c", channel="phone")))
        await _signal_all(handle, [
            ("claim", [{"owner_id": "rep-b"}]),                            # not in the pool
            ("log_contact", [{"owner_id": "rep-b", "channel": "phone"}]),  # not the owner
            ("merge", [{"lead_id": "R5-dup"}]),
            ("staff_deactivated", [{"staff_id": "rep-a"}]),                # back to the pool
            ("claim", [{"owner_id": "rep-b"}]),
        ])
        await _when(status, lambda s: s.owner_id == "rep-b", "claimed by rep-b")
        # A value the store cannot keep (a NUL byte) is refused, not retried.
        await handle.signal("log_contact", args=[{"owner_id": "rep-b", "channel": "phone",
                                                  "note": "call\x00back"}])
        assert (await journeys.log_contact("R5", LogContact(owner_id="rep-b",
                                                            channel="visit"))).accepted
        await handle.signal("convert", Convert(opportunity_name="北方ERP",
                                               amount=Decimal("80000")))
        await _when(status, lambda s: s.stage is LeadStage.converted, "converted")
        # The welcome still waits: the journey answers until it completes.
        await refused(journeys.log_contact("R5", LogContact(owner_id="rep-b", channel="phone")))
        await handle.signal("discard", args=[{"reason": "too late"}])
        await _rejected(handle, LeadStatus, 17)
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_contract_every_signal(env: WorkflowEnvironment, workdir: Path) -> str:
    """Every payment signal refused in every shape, a partial payment and its
    duplicate, acceptance (and a second one), the owner deactivated, a payment
    by update, then cancellation while a reminder waits out quiet hours, and an
    update and signals refused while it waits."""
    store, settings = _fresh(workdir, "crm-payment-every.db")
    task_queue = "record-contract-r7"
    # Reminders go out at 10:00 customer-local; quiet hours 09:00-12:00 hold them.
    quiet = MessagingPolicy(quiet_hours=QuietHours(enabled=True, start=time(9, 0),
                                                   end=time(12, 0)))
    async with _worker(env, store, settings, task_queue, messaging_policy=quiet):
        journeys = Journeys(env.client, task_queue=task_queue)
        now = await env.get_current_time()
        handle = await journeys.sign_contract(ContractInput(
            contract_id="R7", customer_id="cust-1", owner_id="rep-a",
            amount=Decimal("1000"), signed_at=now))
        status = lambda: journeys.contract_status("R7")  # noqa: E731
        await _when(status, lambda s: s.milestones, "signed")
        await _signal_all(handle, [
            ("record_payment", [{"amount": "0", "reference": "P0"}]),       # not positive
            ("record_payment", [{"amount": "10", "reference": " "}]),       # no reference
            ("record_payment", [{"amount": "10", "reference": "P1", "currency": "USD"}]),
            ("record_payment", [{"amount": "lots", "reference": "P2"}]),    # malformed
            ("accept", [{"accepted_at": (now - timedelta(days=1)).isoformat()}]),  # too early
            ("cancel", [{"reason": ""}]),                                   # no reason
            *_malformed("cancel", not_an_object="customer withdrew"),
        ])
        await _rejected(handle, ContractStatus, 12)
        await _signal_all(handle, [
            ("record_payment", [{"amount": "100", "reference": "P3"}]),
            ("record_payment", [{"amount": "100", "reference": "P3"}]),    # told twice
            ("accept", [{}]),
            ("accept", [{}]),                                               # accepted already
            ("staff_deactivated", [{"staff_id": "rep-a"}]),                 # handed over
        ])
        await _rejected(handle, ContractStatus, 13)
        await _when(status, lambda s: s.owner_id != "rep-a", "handed over")
        assert (await journeys.record_payment("R7", RecordPayment(amount=Decimal("50"),
                                                                  reference="P4"))).accepted
        await refused(journeys.record_payment("R7", RecordPayment(amount=Decimal("-1"),
                                                                  reference="P5")))
        waiting = await status()
        assert waiting.next_action is not None
        await env.sleep(waiting.next_action.at - await env.get_current_time()
                        + timedelta(minutes=1))
        await eventually(lambda: _touches(store, "payment_reminder", "deferred"))
        await journeys.cancel_contract("R7", "customer withdrew")
        await _when(status, lambda s: s.stage is ContractStage.cancelled, "cancelled")
        # The reminder still waits: the journey answers until it completes.
        await refused(journeys.record_payment("R7", RecordPayment(amount=Decimal("10"),
                                                                  reference="P6")))
        await _signal_all(handle, [("record_payment", [{"amount": "10", "reference": "P7"}]),
                                   ("accept", [{}])])
        await _rejected(handle, ContractStatus, 15)
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def _timers_fired(handle: WorkflowHandle) -> int:
    return sum([event.event_type == EventType.EVENT_TYPE_TIMER_FIRED
                async for event in handle.fetch_history_events()])


def _touches(store: Store, step: str, status: str) -> list[schema.Touch]:
    with store.unit_of_work() as session:
        return list(session.scalars(select(schema.Touch).where(
            schema.Touch.step == step, schema.Touch.status == status)))


async def record_course_every_signal(env: WorkflowEnvironment, workdir: Path) -> str:
    """Every course signal refused in every shape, the end moved, the advisor
    deactivated (handed on); then, the worker down, the callback step falls
    due and the callback is logged after it: the step goes first and the
    callback is taken; the feedback request and renewal offer wait out quiet
    hours, and an update and a signal are refused while they wait."""
    store, settings = _fresh(workdir, "crm-course-every.db")
    task_queue = "record-enrollment-r8"
    now = await env.get_current_time()
    ends_at = now + timedelta(hours=1)
    callback_due = ends_at + timedelta(hours=72)
    quiet = MessagingPolicy(quiet_hours=local_window_around(callback_due, ZONE, before_min=10,
                                                            after_min=180))
    journeys = Journeys(env.client, task_queue=task_queue)
    status = lambda: journeys.course_status("R8")  # noqa: E731
    async with _worker(env, store, settings, task_queue, messaging_policy=quiet, cache=False):
        handle = await journeys.enroll(EnrollmentInput(
            enrollment_id="R8", customer_id="cust-1", course_id="PY-201", advisor_id="adv-1",
            ends_at=now + timedelta(hours=2)))
        await _when(status, lambda s: s.stage is CourseStage.enrolled, "enrolled")
        await _signal_all(handle, [
            ("log_callback", [{"advisor_id": "adv-1", "outcome": "renewal_intent"}]),  # early
            ("log_callback", [{"advisor_id": "adv-2", "outcome": "no_interest"}]),  # not theirs
            ("log_callback", [{"advisor_id": "adv-1", "outcome": "maybe"}]),  # no such outcome
            ("end_course", [{"ended_at": "next week"}]),                      # malformed
            *_malformed("log_callback", not_an_object="called"),
        ])
        await _rejected(handle, CourseStatus, 10)
        await _signal_all(handle, [
            ("end_course", [{"ended_at": ends_at.isoformat()}]),
            ("staff_deactivated", [{"staff_id": "adv-1"}]),                   # handed on
        ])
        await _when(status, lambda s: s.advisor_id == "adv-2", "handed on")
        await refused(journeys.log_callback("R8", LogCallback(advisor_id="adv-2",
                                                              outcome="no_interest")))
        await env.sleep(ends_at - await env.get_current_time() + timedelta(minutes=5))
        await _when(status, lambda s: s.stage is CourseStage.course_ended, "course ended")
    # The worker is down while the callback step falls due; the advisor logs
    # the callback after that: one workflow task brings the timer and the signal.
    # (The test server stops skipping time once a workflow task waits for a
    # worker, so the last seconds before the step pass in real time.)
    timers = await _timers_fired(handle)
    await env.sleep(callback_due - await env.get_current_time() - timedelta(seconds=2))
    await _when(lambda: _timers_fired(handle), lambda n: n > timers, "callback step due")
    await handle.signal("log_callback", LogCallback(advisor_id="adv-2",
                                                    outcome="renewal_intent"))
    async with _worker(env, store, settings, task_queue, messaging_policy=quiet):
        done = await _when(status, lambda s: s.stage is CourseStage.completed, "completed")
        assert done.outcome == "renewal_intent" and len(done.rejections) == 10
        await eventually(lambda: _touches(store, "renewal_offer", "deferred"))
        # The offer still waits: the journey answers until it completes.
        await refused(journeys.log_callback("R8", LogCallback(advisor_id="adv-2",
                                                              outcome="no_interest")))
        await handle.signal("end_course", EndCourse())
        await _rejected(handle, CourseStatus, 11)
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_ticket_every_signal(env: WorkflowEnvironment, workdir: Path) -> str:
    """Every ticket signal refused in every shape; the assignee deactivated
    while the store is down, an answer received before the first-response
    deadline and handled after it (taken first: no escalation); a pause and a
    reply, a resolution by update, a reopen, a second resolution, the rating
    while the survey waits out quiet hours, a late signal while the closed
    ticket lingers, then an update and a signal refused while the survey waits."""
    store, settings = _fresh(workdir, "crm-ticket-every.db")
    task_queue = "record-ticket-r9"
    # A closed ticket lingers a short while here, so that the survey (held by
    # quiet hours around the seventh day after the resolution, about 80
    # minutes from now) still waits when the linger is over.
    policy = TicketPolicy(linger_after_close=timedelta(minutes=30))
    now = await env.get_current_time()
    quiet = MessagingPolicy(quiet_hours=local_window_around(
        now + policy.survey_after + timedelta(minutes=80), ZONE, before_min=60, after_min=180))
    outage = threading.Event()
    stand_in = build_activities(settings, store, env.client, task_queue)
    reassign = next(fn for fn in stand_in if _activity_name(fn) == "reassign_ticket")

    @activity.defn(name="reassign_ticket")
    def reassign_ticket(request: TicketReassignment) -> TicketReassigned:
        if outage.is_set():
            raise RuntimeError("the store is unavailable")
        return reassign(request)

    async with _worker(env, store, settings, task_queue, messaging_policy=quiet,
                       ticket_policy=policy, replace=(reassign_ticket,)):
        journeys = Journeys(env.client, task_queue=task_queue)
        handle = await journeys.open_ticket(TicketInput(
            ticket_id="R9", customer_id="cust-1", type="technical", priority="normal",
            subject="扫描仪无法连接", channel="email"))
        status = lambda: journeys.ticket_status("R9")  # noqa: E731
        opened = await _when(status, lambda s: s.stage is TicketStage.awaiting_response,
                             "opened")
        await _signal_all(handle, [
            ("wait_on_customer", [{}]),                          # no first response yet
            ("customer_replied", [{}]),                          # not waiting
            ("resolve", [{"agent_id": "tech-2", "resolution": " "}]),  # no resolution
            ("reopen", [{"reason": "x"}]),                       # not resolved
            ("rate", [{"score": 9}]),                            # out of range
            ("rate", [{"score": "five"}]),                       # malformed
            ("respond", [{"agent_id": ""}]),                     # nobody
            *_malformed("respond", not_an_object="on it"),
        ])
        await _rejected(handle, TicketStatus, 13)
        # The store goes down while the assignee's tickets are handed on; the
        # answer arrives a minute later, and the store is back only after the
        # first-response deadline.
        outage.set()
        await handle.signal("staff_deactivated", args=[{"staff_id": opened.assignee_id}])
        await env.sleep(timedelta(minutes=1))
        await handle.signal("respond", args=[{"agent_id": "tech-3", "note": "rebooted"}])
        await env.sleep(timedelta(minutes=16))
        outage.clear()
        await env.sleep(timedelta(minutes=2))
        answered = await _when(status, lambda s: s.first_response_at is not None, "answered")
        assert answered.first_response_at < opened.first_response_due
        assert not answered.escalations, answered.escalations
        await _signal_all(handle, [
            ("wait_on_customer", [{}]),
            ("wait_on_customer", [{}]),                          # already waiting
        ])
        await _rejected(handle, TicketStatus, 14)
        await env.sleep(timedelta(hours=1))
        await journeys.customer_replied("R9")
        assert (await journeys.resolve("R9", "tech-3", "重装了驱动")).accepted
        await _signal_all(handle, [
            ("respond", [{"agent_id": "tech-3"}]),               # resolved: reopen first
            ("reopen", [{"reason": " "}]),                       # no reason
            ("reopen", [{"reason": "still offline"}]),
            ("resolve", [{"agent_id": "tech-3", "resolution": "换了网卡"}]),
        ])
        resolved = await _when(status, lambda s: s.stage is TicketStage.resolved
                               and s.reopens == 1, "resolved again")
        assert resolved.survey_due is not None
        await env.sleep(resolved.survey_due - await env.get_current_time()
                        + timedelta(minutes=1))
        await eventually(lambda: _touches(store, "satisfaction_survey", "deferred"))
        assert (await journeys.rate("R9", 5, "好了")).accepted
        await handle.signal("reopen", args=[{"reason": "again"}])  # closed: lingering
        closed = await _rejected(handle, TicketStatus, 17)
        assert closed.closed_at is not None
        await env.sleep(closed.closed_at + policy.linger_after_close
                        - await env.get_current_time() + timedelta(minutes=1))
        # The survey still waits: the journey answers until it completes.
        await refused(journeys.respond("R9", "tech-3"))
        await handle.signal("rate", args=[{"score": 1}])
        await _rejected(handle, TicketStatus, 18)
        await handle.result()
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


async def record_customer_every_signal(env: WorkflowEnvironment, workdir: Path) -> str:
    """Every lifecycle signal refused in every shape, a purchase told twice,
    tier changes (one told twice), the exclusive advisor deactivated, an
    opt-out and another purchase."""
    store, settings = _fresh(workdir, "crm-lifecycle-every.db")
    task_queue = "record-customer-cust-3"
    async with _worker(env, store, settings, task_queue):
        journeys = Journeys(env.client, task_queue=task_queue)
        now = await env.get_current_time()
        handle = await journeys.report_purchase("cust-3", Purchase(
            order_id="R10-1", amount=Decimal("260"), category="tea", at=now))
        await _signal_all(handle, [
            ("purchase", [{"order_id": "R10-1", "amount": "260", "category": "tea",
                           "at": now.isoformat()}]),                # told twice
            ("purchase", [{"order_id": " ", "amount": "10", "category": "tea"}]),
            ("purchase", [{"order_id": "R10-2", "amount": "0", "category": "tea"}]),
            ("purchase", [{"order_id": "R10-3", "amount": "10", "category": "tea",
                           "currency": "USD"}]),
            ("purchase", [{"order_id": "R10-4", "amount": "10", "category": "tea",
                           "at": (now + timedelta(days=1)).isoformat()}]),  # future
            ("purchase", [{"order_id": "R10-5", "amount": "much", "category": "tea"}]),
            ("tier_changed", [{"tier": "gold"}]),                   # no such tier
            *_malformed("purchase", not_an_object="R10-7"),
        ])
        await _rejected(handle, LifecycleStatus, 12)
        await _signal_all(handle, [
            ("tier_changed", [{"tier": "potential", "change": 1}]),
            ("tier_changed", [{"tier": "potential", "change": 1}]),  # told twice
            ("tier_changed", [{"tier": "core", "change": 2}]),
            ("staff_deactivated", [{"staff_id": "adv-1"}]),
            ("staff_deactivated", [{"staff_id": "adv-2"}]),
            ("opt_out", [{"channel": "sms"}]),
            ("purchase", [{"order_id": "R10-6", "amount": "88", "category": "coffee"}]),
        ])
        await _when(lambda: journeys.customer_status("cust-3"), lambda s: s.orders == 2,
                    "second order")
        await eventually(lambda: _consents(store, "cust-3"))
        history = await handle.fetch_history()
    store.dispose()
    return history.to_json()


def _consents(store: Store, customer_id: str) -> list[schema.Consent]:
    with store.unit_of_work() as session:
        return list(session.scalars(select(schema.Consent).where(
            schema.Consent.subject_id == customer_id)))


RECORDINGS = {"lead-R5": record_lead_every_signal, "contract-R7": record_contract_every_signal,
              "enrollment-R8": record_course_every_signal,
              "ticket-R9": record_ticket_every_signal,
              "customer-cust-3": record_customer_every_signal,
              "lead-R1": record_lead_full, "enrollment-R2": record_course_full,
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
