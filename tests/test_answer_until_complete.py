"""A journey whose run has ended but which still waits for a touch deferred by
quiet hours keeps answering until it completes: an update is refused at once
in the one refusal shape, a signal is recorded as a rejection (in the status
query and the store), and the workflow completes once the touch has gone.

Each journey meets this in its own way: a lead converted while its welcome
waits for the morning, a contract paid in full while a payment reminder
waits, an enrolment completed while the feedback request and renewal offer
wait, a ticket closed (and past its linger) while the survey waits. The
customer lifecycle has no such moment: its run never ends; it continues as
new once its touches have gone, and what arrives meanwhile is not lost."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.courses import CourseStage, EndCourse, EnrollmentInput, LogCallback
from domain.leads import Discard, LeadInput, LeadStage, LogContact
from domain.lifecycle import LifecycleInput, LifecyclePolicy, LifecycleStage, Purchase
from domain.payments import Cancel, ContractInput, ContractStage, MilestoneRule, RecordPayment
from domain.policy import MessagingPolicy, QuietHours
from domain.tickets import Resolve, TicketInput, TicketPolicy, TicketStage
from tests.harness import (
    Harness,
    eventually,
    local_window_around,
    make_settings,
    refused,
    running_worker,
    seed_staff,
)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
ZONE = "Asia/Shanghai"  # every seeded customer's zone, and the leads' here


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest.fixture
def seeded(sqlite_store: Store) -> Store:
    seed_staff(sqlite_store)
    return sqlite_store


def quiet_around(moment: datetime) -> MessagingPolicy:
    """Quiet hours from a little before `moment` to two hours after it, in the
    customers' zone: a reminder or marketing touch due then is deferred."""
    return MessagingPolicy(quiet_hours=local_window_around(moment, ZONE, before_min=10,
                                                           after_min=120))


async def described(handle: WorkflowHandle) -> Any:
    """The raw description (the SDK's own cannot decode this server's datetime
    search attributes)."""
    client = handle._client  # noqa: SLF001 - the handle's own client
    return (await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=handle.id)))).workflow_execution_info


async def running(handle: WorkflowHandle) -> bool:
    status = (await described(handle)).status
    return status == WorkflowExecutionStatus.RUNNING.value


async def deferred(h: Harness, step: str) -> schema.Touch:
    """The touch of `step` once the send path has deferred it."""
    touches = await eventually(lambda: h.touches(step=step, status="deferred"),
                               what=f"{step} deferred")
    return touches[0]


async def rejected_in_store(h: Harness, workflow_id: str, signal: str) -> list[Any]:
    return await eventually(
        lambda: h.rows(schema.SignalRejection, workflow_id=workflow_id, signal=signal),
        what=f"{signal} rejection stored for {workflow_id}")


async def status_when(query: Any, predicate: Any, what: str) -> Any:
    """The status once `predicate` holds (activities run in real time)."""
    latest = None
    deadline = asyncio.get_running_loop().time() + 20
    while asyncio.get_running_loop().time() < deadline:
        latest = await query()
        if predicate(latest):
            return latest
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} never held; last {latest}")


async def completes_after(h: Harness, handle: WorkflowHandle, touch: schema.Touch) -> None:
    """The journey completes, and only once the deferred touch has gone."""
    await handle.result()
    gone = h.touches(key=touch.key)[0]
    assert gone.status in ("sent", "suppressed"), gone.status
    closed = (await described(handle)).close_time.ToDatetime(tzinfo=UTC)
    assert closed >= touch.deferred_until


# -- lead ---------------------------------------------------------------------------


def a_lead(lead_id: str) -> LeadInput:
    return LeadInput(lead_id=lead_id, name="陈静", phone="+8613912345678",
                     email=f"{lead_id.lower()}@example.com", region="east",
                     product_line="erp", source="web_form", timezone=ZONE)


