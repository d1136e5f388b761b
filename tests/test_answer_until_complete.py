"""A journey whose run has ended but which still waits for a touch deferred by
quiet hours keeps answering until it completes: an update is refused at once
in the one refusal shape, a signal is recorded as a rejection (in the status
query and the store), and the workflow completes once the touch has gone.

Each journey meets this in its own way: a lead converted while its welcome
waits for the morning, a contract paid in full while a payment reminder
waits, an enrolment completed while the feedback request and renewal offer
wait, a ticket closed (and past its linger) while the survey waits. (The
customer lifecycle, whose run never ends, is in test_lifecycle_deferred_touches.py.)
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import schema
from domain.courses import CourseStage, EndCourse, EnrollmentInput, LogCallback
from domain.leads import Discard, LeadInput, LeadStage, LogContact
from domain.payments import Cancel, ContractInput, ContractStage, MilestoneRule, RecordPayment
from domain.policy import MessagingPolicy, QuietHours
from domain.tickets import Resolve, TicketInput, TicketPolicy, TicketStage
from tests import answer_support
from tests.answer_support import (
    MINUTE,
    ZONE,
    deferred,
    quiet_around,
    rejected_in_store,
    status_when,
)
from tests.harness import Harness, eventually, make_settings, refused, running_worker

# Fixtures shared with the other modules split from the same subject.
env = answer_support.env
seeded = answer_support.seeded
HOUR = timedelta(hours=1)


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


async def completes_after(h: Harness, handle: WorkflowHandle, touch: schema.Touch) -> None:
    """The journey completes, and only once the deferred touch has gone."""
    await handle.result()
    gone = h.touches(key=touch.key)[0]
    assert gone.status in ("sent", "suppressed"), gone.status
    closed = (await described(handle)).close_time.ToDatetime(tzinfo=UTC)
    assert closed >= touch.deferred_until


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
