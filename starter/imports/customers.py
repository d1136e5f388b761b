"""Importing customers, de-duplicated as lead intake does: by id, normalised
phone or e-mail, or company key, against the store and earlier rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from activities.store import Store
from activities.store.customers import CustomerRecord
from domain import schema
from domain.contact import company_key
from starter.imports.rows import (
    ImportReport,
    Outcome,
    Row,
    Status,
    Tick,
    parse_row,
)


def _customer_keys(customer: CustomerRecord) -> list[tuple[str, str]]:
    keys = [
        ("id", customer.id),
        ("phone", customer.phone),
        ("email", customer.email),
        ("company", company_key(customer.company) if customer.company else None),
    ]
    return [(label, value) for label, value in keys if value]


_CUSTOMER_COLUMNS = {
    "id": schema.Customer.id,
    "phone": schema.Customer.phone,
    "email": schema.Customer.email,
    "company": schema.Customer.company_key,
}


def import_customers(
    store: Store, rows: list[Row], *, now: datetime, dry_run: bool, tick: Tick
) -> ImportReport:
    report = ImportReport()
    seen: dict[tuple[str, str], tuple[str, int]] = {}  # (key, value) -> (customer id, line)
    for row in rows:
        outcome = _import_customer(store, row, seen, now=now, dry_run=dry_run)
        report.outcomes.append(outcome)
        tick(outcome)
    return report


def _import_customer(
    store: Store,
    row: Row,
    seen: dict[tuple[str, str], tuple[str, int]],
    *,
    now: datetime,
    dry_run: bool,
) -> Outcome:
    customer = parse_row(row, CustomerRecord)
    if isinstance(customer, str):
        return Outcome(row.line, row.entity_id, Status.bad, customer)
    keys = _customer_keys(customer)
    for key in keys:
        if key in seen:
            other, line = seen[key]
            return Outcome(
                row.line,
                customer.id,
                Status.duplicate,
                f"duplicate of {other} (line {line}; same {_what(key)})",
            )
    with store.unit_of_work() as session:
        if customer.owner_id and session.get(schema.Staff, customer.owner_id) is None:
            return Outcome(
                row.line, customer.id, Status.bad, f"owner {customer.owner_id!r} is not staff"
            )
        match = session.execute(
            select(schema.Customer.id, *[_CUSTOMER_COLUMNS[label] for label, _ in keys])
            .where(or_(*[_CUSTOMER_COLUMNS[label] == value for label, value in keys]))
            .order_by(schema.Customer.created_at, schema.Customer.id)
            .limit(1)
        ).first()
        if match is not None:
            same = next(key for key, found in zip(keys, match[1:], strict=True) if found == key[1])
            return Outcome(
                row.line,
                customer.id,
                Status.duplicate,
                f"duplicate of {match[0]} (same {_what(same)})",
            )
        if not dry_run:
            values = customer.model_dump()
            values["company_key"] = company_key(customer.company) if customer.company else None
            session.add(schema.Customer(**values, created_at=now))
    for key in keys:
        seen[key] = (customer.id, row.line)
    return Outcome(row.line, customer.id, Status.valid if dry_run else Status.imported)


def _what(key: tuple[str, str]) -> str:
    label, value = key
    return "id" if label == "id" else f"{label} {value}"
