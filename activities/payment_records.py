"""The payment activities' reads and writes of the store: the contract row,
its milestones and schedule, finance staff and owner candidates, money values
kept beside a row, and what a retried payment answered the first time. Also
the contract as a message template sees it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.logs import activity_logger
from activities.message_records import entity_loader
from activities.store.erasure import Held, Person, held_as_customer
from domain import schema
from domain.money import from_minor
from domain.payments import (
    Milestone,
    MilestoneState,
    OwnerCandidate,
    PaymentPolicy,
    PaymentRequest,
    PaymentResult,
    Schedule,
    milestone_actions,
)

log = activity_logger("crm.payments")


def get_contract(session: Session, contract_id: str) -> schema.Contract:
    contract = session.get(schema.Contract, contract_id)
    if contract is None:
        raise ApplicationError(f"unknown contract {contract_id!r}", type="UnknownContract",
                               non_retryable=True)
    return contract


def attempt_key(request: PaymentRequest) -> str | None:
    """What names this call across its retries: the request's own key when the
    journey gives one, else the workflow run and the activity's id in it (the
    same for every attempt, different for every other call). None outside an
    activity."""
    if request.key:
        return request.key
    try:
        info = activity.info()
    except RuntimeError:
        return None
    return f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"


def recorded_payment(session: Session, contract: schema.Contract, event_key: str,
                     attempt: str | None) -> PaymentResult:
    """The answer for a reference already recorded: this call's own earlier
    attempt gets that attempt's result again, anything else is a duplicate."""
    detail = session.scalar(select(schema.JourneyEvent.detail)
                            .where(schema.JourneyEvent.key == event_key)) or {}
    if attempt is not None and detail.get("recorded_by") == attempt and "result" in detail:
        log.info("contract %s: payment %s was recorded by an earlier attempt of this call",
                 contract.id, detail.get("reference"))
        return PaymentResult.model_validate(detail["result"])
    return PaymentResult(duplicate=True, milestones=milestone_states(session, contract))


def active_finance(session: Session) -> list[str]:
    return list(session.scalars(
        select(schema.Staff.id).where(schema.Staff.role == "finance",
                                      schema.Staff.active.is_(True))
        .order_by(schema.Staff.id)))


def owner_candidates(session: Session) -> list[OwnerCandidate]:
    """Active reps with their load: the contracts they own that are still open."""
    load: dict[str, int] = {owner_id: n for owner_id, n in session.execute(
        select(schema.Contract.owner_id, func.count())
        .where(schema.Contract.finance_status.not_in(["paid", "cancelled"]))
        .group_by(schema.Contract.owner_id))}
    reps = session.scalars(select(schema.Staff).where(schema.Staff.role == "rep",
                                                      schema.Staff.active.is_(True)))
    return [OwnerCandidate(staff_id=rep.id, regions=frozenset(rep.regions or ()),
                           product_lines=frozenset(rep.product_lines or ()),
                           open_contracts=load.get(rep.id, 0), active=rep.active)
            for rep in reps]


def milestone_rows(session: Session, contract_id: str) -> list[schema.PaymentMilestone]:
    return list(session.scalars(
        select(schema.PaymentMilestone).where(schema.PaymentMilestone.contract_id == contract_id)
        .order_by(schema.PaymentMilestone.seq)))


def milestone_states(session: Session, contract: schema.Contract) -> list[Milestone]:
    return [
        Milestone(
            seq=row.seq, name=row.name, percent=Decimal(row.percent),
            amount=from_minor(row.amount_minor, contract.currency),
            paid=from_minor(row.paid_minor, contract.currency),
            # The column keeps one of the model's literals as text; the model
            # checks it.
            relative_to=row.relative_to,  # type: ignore[arg-type]
            due_days=row.due_days,
            due_date=date.fromisoformat(row.due_date) if row.due_date else None,
            overdue_at=row.overdue_at, state=MilestoneState(row.state),
        )
        for row in milestone_rows(session, contract.id)
    ]


def contract_schedule(session: Session, contract: schema.Contract, policy: PaymentPolicy,
                      now: Any) -> Schedule:
    milestones = milestone_states(session, contract)
    actions = [
        action
        for m in milestones
        if m.due_date is not None and m.state is not MilestoneState.paid
        for action in milestone_actions(m, zone=contract.timezone, policy=policy, now=now)
    ]
    return Schedule(milestones=milestones, actions=sorted(actions, key=lambda a: a.at),
                    timezone=contract.timezone)


def add_value(session: Session, model: Any, key: dict[str, str], currency: str,
              amount_minor: int, now: Any, column: str) -> None:
    row = session.get(model, (*key.values(), currency))
    if row is None:
        row = model(**key, currency=currency, updated_at=now, **{column: 0})
        session.add(row)
        session.flush()
    setattr(row, column, getattr(row, column) + amount_minor)
    row.updated_at = now


@entity_loader("contract")
def _contract_for_message(session: Session, contract_id: str) -> dict[str, Any] | None:
    contract = session.get(schema.Contract, contract_id)
    if contract is None:
        return None
    owner = session.get(schema.Staff, contract.owner_id)
    customer = session.get(schema.Customer, contract.customer_id)
    return {
        "id": contract.id,
        "currency": contract.currency,
        "amount": from_minor(contract.amount_minor, contract.currency),
        "paid": from_minor(contract.paid_minor, contract.currency),
        "outstanding": from_minor(max(contract.amount_minor - contract.paid_minor, 0),
                                  contract.currency),
        "credit": from_minor(contract.credit_minor, contract.currency),
        "finance_status": contract.finance_status,
        "owner": {"id": owner.id, "name": owner.name} if owner else None,
        "customer": {"id": customer.id, "name": customer.name} if customer else None,
        "milestones": [
            {"seq": m.seq, "name": m.name, "amount": m.amount, "paid": m.paid,
             "outstanding": m.outstanding, "due_date": m.due_date, "state": m.state.value}
            for m in milestone_states(session, contract)
        ],
    }


def open_roles(session: Session, staff_id: str) -> list[str]:
    """The contracts neither paid nor cancelled that the staff member owns."""
    return sorted(session.scalars(select(schema.Contract.id).where(
        schema.Contract.owner_id == staff_id,
        schema.Contract.finance_status.not_in(["paid", "cancelled"]))))


def personal_data(session: Session, person: Person) -> Held:
    """The person's contracts, for erasure: ids, money and dates stay."""
    return held_as_customer(session, person, schema.Contract.id)
