"""Erasure on request: a customer's or a lead's personal data replaced by a
tombstone in every table, their consent rows removed, and the erasure
recorded (whom, by whom, when, why, and which journeys' histories still hold
encrypted copies).

Ids, money, dates, stages and counts stay, so the books and the KPIs of any
period add up as before. What goes: names, phone numbers, e-mail addresses,
companies, what they asked for and every free text written about them
(contact notes, ticket subjects and descriptions, resolutions, rating
comments, opportunity and onboarding notes, NPS reasons), and any copy of
those in the journal's JSON (the frozen copy of a record a message was
rendered from, a rejected signal's payload).

Each journey's own records are its to find and scrub: its registry entry
names a function `(session, Person) -> Held` (`JourneyEntry.erasure`), so a
journey added to the registry is erased without a change here. The customer,
the lead, their interactions and consent, and the journal are done here.

The send path asks `is_erased` and refuses such a recipient with the reason
`erased`; the caller ends the person's open journeys (`workflow_ids`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from activities.store.engine import Store
from domain import schema
from domain.registry import JOURNEYS, load

TOMBSTONE = "erased"
# The entity kinds erased here; every other journey's entry names its own part.
CORE_ENTITY_KINDS = frozenset({"customer", "lead"})


class ErasureError(Exception):
    """An erasure that cannot be done as asked (no such person, no reason)."""


@dataclass
class Erased:
    """What an erasure did: the journeys that concern the person (open ones are
    to be ended; every one's history keeps encrypted copies until the
    namespace's retention ends) and the rows it changed, by table."""

    subject_kind: str
    subject_id: str
    workflow_ids: list[str]
    rows: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Person:
    """Whom an erasure is about: a customer with the leads that became them,
    or a lead alone (`customer_id` None); `values` are their names and contact
    details as the store holds them, to be looked for in copies."""

    customer_id: str | None
    lead_ids: tuple[str, ...]
    values: frozenset[str]


@dataclass
class Held:
    """What one journey holds about a person: the entity ids of its journeys
    about them, and the rows whose free text it tombstoned, by table."""

    ids: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def is_erased(session: Session, kind: str, subject_id: str) -> bool:
    return session.scalar(select(schema.Erasure.id).where(
        schema.Erasure.subject_kind == kind, schema.Erasure.subject_id == subject_id
    ).limit(1)) is not None


def erase_customer(store: Store, customer_id: str, *, reason: str, by: str,
                   now: datetime) -> Erased:
    """Erases a customer, with the leads that became them."""
    _check(reason, by)
    with store.unit_of_work() as session:
        customer = session.get(schema.Customer, customer_id)
        if customer is None:
            raise ErasureError(f"no customer {customer_id!r} in the store")
        leads = list(session.scalars(select(schema.Lead)
                                     .where(schema.Lead.customer_id == customer_id)))
        lead_ids = [lead.id for lead in leads]
        person = Person(customer_id, tuple(lead_ids),
                        frozenset(_personal_values([customer, *leads])))
        held = _held_by_journeys(session, person)
        erased = Erased(subject_kind="customer", subject_id=customer_id,
                        workflow_ids=_journeys({"customer": [customer_id], "lead": lead_ids}
                                               | {kind: h.ids for kind, h in held.items()}))
        _tombstone_customer(session, customer)
        for lead in leads:
            _tombstone_lead(session, lead)
        rows = erased.rows
        rows["customers"], rows["leads"] = 1, len(leads)
        rows["interactions"] = _count(session.execute(
            update(schema.Interaction)
            .where(or_(schema.Interaction.customer_id == customer_id,
                       schema.Interaction.lead_id.in_(lead_ids)))
            .values(note=None)))
        for part in held.values():
            rows |= part.rows
        subjects = [("customer", customer_id), *(("lead", i) for i in lead_ids)]
        rows["consent"] = _remove_consent(session, subjects)
        entities = [customer_id, *lead_ids, *(i for part in held.values() for i in part.ids)]
        rows |= _scrub_journal(session, set(person.values), entities=entities,
                               recipients=subjects)
        _record(session, erased, reason=reason, by=by, now=now)
        return erased


def erase_lead(store: Store, lead_id: str, *, reason: str, by: str, now: datetime) -> Erased:
    """Erases a lead (the customer it became, if any, is erased on its own)."""
    _check(reason, by)
    with store.unit_of_work() as session:
        lead = session.get(schema.Lead, lead_id)
        if lead is None:
            raise ErasureError(f"no lead {lead_id!r} in the store")
        person = Person(None, (lead_id,), frozenset(_personal_values([lead])))
        held = _held_by_journeys(session, person)
        erased = Erased(subject_kind="lead", subject_id=lead_id,
                        workflow_ids=_journeys({"lead": [lead_id]}
                                               | {kind: h.ids for kind, h in held.items()}))
        _tombstone_lead(session, lead)
        rows = erased.rows
        rows["leads"] = 1
        rows["interactions"] = _count(session.execute(
            update(schema.Interaction).where(schema.Interaction.lead_id == lead_id)
            .values(note=None)))
        for part in held.values():
            rows |= part.rows
        rows["consent"] = _remove_consent(session, [("lead", lead_id)])
        entities = [lead_id, *(i for part in held.values() for i in part.ids)]
        rows |= _scrub_journal(session, set(person.values), entities=entities,
                               recipients=[("lead", lead_id)])
        _record(session, erased, reason=reason, by=by, now=now)
        return erased


# -- helpers -------------------------------------------------------------------------


def _journeys(entities: dict[str, list[str]]) -> list[str]:
    """The workflow ids of every registered journey about one of `entities`
    (entity kind -> ids): a journey added to the registry about a customer,
    a lead, a contract… is found without a change here."""
    return [entry.workflow_id(entity_id) for entry in JOURNEYS
            for entity_id in entities.get(entry.entity_kind, [])]


def _held_by_journeys(session: Session, person: Person) -> dict[str, Held]:
    """Each journey's records about the person, their free text tombstoned by
    the journey's own part, by entity kind."""
    return {entry.entity_kind: load(entry.erasure)(session, person)
            for entry in JOURNEYS if entry.erasure}


def unknown_entity_kinds() -> list[str]:
    """Journeys about something an erasure does not look up (said when erasing)."""
    return sorted({entry.entity_kind for entry in JOURNEYS if not entry.erasure}
                  - CORE_ENTITY_KINDS)


def _check(reason: str, by: str) -> None:
    if not reason.strip():
        raise ErasureError("an erasure needs a reason (kept with the record of it)")
    if not by.strip():
        raise ErasureError("an erasure needs the name of who asks for it")


def changed(result: Any) -> int:
    """The rows an UPDATE or DELETE changed (for `Held.rows`)."""
    return int(getattr(result, "rowcount", 0) or 0)


_count = changed


def held_as_customer(session: Session, person: Person, id_column: Any,
                     cleared: dict[str, None] | None = None) -> Held:
    """A journey's part for records that name the person only by their
    `customer_id`: the ids in `id_column` of their rows, with the `cleared`
    columns emptied and counted under the table's name."""
    if person.customer_id is None:
        return Held()
    model = id_column.class_
    theirs = model.customer_id == person.customer_id
    held = Held(ids=list(session.scalars(select(id_column).where(theirs))))
    if cleared:
        held.rows[model.__tablename__] = changed(session.execute(
            update(model).where(theirs).values(**cleared)))
    return held


def scrub_details(rows: Iterable[Any], values: frozenset[str] | set[str],
                  attribute: str = "detail") -> int:
    """Replaces every string in each row's JSON `attribute` that holds one of
    the person's `values` by the tombstone; the rows changed."""
    scrubbed = 0
    for row in rows:
        value = getattr(row, attribute)
        if value is not None and _holds(value, set(values)):
            setattr(row, attribute, _scrub(value, set(values)))
            scrubbed += 1
    return scrubbed


def _personal_values(rows: Iterable[schema.Customer | schema.Lead]) -> set[str]:
    """The person's names and contact details as the store holds them, in the
    forms a copy may hold them (a phone in E.164 and without its +86)."""
    values: set[str] = set()
    for row in rows:
        for value in (row.name, row.phone, row.email, row.company):
            if value and value != TOMBSTONE:
                values.add(value)
        if row.phone and row.phone.startswith("+86"):
            values.add(row.phone[3:])
    return values


def _tombstone_customer(session: Session, customer: schema.Customer) -> None:
    customer.name = TOMBSTONE
    customer.phone = customer.email = customer.company = customer.company_key = None


def _tombstone_lead(session: Session, lead: schema.Lead) -> None:
    lead.name = TOMBSTONE
    lead.phone = lead.email = lead.company = lead.company_key = lead.need = None


def _remove_consent(session: Session, subjects: list[tuple[str, str]]) -> int:
    removed = 0
    for kind, subject_id in subjects:
        removed += _count(session.execute(delete(schema.Consent).where(
            schema.Consent.subject_kind == kind, schema.Consent.subject_id == subject_id)))
    return removed


def _scrub(value: Any, values: set[str]) -> Any:
    """`value` (decoded JSON) with every string that holds a personal value
    replaced by the tombstone."""
    if isinstance(value, str):
        return TOMBSTONE if any(v in value for v in values) else value
    if isinstance(value, dict):
        return {k: _scrub(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, values) for v in value]
    return value


def _holds(value: Any, values: set[str]) -> bool:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return any(v in text for v in values)


def _scrub_journal(session: Session, values: set[str], *, entities: list[str],
                   recipients: list[tuple[str, str]]) -> dict[str, int]:
    """Copies of the person's details in the journal's JSON and in touch
    outcomes (a failed delivery names its address), for the records that
    concern them."""
    counts = {"journey_events": 0, "signal_rejections": 0, "touches": 0}
    if not values:
        return counts
    for event in session.scalars(select(schema.JourneyEvent)
                                 .where(schema.JourneyEvent.entity_id.in_(entities),
                                        schema.JourneyEvent.detail.is_not(None))):
        if _holds(event.detail, values):
            event.detail = _scrub(event.detail, values)
            counts["journey_events"] += 1
    for rejection in session.scalars(select(schema.SignalRejection)
                                     .where(schema.SignalRejection.entity_id.in_(entities))):
        if _holds(rejection.payload, values):
            rejection.payload = _scrub(rejection.payload, values)
            counts["signal_rejections"] += 1
    for kind, subject_id in recipients:
        for touch in session.scalars(select(schema.Touch).where(
                schema.Touch.recipient_kind == kind, schema.Touch.recipient_id == subject_id,
                schema.Touch.reason.is_not(None))):
            if touch.reason and _holds(touch.reason, values):
                touch.reason = TOMBSTONE
                counts["touches"] += 1
    return counts


def _record(session: Session, erased: Erased, *, reason: str, by: str, now: datetime) -> None:
    session.add(schema.Erasure(subject_kind=erased.subject_kind, subject_id=erased.subject_id,
                               reason=reason, erased_by=by, erased_at=now,
                               workflow_ids=erased.workflow_ids))
