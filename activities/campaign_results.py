"""A campaign's results per arm, set-based: the customers who entered (in a
period, or ever), those with an order within the attribution window after
entering (converted, in whatever currency they paid), and the revenue of
those orders per currency. `crm campaign results` and `crm report` both
read them here."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, distinct, func, select
from sqlalchemy.orm import Session

from domain import schema
from domain.campaign_results import ArmResult
from domain.campaigns import HOLDOUT, CampaignDefinition
from domain.money import from_minor


def arm_results(session: Session, definition: CampaignDefinition, *,
                lo: datetime | None = None, hi: datetime | None = None) -> list[ArmResult]:
    """The hold-out first, then each variant; runs entered in [lo, hi) when given."""
    m, o = schema.CampaignMember, schema.Order
    runs: list[ColumnElement[bool]] = [m.campaign == definition.name]
    if lo is not None:
        runs.append(m.entered_at >= lo)
    if hi is not None:
        runs.append(m.entered_at < hi)
    entered = {a: int(n) for a, n in session.execute(
        select(m.arm, func.count()).where(*runs).group_by(m.arm)).all()}
    in_window = and_(o.customer_id == m.customer_id, o.at >= m.entered_at,
                     o.at < m.attributed_until)
    converted = {a: int(n) for a, n in session.execute(
        select(m.arm, func.count(distinct(m.id))).join(o, in_window).where(*runs)
        .group_by(m.arm)).all()}
    revenue: dict[str, dict[str, Decimal]] = {}
    for a, currency, minor in session.execute(
            select(m.arm, o.currency, func.sum(o.amount_minor)).join(o, in_window)
            .where(*runs).group_by(m.arm, o.currency)).all():
        revenue.setdefault(a, {})[currency] = from_minor(int(minor or 0), currency)
    arms = [HOLDOUT, *(v.name for v in definition.variants)]
    return [ArmResult(arm=a, customers=entered.get(a, 0), converted=converted.get(a, 0),
                      revenue=dict(sorted(revenue.get(a, {}).items())))
            for a in arms]
