"""Onboarding activities: the service group's task for the service lead, the
first delivery and its deadline, escalation on a breach, the check-in; and
starting a signed contract's onboarding journey."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.journal import record_event
from activities.logs import activity_logger
from activities.message_records import entity_loader
from activities.parts import ActivityParts
from activities.store import Store, refuse_invalid
from activities.store.erasure import Held, Person, held_as_customer
from activities.store.staff import active_manager_above
from domain import limits, schema
from domain.onboarding import (
    JOURNEY,
    DeliveryEscalation,
    DeliveryRecord,
    EscalatedTo,
    GroupRecord,
    OnboardingInput,
    OnboardingOpened,
    OnboardingPolicy,
    OnboardingStage,
    OnboardingStep,
    OpenOnboarding,
    ServiceLeadHandover,
    onboarding_workflow_id,
)
from domain.payments import Accept, contract_workflow_id

if TYPE_CHECKING:
    from temporalio.client import Client

log = activity_logger("crm.onboarding")


async def start_onboarding_journey(client: Client, *, task_queue: str,
                                   onboarding: OnboardingInput) -> str:
    """Starts a signed contract's onboarding journey; once (its id is used once)."""
    workflow_id = onboarding_workflow_id(onboarding.contract_id)
    try:
        await client.start_workflow("OnboardingJourney", onboarding, id=workflow_id,
                                    task_queue=task_queue,
                                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError:
        pass
    return workflow_id


class OnboardingActivities:
    @classmethod
    def from_parts(cls, parts: ActivityParts, policy: OnboardingPolicy) -> OnboardingActivities:
        return cls(store=parts.store, policy=policy, client=parts.client)

    def __init__(self, *, store: Store, policy: OnboardingPolicy,
                 client: Client | None = None) -> None:
        self.store = store
        self.policy = policy
        self.client = client

    @activity.defn
    def load_onboarding_policy(self) -> OnboardingPolicy:
        return self.policy

    @activity.defn
    def open_onboarding(self, request: OpenOnboarding) -> OnboardingOpened:
        """Records the onboarding, finds the service lead (the active
        supervisor of the service group, else the owner's manager) and gives
        them the service group's task; the delivery is due `delivery_within`
        after signing (worked out once, here)."""
        o = request.onboarding
        with self.store.unit_of_work() as session:
            row = session.get(schema.Onboarding, o.contract_id)
            if row is not None:  # a retry of an opening that committed
                return OnboardingOpened(service_lead_id=row.service_lead_id,
                                        delivery_due_at=row.delivery_due_at)
            problems = []
            if session.get(schema.Customer, o.customer_id) is None:
                problems.append(f"unknown customer {o.customer_id!r}")
            owner = session.get(schema.Staff, o.owner_id)
            if owner is None:
                problems.append(f"unknown owner {o.owner_id!r}")
            if problems:
                raise ApplicationError(
                    f"onboarding of {o.contract_id!r} rejected: " + "; ".join(problems),
                    type="InvalidOnboarding", non_retryable=True)
            lead = session.scalars(select(schema.Staff).where(
                schema.Staff.role == "supervisor", schema.Staff.group == request.service_group,
                schema.Staff.active.is_(True)).order_by(schema.Staff.id)).first()
            if lead is None:
                lead = active_manager_above(session, owner)
            due = o.signed_at + request.delivery_within
            session.add(schema.Onboarding(
                contract_id=o.contract_id, customer_id=o.customer_id, owner_id=o.owner_id,
                service_lead_id=lead.id if lead else None, signed_at=o.signed_at,
                delivery_due_at=due, breached=False,
                status=OnboardingStage.awaiting_delivery.value))
            session.add(schema.Task(
                key=f"{request.workflow_id}:service_group", kind="service_group",
                entity_kind="onboarding", entity_id=o.contract_id,
                assignee_id=lead.id if lead else None, due_at=due, status="open",
                created_at=request.now))
            record_event(session, key=f"{request.workflow_id}:opened", journey=JOURNEY,
                         entity_id=o.contract_id, step="opened", at=request.now,
                         detail={"service_lead_id": lead.id if lead else None,
                                 "delivery_due_at": due.isoformat()})
            return OnboardingOpened(service_lead_id=lead.id if lead else None,
                                    delivery_due_at=due)

    @activity.defn
    def record_group_ready(self, request: GroupRecord) -> None:
        refuse_invalid({"link": limits.text_problem(request.link, limits.TEXT)})
        with self.store.unit_of_work() as session:
            row = _onboarding(session, request.contract_id)
            row.group_link, row.group_ready_at = request.link, request.now
            session.execute(update(schema.Task).where(
                schema.Task.key == f"{request.workflow_id}:service_group",
                schema.Task.status == "open").values(status="done", closed_at=request.now))
            record_event(session, key=f"{request.workflow_id}:group_ready", journey=JOURNEY,
                         entity_id=row.contract_id, step="group_ready", at=request.now)

    @activity.defn
    def record_delivery(self, request: DeliveryRecord) -> None:
        refuse_invalid({"by": limits.text_problem(request.by, limits.ID),
                        "note": limits.text_problem(request.note, limits.TEXT)})
        with self.store.unit_of_work() as session:
            row = _onboarding(session, request.contract_id)
            if row.delivered_at is not None:
                return
            row.delivered_at, row.delivered_by, row.delivery_note = (
                request.now, request.by, request.note)
            row.status = OnboardingStage.delivered.value
            on_time = request.now <= row.delivery_due_at
            record_event(session, key=f"{request.workflow_id}:delivered", journey=JOURNEY,
                         entity_id=row.contract_id, step="delivered", at=request.now,
                         detail={"by": request.by, "on_time": on_time})

    @activity.defn
    async def accept_on_delivery(self, request: DeliveryRecord) -> None:
        """Tells the contract's payment journey that the delivery was accepted
        (its acceptance milestones get their due dates); a contract whose
        journey has ended has nothing left to date."""
        if self.client is None:
            raise ApplicationError("no Temporal client to tell the payment journey",
                                   non_retryable=True)
        from temporalio.service import RPCError

        try:
            await self.client.get_workflow_handle(
                contract_workflow_id(request.contract_id)).signal(
                "accept", Accept(accepted_at=request.now))
        except RPCError as err:  # no such journey, or it has ended
            log.info("contract %s not told of the delivery: %s", request.contract_id, err)

    @activity.defn
    def escalate_delivery(self, request: DeliveryEscalation) -> EscalatedTo:
        key = f"{request.workflow_id}:delivery_escalated"
        with self.store.unit_of_work() as session:
            row = _onboarding(session, request.contract_id)
            done = session.scalar(select(schema.Escalation).where(schema.Escalation.key == key))
            if done is not None:
                return EscalatedTo(manager_id=done.to_staff_id)
            lead = session.get(schema.Staff, request.service_lead_id or row.owner_id)
            manager = active_manager_above(session, lead)
            row.breached = True
            row.status = OnboardingStage.escalated.value
            session.add(schema.Escalation(
                key=key, journey=JOURNEY, entity_id=row.contract_id, level=1,
                reason="first delivery not made within the deadline",
                from_staff_id=lead.id if lead else None,
                to_staff_id=manager.id if manager else None, at=request.now))
            record_event(session, key=key, journey=JOURNEY, entity_id=row.contract_id,
                         step="delivery_escalated", at=request.now,
                         detail={"manager_id": manager.id if manager else None})
            return EscalatedTo(manager_id=manager.id if manager else None)

    @activity.defn
    def record_onboarding_step(self, request: OnboardingStep) -> None:
        with self.store.unit_of_work() as session:
            row = _onboarding(session, request.contract_id)
            if request.step == "checked_in":
                row.checked_in_at = request.now
                row.status = OnboardingStage.completed.value
            record_event(session, key=f"{request.workflow_id}:{request.step}", journey=JOURNEY,
                         entity_id=row.contract_id, step=request.step, at=request.now)


    @activity.defn
    def hand_over_onboarding(self, request: ServiceLeadHandover) -> EscalatedTo:
        """A deactivated service lead's onboarding goes to another active
        supervisor of the service group, else to the nearest active manager."""
        with self.store.unit_of_work() as session:
            row = _onboarding(session, request.contract_id)
            if row.service_lead_id != request.from_staff_id:
                return EscalatedTo(manager_id=row.service_lead_id)  # a retry
            gone = session.get(schema.Staff, request.from_staff_id)
            lead = session.scalars(select(schema.Staff).where(
                schema.Staff.role == "supervisor", schema.Staff.group == self.policy.service_group,
                schema.Staff.active.is_(True), schema.Staff.id != request.from_staff_id)
                .order_by(schema.Staff.id)).first() or active_manager_above(session, gone)
            if lead is None:
                return EscalatedTo(manager_id=None)
            row.service_lead_id = lead.id
            session.execute(update(schema.Task).where(
                schema.Task.entity_kind == "onboarding", schema.Task.entity_id == row.contract_id,
                schema.Task.status == "open").values(assignee_id=lead.id))
            record_event(session, key=f"{request.workflow_id}:handover:{request.n}",
                         journey=JOURNEY, entity_id=row.contract_id, step="service_lead_changed",
                         at=request.now, detail={"from": request.from_staff_id, "to": lead.id})
            return EscalatedTo(manager_id=lead.id)


def _onboarding(session: Session, contract_id: str) -> schema.Onboarding:
    row = session.get(schema.Onboarding, contract_id)
    if row is None:
        raise ApplicationError(f"unknown onboarding {contract_id!r}",
                               type="UnknownOnboarding", non_retryable=True)
    return row


@entity_loader("onboarding")
def _onboarding_for_message(session: Session, contract_id: str) -> dict[str, Any] | None:
    row = session.get(schema.Onboarding, contract_id)
    if row is None:
        return None
    lead = session.get(schema.Staff, row.service_lead_id) if row.service_lead_id else None
    customer = session.get(schema.Customer, row.customer_id)
    return {
        "contract_id": row.contract_id,
        "delivery_due_at": row.delivery_due_at,
        "delivered_at": row.delivered_at,
        "group_link": row.group_link,
        "service_lead": {"id": lead.id, "name": lead.name} if lead else None,
        "customer": {"id": customer.id, "name": customer.name} if customer else None,
    }


def open_roles(session: Session, staff_id: str) -> list[str]:
    """The onboardings not yet completed whose service lead the staff member is."""
    return sorted(session.scalars(select(schema.Onboarding.contract_id).where(
        schema.Onboarding.service_lead_id == staff_id,
        schema.Onboarding.status != OnboardingStage.completed.value)))


def personal_data(session: Session, person: Person) -> Held:
    """The person's onboardings, for erasure: delivery notes and group links go."""
    return held_as_customer(session, person, schema.Onboarding.contract_id,
                            {"delivery_note": None, "group_link": None})