async def test_lead_converted_while_its_welcome_waits_answers_until_complete(
    env: WorkflowEnvironment, seeded: Store, tmp_path: Path
) -> None:
    now = await env.get_current_time()
    async with running_worker(env.client, seeded, make_settings(tmp_path),
                              messaging_policy=quiet_around(now)) as h:
        handle = await h.journeys.start_lead(a_lead("Q1"))
        welcome = await deferred(h, "welcome")
        status = await status_when(lambda: h.journeys.lead_status("Q1"),
                                   lambda s: s.owner_id is not None, "assigned")
        owner = status.owner_id
        assert (await h.journeys.log_contact("Q1", LogContact(owner_id=owner,
                                                              channel="phone"))).accepted
        await handle.signal("convert", {"opportunity_name": "ERP"})
        await status_when(lambda: h.journeys.lead_status("Q1"),
                          lambda s: s.stage is LeadStage.converted, "converted")
        assert await running(handle)  # the welcome still waits for the morning

        # The owner's contact passes the update's validator: the journey itself
        # refuses it, at once, because the lead is converted.
        reason = await refused(h.journeys.log_contact("Q1", LogContact(owner_id=owner,
                                                                       channel="visit")))
        assert reason == "lead is converted"
        await handle.signal("discard", Discard(reason="no budget"))
        stored = await rejected_in_store(h, "lead-Q1", "discard")
        assert stored[0].reason == "lead is converted"
        status = await h.journeys.lead_status("Q1")
        assert [(r.signal, r.reason) for r in status.rejections] == [
            ("log_contact", "lead is converted"), ("discard", "lead is converted")]
        assert status.stage is LeadStage.converted and status.contacts == 1
        assert await running(handle)

        await completes_after(h, handle, welcome)


async def test_an_update_after_the_journey_completed_is_answered_at_once(
    dev_env: WorkflowEnvironment, seeded: Store, tmp_path: Path
) -> None:
    """Once the drain is over the journey completes, and what comes after it is
    the server's to answer: an update then fails at once (the journey has
    completed), it never waits. On the real dev server, which says so as users
    see it (the time-skipping server answers differently)."""
    async with running_worker(dev_env.client, seeded, make_settings(tmp_path)) as h:
        lead_id = f"Q2-{uuid.uuid4().hex[:6]}"
        handle = await h.journeys.start_lead(a_lead(lead_id))
        await handle.signal("discard", Discard(reason="duplicate of an offline lead"))
        final = await handle.result()
        assert final.stage is LeadStage.discarded
        with pytest.raises(RPCError) as failure:
            await asyncio.wait_for(h.journeys.log_contact(
                lead_id, LogContact(owner_id=final.owner_id or "rep-a", channel="phone")),
                timeout=10)
        assert "completed" in str(failure.value)


# -- payment --------------------------------------------------------------------------


async def test_contract_paid_while_a_reminder_waits_answers_until_complete(
    env: WorkflowEnvironment, seeded: Store, tmp_path: Path
) -> None:
    # Reminders go out at 10:00 customer-local; quiet hours 09:00-12:00 hold them.
    quiet = MessagingPolicy(quiet_hours=QuietHours(enabled=True, start=time(9, 0),
                                                   end=time(12, 0)))
    async with running_worker(env.client, seeded, make_settings(tmp_path),
                              messaging_policy=quiet) as h:
        now = await env.get_current_time()
        handle = await h.journeys.sign_contract(ContractInput(
            contract_id="Q3", customer_id="cust-1", owner_id="rep-a", amount=Decimal("1200"),
            signed_at=now, milestones=[MilestoneRule(percent=Decimal(100), due_days=7)]))
        status = await status_when(lambda: h.journeys.contract_status("Q3"),
                                   lambda s: s.next_action is not None, "scheduled")
        await env.sleep(status.next_action.at - await env.get_current_time() + MINUTE)
        reminder = await deferred(h, "payment_reminder")

        paid = await h.journeys.record_payment("Q3", RecordPayment(amount=Decimal("1200"),
                                                                   reference="W-1"))
        assert paid.accepted
        await status_when(lambda: h.journeys.contract_status("Q3"),
                          lambda s: s.stage is ContractStage.paid, "paid")
        assert await running(handle)  # the reminder still waits for noon

        reason = await refused(h.journeys.record_payment(
            "Q3", RecordPayment(amount=Decimal("10"), reference="W-2")))
        assert reason == "the contract is paid"
        await handle.signal("cancel", Cancel(reason="customer withdrew"))
        stored = await rejected_in_store(h, "contract-Q3", "cancel")
        assert stored[0].reason == "the contract is paid"
        status = await h.journeys.contract_status("Q3")
        assert [(r.signal, r.reason) for r in status.rejections] == [
            ("cancel", "the contract is paid")]
        assert status.stage is ContractStage.paid and status.paid == Decimal("1200")
        assert await running(handle)

        await completes_after(h, handle, reminder)
        # the customer who paid at 10:01 is not asked to pay at noon
        gone = h.touches(key=reminder.key)[0]
        assert (gone.status, gone.reason) == ("suppressed", "withdrawn: milestone 1 is settled")


# -- course ---------------------------------------------------------------------------


