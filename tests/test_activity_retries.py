"""An activity's retry answers what its earlier attempt did, on SQLite and
PostgreSQL: attempt 1 commits, the worker dies before reporting it, and
attempt 2 of the same call (same workflow run and activity id) finds that
write. It answers the first attempt's result, never "duplicate" and never a
result recomputed from the store as it is by then; another call with the same
order stays a duplicate.

Activities run in Temporal's activity environment, as on a worker."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from temporalio.testing import ActivityEnvironment

from activities.courses import CourseActivities
from activities.leads import LeadActivities
from activities.lifecycle import LifecycleActivities
from activities.store import Store
from activities.tickets import TicketActivities
from domain import schema
from domain.courses import CourseEscalation, CoursePolicy, EnrollmentInput, EnrollRequest
from domain.leads import (
    AssignRequest,
    ClaimRequest,
    ContactRequest,
    EscalateRequest,
    FollowUpMissed,
    IntakeRequest,
    LeadInput,
    LeadStage,
    StageChange,
)
from domain.lifecycle import (
    CouponRequest,
    LifecyclePolicy,
    Purchase,
    PurchaseRequest,
    customer_workflow_id,
)
from domain.policy import LeadPolicy
from domain.tickets import (
    EscalationKind,
    OpenTicketRequest,
    TicketEscalation,
    TicketInput,
    TicketPolicy,
    TicketStage,
)
from tests.harness import seed_staff

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def attempt(workflow_id: str, call_id: str, n: int, run_id: str = "run-1"
            ) -> ActivityEnvironment:
    """An activity context: attempt `n` of call `call_id` in a run of `workflow_id`."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id, workflow_run_id=run_id,
                                   activity_id=call_id, attempt=n)
    return env


def run(fn: Callable[..., Any], *args: Any) -> Any:
    return ActivityEnvironment().run(fn, *args)


def set_staff(store: Store, staff_id: str, **values: Any) -> None:
    with store.unit_of_work() as session:
        session.execute(update(schema.Staff).where(schema.Staff.id == staff_id).values(**values))


# -- purchases -------------------------------------------------------------------------


@pytest.fixture
def lifecycle(store: Store) -> LifecycleActivities:
    seed_staff(store)
    return LifecycleActivities(store=store, policy=LifecyclePolicy(), zone="Asia/Shanghai")


WF = customer_workflow_id("cust-1")


def purchase(order_id: str, *, amount: str = "120", at: datetime = NOW,
             campaign: list[str] | None = None, coupon: str | None = None) -> PurchaseRequest:
    return PurchaseRequest(
        customer_id="cust-1", workflow_id=WF,
        purchase=Purchase(order_id=order_id, amount=Decimal(amount), category="tea", at=at,
                          coupon_code=coupon),
        currency="CNY", campaign=campaign or [], now=at)


def orders_of(store: Store, customer_id: str) -> tuple[int, int]:
    """The customer's order count as the store keeps it, and its order rows."""
    with store.unit_of_work() as session:
        customer = session.get(schema.Customer, customer_id)
        assert customer is not None
        rows = session.scalar(select(func.count()).select_from(schema.Order)
                              .where(schema.Order.customer_id == customer_id))
        return customer.order_count or 0, rows or 0


def test_a_retried_purchase_answers_what_its_first_attempt_recorded(
        lifecycle: LifecycleActivities, store: Store) -> None:
    coupon = lifecycle.issue_coupon(CouponRequest(
        customer_id="cust-1", key=f"{WF}:winback_first:1", campaign="winback", percent=10,
        valid_for=timedelta(days=14), now=NOW - DAY)).code
    request = purchase("O-1", campaign=[coupon])

    first = attempt(WF, "5", 1).run(lifecycle.record_purchase, request)
    # Before the retry runs, the customer buys again under another order.
    attempt(WF, "6", 1).run(lifecycle.record_purchase, purchase("O-2", at=NOW + HOUR))
    retried = attempt(WF, "5", 2).run(lifecycle.record_purchase, request)

    assert not first.duplicate and first.orders == 1
    assert first.credited_coupon == coupon and first.credited_touch == f"{WF}:winback_first:1"
    assert retried == first
    assert orders_of(store, "cust-1") == (2, 2)


def test_the_same_order_sent_again_by_another_call_stays_a_duplicate(
        lifecycle: LifecycleActivities, store: Store) -> None:
    request = purchase("O-3")
    first = attempt(WF, "5", 1).run(lifecycle.record_purchase, request)

    again = attempt(WF, "9", 1).run(lifecycle.record_purchase, request)
    next_run = attempt(WF, "5", 1, run_id="run-2").run(lifecycle.record_purchase, request)
    outside = lifecycle.record_purchase(request)  # no activity context: no call to name

    assert not first.duplicate
    assert again.duplicate and next_run.duplicate and outside.duplicate
    assert again.orders == 1 and again.credited_coupon is None
    assert orders_of(store, "cust-1") == (1, 1)


