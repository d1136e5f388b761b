"""The opportunity activities' reads and writes of the store: the opportunity
row, its customer's time zone, the stage history, who holds which open
opportunity; also the opportunity as a message template sees it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from temporalio.exceptions import ApplicationError

from activities.message_records import entity_loader
from activities.store.erasure import TOMBSTONE, Held, Person, changed
from domain import schema
from domain.money import from_minor
from domain.opportunities import CLOSED, OpportunityStage

OPEN_STAGES = [s.value for s in OpportunityStage if s not in CLOSED]


def get_opportunity(session: Session, opportunity_id: str) -> schema.Opportunity:
    row = session.get(schema.Opportunity, opportunity_id)
    if row is None:
        raise ApplicationError(f"unknown opportunity {opportunity_id!r}",
                               type="UnknownOpportunity", non_retryable=True)
    return row


def customer_zone(session: Session, row: schema.Opportunity, default: str) -> str:
    customer = session.get(schema.Customer, row.customer_id) if row.customer_id else None
    return (customer.timezone if customer else None) or default


def record_stage_change(session: Session, *, key: str, row: schema.Opportunity,
                   from_stage: str | None, stage: str, by: str | None, note: str | None,
                   at: Any) -> None:
    if session.scalar(select(schema.OpportunityStageChange.id)
                      .where(schema.OpportunityStageChange.key == key)):
        return
    session.add(schema.OpportunityStageChange(key=key, opportunity_id=row.id,
                                              from_stage=from_stage, stage=stage, by=by,
                                              note=note, at=at))


@entity_loader("opportunity")
def _opportunity_for_message(session: Session, opportunity_id: str) -> dict[str, Any] | None:
    row = session.get(schema.Opportunity, opportunity_id)
    if row is None:
        return None
    owner = session.get(schema.Staff, row.owner_id) if row.owner_id else None
    customer = session.get(schema.Customer, row.customer_id) if row.customer_id else None

    def money(minor: int | None) -> Decimal | None:
        return None if minor is None else from_minor(minor, row.currency)

    return {
        "id": row.id,
        "name": row.name,
        "stage": row.stage,
        "amount": money(row.amount_minor),
        "quote_amount": money(row.quote_amount_minor),
        "currency": row.currency,
        "close_date": row.close_date,
        "owner": {"id": owner.id, "name": owner.name} if owner else None,
        "customer": {"id": customer.id, "name": customer.name} if customer else None,
    }


def open_roles(session: Session, staff_id: str) -> list[str]:
    """The open opportunities the staff member owns on a journey (one opened
    before the pipeline had a journey has no stage entry time and none to tell)."""
    return sorted(session.scalars(select(schema.Opportunity.id).where(
        schema.Opportunity.owner_id == staff_id, schema.Opportunity.stage.in_(OPEN_STAGES),
        schema.Opportunity.stage_entered_at.is_not(None))))


def personal_data(session: Session, person: Person) -> Held:
    """The person's opportunities (as a customer, or from their leads), for
    erasure: a name and notes may name them; amounts and stages stay."""
    whose: list[ColumnElement[bool]] = [schema.Opportunity.lead_id.in_(person.lead_ids)]
    if person.customer_id is not None:
        whose.append(schema.Opportunity.customer_id == person.customer_id)
    ids = list(session.scalars(select(schema.Opportunity.id).where(or_(*whose))))
    return Held(ids=ids, rows={
        "opportunities": changed(session.execute(
            update(schema.Opportunity).where(schema.Opportunity.id.in_(ids))
            .values(name=TOMBSTONE, lost_note=None))),
        "opportunity_stage_changes": changed(session.execute(
            update(schema.OpportunityStageChange)
            .where(schema.OpportunityStageChange.opportunity_id.in_(ids),
                   schema.OpportunityStageChange.note.is_not(None))
            .values(note=None))),
    })