async def test_enrolment_completed_while_its_touches_wait_answers_until_complete(
    env: WorkflowEnvironment, seeded: Store, tmp_path: Path
) -> None:
    now = await env.get_current_time()
    ends_at = now + HOUR
    callback_due = ends_at + timedelta(hours=72)
    async with running_worker(env.client, seeded, make_settings(tmp_path),
                              messaging_policy=quiet_around(callback_due)) as h:
        handle = await h.journeys.enroll(EnrollmentInput(
            enrollment_id="Q4", customer_id="cust-1", course_id="PY-101", advisor_id="adv-1",
            ends_at=ends_at))
        await eventually(lambda: h.touches(step="welcome", status="sent"))
        await env.sleep(callback_due - await env.get_current_time() + MINUTE)
        feedback = await deferred(h, "feedback_request")
        await status_when(lambda: h.journeys.course_status("Q4"),
                          lambda s: s.stage is CourseStage.awaiting_callback, "callback due")

        logged = await h.journeys.log_callback("Q4", LogCallback(advisor_id="adv-1",
                                                                 outcome="renewal_intent"))
        assert logged.accepted
        await deferred(h, "renewal_offer")
        await status_when(lambda: h.journeys.course_status("Q4"),
                          lambda s: s.stage is CourseStage.completed, "completed")
        assert await running(handle)  # the feedback request and offer still wait

        reason = await refused(h.journeys.log_callback(
            "Q4", LogCallback(advisor_id="adv-1", outcome="no_interest")))
        assert "completed" in reason
        await handle.signal("end_course", EndCourse(ended_at=now))
        stored = await rejected_in_store(h, "enrollment-Q4", "end_course")
        assert stored[0].reason == "the enrollment is completed"
        status = await h.journeys.course_status("Q4")
        assert [(r.signal, r.reason) for r in status.rejections] == [
            ("end_course", "the enrollment is completed")]
        assert status.outcome == "renewal_intent"
        assert await running(handle)

        await completes_after(h, handle, feedback)
        assert h.touches(step="renewal_offer")[0].status in ("sent", "suppressed")


# -- ticket ---------------------------------------------------------------------------


async def test_ticket_closed_while_its_survey_waits_answers_until_complete(
    env: WorkflowEnvironment, seeded: Store, tmp_path: Path
) -> None:
    # A closed ticket lingers (answering late signals with its own rules) for the
    # policy's while; with a linger shorter than the quiet hours, the survey is
    # still held back when the linger is over.
    policy = TicketPolicy(linger_after_close=30 * MINUTE)
    now = await env.get_current_time()
    survey_due = now + policy.survey_after
    async with running_worker(env.client, seeded, make_settings(tmp_path),
                              messaging_policy=quiet_around(survey_due),
                              ticket_policy=policy) as h:
        handle = await h.journeys.open_ticket(TicketInput(
            ticket_id="Q5", customer_id="cust-1", type="technical", subject="打印机卡纸",
            channel="email"))
        assert (await h.journeys.respond("Q5", "tech-2")).accepted
        assert (await h.journeys.resolve("Q5", "tech-2", "换了进纸轮")).accepted
        resolved = await h.journeys.ticket_status("Q5")
        assert resolved.survey_due is not None
        await env.sleep(resolved.survey_due - await env.get_current_time() + MINUTE)
        survey = await deferred(h, "satisfaction_survey")

        assert (await h.journeys.rate("Q5", 5, "很快")).accepted
        closed = await status_when(lambda: h.journeys.ticket_status("Q5"),
                                   lambda s: s.stage is TicketStage.closed, "closed")
        assert closed.closed_at is not None
        await env.sleep(closed.closed_at + policy.linger_after_close
                        - await env.get_current_time() + MINUTE)
        assert await running(handle)  # the survey still waits

        reason = await refused(h.journeys.respond("Q5", "tech-2"))
        assert reason == "the ticket is closed"
        await handle.signal("resolve", Resolve(agent_id="tech-2", resolution="again"))
        stored = await rejected_in_store(h, "ticket-Q5", "resolve")
        assert stored[0].reason == "the ticket is closed"
        status = await h.journeys.ticket_status("Q5")
        assert [(r.signal, r.reason) for r in status.rejections] == [
            ("resolve", "the ticket is closed")]
        assert status.rating == 5
        assert await running(handle)

        await completes_after(h, handle, survey)
        # the customer who has rated is not asked to rate again
        gone = h.touches(key=survey.key)[0]
        assert (gone.status, gone.reason) == ("suppressed", "withdrawn: the ticket is closed")


# -- customer lifecycle -------------------------------------------------------------