# -- leads -----------------------------------------------------------------------------


@pytest.fixture
def leads(store: Store) -> LeadActivities:
    seed_staff(store)
    activities = LeadActivities(store=store, policy=LeadPolicy())
    lead = LeadInput(lead_id="L1", name="王芳", phone="13800138000", region="east",
                     product_line="erp", source="web_form")
    run(activities.intake_lead, IntakeRequest(lead=lead, workflow_id="lead-L1", now=NOW))
    return activities


def assign(n: int, now: datetime, *, exclude: list[str] | None = None,
           reason: str = "intake") -> AssignRequest:
    return AssignRequest(lead_id="L1", workflow_id="lead-L1", now=now,
                         first_touch=timedelta(hours=24), exclude=exclude or [],
                         reason=reason, n=n)


def contact(n: int, at: datetime) -> ContactRequest:
    return ContactRequest(lead_id="L1", workflow_id="lead-L1", owner_id="rep-a",
                          channel="phone", at=at, now=at + HOUR, assigned_at=NOW,
                          follow_up=timedelta(days=3), n=n)


def test_a_retried_contact_answers_its_own_time_and_follow_up(
        leads: LeadActivities, store: Store) -> None:
    run(leads.assign_lead, assign(1, NOW))
    first_contact = run(leads.record_contact, contact(1, NOW + HOUR))
    second = contact(2, NOW + 2 * DAY)

    first = attempt("lead-L1", "14", 1).run(leads.record_contact, second)
    retried = attempt("lead-L1", "14", 2).run(leads.record_contact, second)
    again_first = run(leads.record_contact, contact(1, NOW + HOUR))

    assert first == retried
    assert (retried.accepted, retried.at, retried.due_at) == (
        True, NOW + 2 * DAY, NOW + 5 * DAY)
    # The first contact's retry, after the second moved the lead's follow-up on.
    assert again_first == first_contact
    assert again_first.due_at == NOW + HOUR + 3 * DAY
    with store.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(schema.Interaction)) == 2


def test_a_retried_missed_follow_up_answers_the_deadline_it_set(
        leads: LeadActivities) -> None:
    run(leads.assign_lead, assign(1, NOW))
    run(leads.record_contact, contact(1, NOW + HOUR))
    missed = FollowUpMissed(lead_id="L1", workflow_id="lead-L1", owner_id="rep-a",
                            due_at=NOW + HOUR + 3 * DAY, interval=timedelta(days=3),
                            now=NOW + 4 * DAY, n=1)
    first = run(leads.miss_follow_up, missed)
    # The owner calls meanwhile, which moves the lead's follow-up on.
    run(leads.record_contact, contact(2, NOW + 5 * DAY))

    retried = run(leads.miss_follow_up, missed)

    assert first.due_at == NOW + HOUR + 6 * DAY
    assert retried == first


def test_a_retried_assignment_answers_its_owner_after_the_lead_moved_on(
        leads: LeadActivities) -> None:
    first = run(leads.assign_lead, assign(1, NOW))
    # The owner missed the first touch: the lead went to someone else.
    run(leads.assign_lead, assign(2, NOW + 25 * HOUR, exclude=["rep-a"], reason="escalation"))

    retried = run(leads.assign_lead, assign(1, NOW))

    assert (first.owner_id, first.due_at) == ("rep-a", NOW + 24 * HOUR)
    assert retried == first


def test_a_retried_claim_answers_its_own_deadline(leads: LeadActivities) -> None:
    def pool(n: int, now: datetime) -> StageChange:
        return StageChange(lead_id="L1", workflow_id="lead-L1", stage=LeadStage.pooled,
                           now=now, step="pooled", n=n)

    def claim(n: int, owner: str, now: datetime) -> ClaimRequest:
        return ClaimRequest(lead_id="L1", workflow_id="lead-L1", owner_id=owner, now=now,
                            first_touch=timedelta(hours=24), n=n)

    run(leads.change_lead_stage, pool(1, NOW))
    first = run(leads.claim_lead, claim(1, "rep-b", NOW + HOUR))
    run(leads.change_lead_stage, pool(2, NOW + 2 * DAY))
    run(leads.claim_lead, claim(2, "rep-c", NOW + 3 * DAY))

    retried = run(leads.claim_lead, claim(1, "rep-b", NOW + HOUR))

    assert first.accepted and first.due_at == NOW + 25 * HOUR
    assert retried == first


