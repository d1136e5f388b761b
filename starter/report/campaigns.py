"""Campaigns in the report: for each campaign with runs entered in the
period, per arm the customers, those converted within the attribution window
(an order in any currency) and the conversion rate, each variant's lift over
the hold-out with its 95 % confidence interval as `crm campaign results`
computes it, and the revenue per customer in each currency the orders were
paid in (never converted to one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import distinct, select
from sqlalchemy.orm import Session

from activities.campaign_results import arm_results
from domain import schema
from domain.campaign_results import ArmResult, Lift, lift
from domain.campaigns import HOLDOUT, CampaignDefinition


@dataclass
class CampaignResult:
    name: str
    arms: list[ArmResult] = field(default_factory=list)

    @property
    def holdout(self) -> ArmResult:
        return next(a for a in self.arms if a.arm == HOLDOUT)

    def lifts(self) -> dict[str, Lift | None]:
        return {a.arm: lift(a, self.holdout) for a in self.arms if a.arm != HOLDOUT}


def campaign_figures(session: Session, lo: datetime, hi: datetime) -> list[CampaignResult]:
    """Each campaign with a run entered in [lo, hi), by name."""
    m = schema.CampaignMember
    names = list(session.scalars(select(distinct(m.campaign)).where(
        m.entered_at >= lo, m.entered_at < hi).order_by(m.campaign)))
    found = []
    for name in names:
        row = session.get(schema.Campaign, name)
        if row is None:
            continue
        definition = CampaignDefinition.model_validate(row.definition)
        found.append(CampaignResult(name=name, arms=arm_results(session, definition,
                                                                lo=lo, hi=hi)))
    return found


def _arm(a: ArmResult, found: Lift | None) -> str:
    rate = "—" if a.rate is None else f"{a.rate:.1%}"
    line = f"{a.arm} {a.converted}/{a.customers} converted ({rate})"
    if found is not None:
        line += (f", lift {found.difference:+.1%} (95% CI {found.low:+.1%} to "
                 f"{found.high:+.1%}, p {found.p_value:.3f})")
    per = ", ".join(f"{v} {k}" for k, v in a.revenue_per_customer.items())
    return line + (f", revenue / customer {per}" if per else "")


def campaign_rows(results: list[CampaignResult]) -> list[tuple[str, str]]:
    """One row per campaign: the hold-out, then each variant with its lift."""
    rows = []
    for result in results:
        lifts = result.lifts()
        rows.append((f"campaign {result.name}", "; ".join(
            _arm(a, lifts.get(a.arm)) for a in result.arms if a.customers)))
    return rows
