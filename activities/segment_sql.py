"""A segment rule (`domain.segments`) as one SQL condition on the customers
table, and the statements of a refresh.

Every condition is a set: the customers whose orders, interactions or
interests meet it come from one grouped subquery, never customer by customer,
so ten rules over a million customers are ten scans, the same on SQLite and
PostgreSQL. Windows are instants (`now` minus the days) compared on indexed
columns, as in the RFM sweep.

Every condition is two-valued (true or false, never NULL), so `not` of a
field test keeps the customers whose field is empty.

A daily refresh evaluates the rule only for its candidates (`candidates`):
a customer's membership can change between two refreshes only if a fact the
rule reads changed (the store stamps the customer, migration 0017) or a
window slid over one of their orders or interactions. Everyone else's is
what the previous refresh found.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    Table,
    and_,
    func,
    literal,
    not_,
    or_,
    select,
    union,
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
stamps = cast(Table, schema.CustomerFactStamp.__table__)


def members(condition: Condition, now: datetime, among: Table | None = None) -> Select[Any]:
    """The ids of the customers who meet the condition at `now` (of those in
    the table `among` only, when given)."""
    if among is None:
        return select(customers.c.id).where(where(condition, now))
    return (select(customers.c.id)
            .join(among, among.c.customer_id == customers.c.id)
            .where(where(condition, now, correlated=True)))


def candidates(condition: Condition, *, since: datetime, now: datetime,
               facts_since: datetime) -> CompoundSelect:
    """The customers whose membership can differ between a refresh at `since`
    and one at `now` (not before it): those whose facts changed since
    `facts_since` (the store's clock), and, for each window in the rule, those
    with an order or interaction dated in the slice that slid out of it
    (``[since - days, now - days)``) or into it (``[since, now)``). For anyone
    else every condition reads the same facts at both times."""
    found: list[Select[Any]] = [
        select(stamps.c.customer_id).where(stamps.c.changed_at >= facts_since)]
    slices: set[tuple[Table, datetime, datetime, tuple[str, ...]]] = set()
    for leaf in _windowed(condition):
        table = orders if isinstance(leaf, Orders) else interactions
        kinds = tuple(sorted((leaf.category if isinstance(leaf, Orders) else leaf.channel)
                             or ()))
        span = timedelta(days=leaf.within_days)
        slices.add((table, since - span, now - span, kinds))
        slices.add((table, since, now, kinds))
    for table, start, end, kinds in sorted(slices, key=lambda s: (s[0].name, s[1:])):
        dated = select(table.c.customer_id).where(table.c.customer_id.is_not(None),
                                                 table.c.at >= start, table.c.at < end)
        if kinds:
            kind = table.c.category if table is orders else table.c.channel
            dated = dated.where(kind.in_(kinds))
        found.append(dated)
    return union(*found)


def _windowed(condition: Condition) -> list[Orders | Interactions]:
    if isinstance(condition, AllOf | AnyOf):
        return [leaf for part in condition.parts for leaf in _windowed(part)]
    if isinstance(condition, Not):
        return _windowed(condition.part)
    return [condition] if isinstance(condition, Orders | Interactions) else []


def where(condition: Condition, now: datetime, *, correlated: bool = False) -> ColumnElement[bool]:
    """The condition on a customers row. Set-based, each grouped subquery
    reads its whole window once; `correlated`, it reads the customer's own
    orders or contacts (by index), which is cheaper for a few candidates."""
    if isinstance(condition, AllOf):
        return and_(*(where(part, now, correlated=correlated) for part in condition.parts))
    if isinstance(condition, AnyOf):
        return or_(*(where(part, now, correlated=correlated) for part in condition.parts))
    if isinstance(condition, Not):
        return not_(where(condition.part, now, correlated=correlated))
    if isinstance(condition, TierIn):
        return _known(customers.c.tier, customers.c.tier.in_(condition.tiers))
    if isinstance(condition, CustomerField):
        return _field(condition)
    if isinstance(condition, Follows):
        if correlated:
            return select(literal(1)).where(interests.c.customer_id == customers.c.id,
                                            interests.c.category.in_(condition.category)).exists()
        return customers.c.id.in_(select(interests.c.customer_id)
                                  .where(interests.c.category.in_(condition.category)))
    if isinstance(condition, Interactions):
        return _interactions(condition, now, correlated)
    return _orders(condition, now, correlated)


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


def _interactions(condition: Interactions, now: datetime,
                  correlated: bool) -> ColumnElement[bool]:
    since = now - timedelta(days=condition.within_days)
    found = (select(interactions.c.customer_id)
             .where(interactions.c.customer_id.is_not(None), interactions.c.at >= since,
                    interactions.c.at < now)
             .group_by(interactions.c.customer_id)
             .having(func.count() >= condition.min_count))
    if condition.channel:
        found = found.where(interactions.c.channel.in_(condition.channel))
    if correlated:
        return found.where(interactions.c.customer_id == customers.c.id).exists()
    return customers.c.id.in_(found)


def _orders(condition: Orders, now: datetime, correlated: bool) -> ColumnElement[bool]:
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
    if correlated:  # the same, as (NOT) EXISTS of the customer's own figures
        own = per_customer.where(orders.c.customer_id == customers.c.id)
        if condition.admits_none():
            return ~own.having(not_(and_(*tests))).exists()
        return own.having(and_(*tests)).exists()
    if condition.admits_none():
        return customers.c.id.not_in(per_customer.having(not_(and_(*tests))))
    return customers.c.id.in_(per_customer.having(and_(*tests)))