def test_a_retried_lead_escalation_names_the_manager_it_escalated_to(
        leads: LeadActivities, store: Store) -> None:
    run(leads.assign_lead, assign(1, NOW))
    request = EscalateRequest(lead_id="L1", workflow_id="lead-L1", owner_id="rep-a",
                              now=NOW + 25 * HOUR, level=1, reason="no first touch")
    first = run(leads.escalate_lead, request)
    set_staff(store, "rep-a", manager_id=None)  # the owner's line changes meanwhile
    set_staff(store, "mgr-east", active=False)

    retried = run(leads.escalate_lead, request)

    assert first.manager_id == "mgr-east" and retried == first
    with store.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(schema.Escalation)) == 1


# -- tickets and courses ---------------------------------------------------------------


@pytest.fixture
def tickets(store: Store) -> TicketActivities:
    seed_staff(store)
    activities = TicketActivities(store=store, policy=TicketPolicy())
    ticket = TicketInput.model_validate({"ticket_id": "T1", "customer_id": "cust-1",
                                         "type": "technical", "subject": "Printer"})
    run(activities.open_ticket, OpenTicketRequest(ticket=ticket, workflow_id="ticket-T1",
                                                  opened_at=NOW, now=NOW,
                                                  policy=TicketPolicy()))
    return activities


def escalation(n: int, *, reassign: bool = True) -> TicketEscalation:
    return TicketEscalation(
        ticket_id="T1", workflow_id="ticket-T1", kind=EscalationKind.low_rating, level=1, n=n,
        at=NOW + DAY, stage=TicketStage.escalated_supervisor, reason="rated 1",
        from_staff_id="tech-1", reassign=reassign)


def test_a_retried_reassigning_escalation_answers_what_it_did(
        tickets: TicketActivities, store: Store) -> None:
    first = run(tickets.escalate_ticket, escalation(1))
    # The supervisor leaves; their successor would be someone else.
    set_staff(store, "sup-technical", active=False)

    retried = run(tickets.escalate_ticket, escalation(1))

    assert (first.to_staff_id, first.reassigned_to) == ("sup-technical", "sup-technical")
    assert retried == first


def test_a_retried_escalation_that_did_not_reassign_still_says_so(
        tickets: TicketActivities, store: Store) -> None:
    with store.unit_of_work() as session:
        session.execute(update(schema.Ticket).where(schema.Ticket.id == "T1")
                        .values(assignee_id="sup-technical"))
    first = run(tickets.escalate_ticket, escalation(1))

    retried = run(tickets.escalate_ticket, escalation(1))

    assert (first.to_staff_id, first.reassigned_to) == ("sup-technical", None)
    assert retried == first


def test_a_retried_callback_escalation_names_the_supervisor_it_escalated_to(
        store: Store) -> None:
    seed_staff(store)
    courses = CourseActivities(store=store, policy=CoursePolicy())
    run(courses.enroll_student, EnrollRequest(
        enrollment=EnrollmentInput(enrollment_id="E1", customer_id="cust-1",
                                   course_id="erp-101", advisor_id="adv-1", ends_at=NOW),
        workflow_id="enrollment-E1", now=NOW))
    request = CourseEscalation(enrollment_id="E1", workflow_id="enrollment-E1",
                               advisor_id="adv-1", now=NOW + 4 * DAY, level=1)
    first = run(courses.escalate_callback, request)
    set_staff(store, "adv-1", manager_id="mgr-east")

    retried = run(courses.escalate_callback, request)

    assert first.supervisor_id == "sup-edu" and retried == first


# -- the RFM sweep ---------------------------------------------------------------------


def test_a_retried_sweep_reports_the_changes_it_made(
        lifecycle: LifecycleActivities, store: Store) -> None:
    for n, customer in enumerate(("cust-1", "cust-2"), 1):
        lifecycle.record_purchase(PurchaseRequest(
            customer_id=customer, workflow_id=customer_workflow_id(customer),
            purchase=Purchase(order_id=f"S-{n}", amount=Decimal("50"), category="tea",
                              at=NOW - DAY),
            currency="CNY", now=NOW - DAY))
    day = "2026-06-01"

    first = attempt("rfm-daily", "1", 1).run(lifecycle.sweep_rfm, day)
    retried = attempt("rfm-daily", "1", 2).run(lifecycle.sweep_rfm, day)
    rerun = attempt("rfm-daily", "1", 1, run_id="run-2").run(lifecycle.sweep_rfm, day)

    assert first["changed"] == 2 and first["day"] == day
    assert retried == first
    assert rerun["changed"] == 0  # another run of the day: nothing left to change
    with store.unit_of_work() as session:
        sweep = session.get(schema.RfmSweep, datetime(2026, 6, 1).date())
        assert sweep is not None and sweep.changed == 2
