"""A segment rule (`domain.segments`) as one SQL condition on the customers
table, and the statements of a refresh.

Every condition is a set: the customers whose orders, interactions or
interests meet it come from one grouped subquery, never customer by customer,
so ten rules over a million customers are ten scans, the same on SQLite and
PostgreSQL. Windows are instants (`now` minus the days) compared on indexed
columns, as in the RFM sweep.

Every condition is two-valued (true or false, never NULL), so `not` of a
field test keeps the customers whose field is empty.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    func,
    literal,
    not_,
    or_,
    select,
)

from domain import schema
from domain.money import to_minor
from domain.segments import (
    AllOf,
    AnyOf,
    Condition,
    CustomerField,
    Follows,
    Interactions,
    Not,
    Orders,
    TierIn,
)

customers = cast(Table, schema.Customer.__table__)
orders = cast(Table, schema.Order.__table__)
interactions = cast(Table, schema.Interaction.__table__)
interests = cast(Table, schema.CustomerInterest.__table__)


def members(condition: Condition, now: datetime) -> Select[Any]:
    """The ids of the customers who meet the condition at `now`."""
    return select(customers.c.id).where(where(condition, now))


def where(condition: Condition, now: datetime) -> ColumnElement[bool]:
    if isinstance(condition, AllOf):
        return and_(*(where(part, now) for part in condition.parts))
    if isinstance(condition, AnyOf):
        return or_(*(where(part, now) for part in condition.parts))
    if isinstance(condition, Not):
        return not_(where(condition.part, now))
    if isinstance(condition, TierIn):
        return _known(customers.c.tier, customers.c.tier.in_(condition.tiers))
    if isinstance(condition, CustomerField):
        return _field(condition)
    if isinstance(condition, Follows):
        return customers.c.id.in_(select(interests.c.customer_id)
                                  .where(interests.c.category.in_(condition.category)))
    if isinstance(condition, Interactions):
        return _interactions(condition, now)
    return _orders(condition, now)


def _known(column: Any, test: ColumnElement[bool]) -> ColumnElement[bool]:
    # NULL AND x is NULL unless x is false; `IS NOT NULL AND` makes it false.
    return and_(column.is_not(None), test)


def _field(condition: CustomerField) -> ColumnElement[bool]:
    column = customers.c[condition.name]
    if condition.missing is not None:
        return column.is_(None) if condition.missing else column.is_not(None)
    if condition.equals is not None:
        return _known(column, column == condition.equals)
    return _known(column, column.in_(condition.in_ or []))


def _interactions(condition: Interactions, now: datetime) -> ColumnElement[bool]:
    since = now - timedelta(days=condition.within_days)
    found = (select(interactions.c.customer_id)
             .where(interactions.c.customer_id.is_not(None), interactions.c.at >= since,
                    interactions.c.at < now)
             .group_by(interactions.c.customer_id)
             .having(func.count() >= condition.min_count))
    if condition.channel:
        found = found.where(interactions.c.channel.in_(condition.channel))
    return customers.c.id.in_(found)


def _orders(condition: Orders, now: datetime) -> ColumnElement[bool]:
    """Customers by their orders in the window. "At least one" (or "none") is
    a semi-join (anti-join) on the orders' (at, customer) index; a count or an
    amount groups the window's orders by customer: those whose figures meet the
    condition, or, when having no such order meets it too ("max_count": 2),
    everyone but those whose figures break it. The currency only matters to
    amounts."""
    since = now - timedelta(days=condition.within_days)
    window = [orders.c.at >= since, orders.c.at < now]
    if condition.category:
        window.append(orders.c.category.in_(condition.category))
    count, amount = func.count(), func.sum(orders.c.amount_minor)
    tests: list[ColumnElement[bool]] = []
    if condition.least > 1:
        tests.append(count >= condition.least)
    if condition.max_count is not None and condition.max_count > 0:
        tests.append(count <= condition.max_count)
    if condition.min_amount is not None:
        tests.append(amount >= to_minor(condition.min_amount, condition.currency))
    if condition.max_amount is not None:
        tests.append(amount <= to_minor(condition.max_amount, condition.currency))
    if condition.min_amount is not None or condition.max_amount is not None:
        window.append(orders.c.currency == condition.currency)
    any_order = select(literal(1)).where(orders.c.customer_id == customers.c.id,
                                         *window).exists()
    if condition.max_count == 0:
        return ~any_order  # bought none of it in the window
    if not tests:
        return any_order if condition.least else customers.c.id.is_not(None)
    per_customer = select(orders.c.customer_id).where(*window).group_by(orders.c.customer_id)
    if condition.admits_none():
        return customers.c.id.not_in(per_customer.having(not_(and_(*tests))))
    return customers.c.id.in_(per_customer.having(and_(*tests)))