async def idle_history_length(handle: WorkflowHandle) -> int:
    """How many events a journey's history holds once it waits on its timer
    with nothing else under way (every activity closed, no workflow task)."""
    async def events() -> list[Any]:
        return [event async for event in handle.fetch_history_events()]

    def idle(history: list[Any]) -> bool:
        kinds = [e.event_type for e in history]
        closed = sum(kinds.count(k) for k in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED))
        started = {e.timer_started_event_attributes.timer_id for e in history
                   if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED}
        ended = {e.timer_fired_event_attributes.timer_id for e in history
                 if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED} | {
                 e.timer_canceled_event_attributes.timer_id for e in history
                 if e.event_type == EventType.EVENT_TYPE_TIMER_CANCELED}
        return (kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == closed
                and bool(started - ended)
                and kinds[-1] in (EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
                                  EventType.EVENT_TYPE_TIMER_STARTED))

    return len(await status_when(events, idle, "waiting on its timer"))


async def started_lifecycle(h: Harness, customer_id: str, policy: LifecyclePolicy,
                            purchase: Purchase) -> WorkflowHandle:
    """Signal-with-start, as every purchase does, with the policy in the input."""
    handle = await h.client.start_workflow(
        "CustomerLifecycle", LifecycleInput(customer_id=customer_id, policy=policy),
        id=f"customer-{customer_id}", task_queue=h.task_queue,
        start_signal="purchase", start_signal_args=[purchase])
    h.journeys.started.append(handle.id)
    await status_when(lambda: h.journeys.customer_status(customer_id),
                      lambda s: s.orders == 1, f"{customer_id}'s first order")
    return handle


async def test_lifecycle_handing_over_while_its_win_back_waits_loses_nothing(
    env: WorkflowEnvironment, seeded: Store, tmp_path: Path
) -> None:
    """The lifecycle's run never ends: when its history is long it continues as
    new, once its touches have gone. What arrives while a win-back waits out
    quiet hours then (a purchase with the coupon, a malformed one) is acted on
    before the hand-over or carried over, never lost in it."""
    now = await env.get_current_time()
    first = Purchase(order_id="Q6-1", amount=Decimal("260"), category="tea", at=now)
    probes = first.model_copy(update={"order_id": "Q6-0"})
    async with running_worker(env.client, seeded, make_settings(tmp_path),
                              messaging_policy=quiet_around(now + 180 * DAY)) as h:
        # How long a customer's history is while it waits for dormancy (give or
        # take the order in which its first tasks ran): the journey below hands
        # over at its next step after that, the win-back, which adds some twenty
        # events.
        probe = await started_lifecycle(h, "probe", LifecyclePolicy(), probes)
        bound = await idle_history_length(probe) + 8
        await probe.terminate("measured")
        handle = await started_lifecycle(
            h, "cust-1", LifecyclePolicy(max_history_events=bound), first)
        assert await idle_history_length(handle) < bound

        await env.sleep(180 * DAY + MINUTE)
        winback = await deferred(h, "winback_first")
        waiting = await status_when(lambda: h.journeys.customer_status("cust-1"),
                                    lambda s: s.stage is LifecycleStage.winback_first,
                                    "win-back")
        assert waiting.runs == 1  # the hand-over waits for the win-back to go
        await handle.signal("purchase", Purchase(order_id="Q6-2", amount=Decimal("120"),
                                                 category="tea",
                                                 coupon_code=waiting.campaign[0]))
        await handle.signal("purchase", args=[{"order_id": "Q6-3", "amount": "lots"}])
        # acted on at once, while the win-back still waits: not hours later
        acted = await status_when(lambda: h.journeys.customer_status("cust-1"),
                                  lambda s: s.orders == 2 and s.rejections, "purchase taken")
        assert acted.runs == 1 and h.rows(schema.Order, id="Q6-2")
        assert h.touches(key=winback.key)[0].status == "deferred"

        await env.sleep(winback.deferred_until - await env.get_current_time() + MINUTE)
        after = await status_when(lambda: h.journeys.customer_status("cust-1"),
                                  lambda s: s.runs == 2, "continued as new")
        assert h.touches(key=winback.key)[0].status in ("sent", "suppressed")
        assert (after.orders, after.credited, after.stage) == (2, 1, LifecycleStage.active)
        [order] = h.rows(schema.Order, id="Q6-2")
        assert order.credited_coupon == waiting.campaign[0]
        assert [r.signal for r in after.rejections] == ["purchase"]
        assert "lots" in str(after.rejections[0].payload)
        assert await rejected_in_store(h, "customer-cust-1", "purchase")
