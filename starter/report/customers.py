"""The customer KPIs of a period: new customers, retention, repurchase, churn
against its yearly health line, lifetime value by tier, and lead conversion by
source.

A customer is *active* at a moment when they bought in the 365 days before it
(the RFM sweep's year). Over a period [start, end):

- new customers: first order ever in the period;
- retention rate: of the customers active at the start, the share still active
  at the end (they bought again within the year); churn rate is the rest. A
  period shorter than a year has its churn also given as a yearly rate,
  ``1 − (1 − churn)^(365 / days)``, which is what the health line (under 5 %
  a year) is held against;
- repurchase rate (复购率): of the customers who bought in the period, the
  share who bought twice or more in it; the health line is over 30 %;
- lifetime value by tier: what each customer has paid to the end of the
  period — orders and contract payments (an overpayment held as credit is not
  revenue) — summed and averaged per current tier and currency;
- conversion by lead source: the leads received in the period (duplicates
  merged away not counted), and how many of them converted.

Each figure is one set-based query, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, case, distinct, func, literal, select, union_all
from sqlalchemy.orm import Session

from domain import schema
from domain.money import from_minor

ACTIVE_WINDOW = timedelta(days=365)
# The documents' health lines: churn under 5 % a year, repurchase over 30 %.
CHURN_LINE = 0.05
REPURCHASE_LINE = 0.30
NO_TIER = "none"


@dataclass
class TierValue:
    customers: int
    total: Decimal

    @property
    def average(self) -> Decimal:
        return (self.total / self.customers).quantize(self.total) if self.customers \
            else self.total


@dataclass
class SourceConversion:
    received: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.received if self.received else None


@dataclass
class CustomerFigures:
    days: int = 0
    new_customers: int = 0
    active_at_start: int = 0
    retained: int = 0
    buyers: int = 0
    repeat_buyers: int = 0
    # (tier, currency) -> value
    lifetime_value: dict[tuple[str, str], TierValue] = field(default_factory=dict)
    lead_sources: dict[str, SourceConversion] = field(default_factory=dict)

    @property
    def retention_rate(self) -> float | None:
        return self.retained / self.active_at_start if self.active_at_start else None

    @property
    def churned(self) -> int:
        return self.active_at_start - self.retained

    @property
    def churn_rate(self) -> float | None:
        return self.churned / self.active_at_start if self.active_at_start else None

    @property
    def yearly_churn_rate(self) -> float | None:
        churn = self.churn_rate
        if churn is None or not self.days:
            return None
        return 1 - (1 - churn) ** (365 / self.days)

    @property
    def churn_healthy(self) -> bool | None:
        yearly = self.yearly_churn_rate
        return None if yearly is None else yearly < CHURN_LINE

    @property
    def repurchase_rate(self) -> float | None:
        return self.repeat_buyers / self.buyers if self.buyers else None

    @property
    def repurchase_healthy(self) -> bool | None:
        rate = self.repurchase_rate
        return None if rate is None else rate > REPURCHASE_LINE


def customer_figures(session: Session, lo: datetime, hi: datetime) -> CustomerFigures:
    figures = CustomerFigures(days=(hi - lo).days)
    _new_customers(session, figures, lo, hi)
    _retention(session, figures, lo, hi)
    _repurchase(session, figures, lo, hi)
    _lifetime_value(session, figures, hi)
    _lead_sources(session, figures, lo, hi)
    return figures


def _new_customers(session: Session, figures: CustomerFigures, lo: datetime,
                   hi: datetime) -> None:
    o = schema.Order
    firsts = (select(o.customer_id).group_by(o.customer_id)
              .having(func.min(o.at) >= lo, func.min(o.at) < hi).subquery())
    figures.new_customers = session.scalar(select(func.count()).select_from(firsts)) or 0


def _active(at: datetime) -> Select[Any]:
    o = schema.Order
    return select(o.customer_id).where(o.at >= at - ACTIVE_WINDOW, o.at < at).distinct()


def _retention(session: Session, figures: CustomerFigures, lo: datetime,
               hi: datetime) -> None:
    o = schema.Order
    start = _active(lo).subquery()
    still = (select(literal(1)).where(o.customer_id == start.c.customer_id,
                                      o.at >= hi - ACTIVE_WINDOW, o.at < hi)
             .exists())
    active, retained = session.execute(
        select(func.count(), func.coalesce(func.sum(case((still, 1), else_=0)), 0))
        .select_from(start)).one()
    figures.active_at_start, figures.retained = int(active), int(retained)


def _repurchase(session: Session, figures: CustomerFigures, lo: datetime,
                hi: datetime) -> None:
    o = schema.Order
    per_buyer = (select(func.count().label("orders")).where(o.at >= lo, o.at < hi)
                 .group_by(o.customer_id).subquery())
    buyers, repeaters = session.execute(
        select(func.count(),
               func.coalesce(func.sum(case((per_buyer.c.orders >= 2, 1), else_=0)), 0))
        .select_from(per_buyer)).one()
    figures.buyers, figures.repeat_buyers = int(buyers), int(repeaters)


def _lifetime_value(session: Session, figures: CustomerFigures, hi: datetime) -> None:
    o, p, k, c = schema.Order, schema.Payment, schema.Contract, schema.Customer
    paid = union_all(
        select(o.customer_id.label("customer_id"), o.currency.label("currency"),
               o.amount_minor.label("minor")).where(o.at < hi),
        select(k.customer_id, p.currency,
               (p.amount_minor - func.coalesce(p.credit_minor, 0)))
        .join(k, k.id == p.contract_id).where(p.paid_at < hi),
    ).subquery()
    tier = func.coalesce(c.tier, NO_TIER)
    rows = session.execute(
        select(tier, paid.c.currency, func.count(distinct(paid.c.customer_id)),
               func.sum(paid.c.minor))
        .join(c, c.id == paid.c.customer_id).group_by(tier, paid.c.currency)).all()
    figures.lifetime_value = {
        (str(name), currency): TierValue(customers=int(n), total=from_minor(int(minor), currency))
        for name, currency, n, minor in sorted(rows)}


def _lead_sources(session: Session, figures: CustomerFigures, lo: datetime,
                  hi: datetime) -> None:
    lead = schema.Lead
    rows = session.execute(
        select(lead.source, func.count(),
               func.sum(case((lead.stage == "converted", 1), else_=0)))
        .where(lead.received_at >= lo, lead.received_at < hi, lead.stage != "merged")
        .group_by(lead.source)).all()
    figures.lead_sources = {source: SourceConversion(received=int(n), converted=int(won))
                            for source, n, won in sorted(rows)}
