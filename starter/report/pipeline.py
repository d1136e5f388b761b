"""The sales pipeline and onboarding figures of a period, from the store.

- pipeline value by stage: the open opportunities when the report is built
  (needs analysis, proposal, negotiation), counted and their expected amounts
  summed per stage and currency;
- stage-to-stage conversion: of the opportunities opened in the period, how
  many reached each stage (from their stage history; reaching a later stage,
  a skip included, counts as having passed the earlier ones, and won counts
  as past negotiation), and the share of each stage's that reached the next;
- win rate: of the opportunities closed in the period, the share won;
- average deal cycle: opened to won, over the opportunities won in the period;
- lost reasons: the opportunities lost in the period per reason code, most first;
- onboarding on time: of the onboardings whose first delivery fell due in the
  period (and is due by the time the report is built), the share delivered by
  its deadline.

Each is a set-based query, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from domain import schema
from domain.money import from_minor

PIPELINE = ("needs_analysis", "proposal", "negotiation")
REACHED = (*PIPELINE, "won")
RANK = {stage: n for n, stage in enumerate(REACHED)}


@dataclass
class StageValue:
    opportunities: int
    total: Decimal


@dataclass
class PipelineFigures:
    # (stage, currency) -> open opportunities and their expected amount
    value_by_stage: dict[tuple[str, str], StageValue] = field(default_factory=dict)
    # stage -> opportunities opened in the period that reached it
    reached: dict[str, int] = field(default_factory=dict)
    won: int = 0
    lost: int = 0
    cycle_total: timedelta = timedelta(0)
    lost_reasons: list[tuple[str, int]] = field(default_factory=list)
    onboardings_due: int = 0
    onboardings_on_time: int = 0

    def conversion(self, stage: str) -> float | None:
        """The share of the opportunities that reached `stage` and reached the next."""
        reached = self.reached.get(stage, 0)
        following = REACHED[RANK[stage] + 1]
        return self.reached.get(following, 0) / reached if reached else None

    @property
    def win_rate(self) -> float | None:
        closed = self.won + self.lost
        return self.won / closed if closed else None

    @property
    def average_cycle(self) -> timedelta | None:
        return self.cycle_total / self.won if self.won else None

    @property
    def onboarding_on_time_rate(self) -> float | None:
        return self.onboardings_on_time / self.onboardings_due if self.onboardings_due else None


def pipeline_figures(session: Session, lo: datetime, hi: datetime,
                     now: datetime) -> PipelineFigures:
    figures = PipelineFigures()
    _value_by_stage(session, figures)
    _reached(session, figures, lo, hi)
    _closed(session, figures, lo, hi)
    _onboarding(session, figures, lo, hi, now)
    return figures


def _value_by_stage(session: Session, figures: PipelineFigures) -> None:
    o = schema.Opportunity
    rows = session.execute(
        select(o.stage, o.currency, func.count(), func.coalesce(func.sum(o.amount_minor), 0))
        .where(o.stage.in_(PIPELINE)).group_by(o.stage, o.currency)).all()
    figures.value_by_stage = {
        (stage, currency): StageValue(opportunities=n, total=from_minor(int(total or 0), currency))
        for stage, currency, n, total in sorted(rows, key=lambda r: (RANK[r[0]], r[1]))}


def _reached(session: Session, figures: PipelineFigures, lo: datetime, hi: datetime) -> None:
    o, h = schema.Opportunity, schema.OpportunityStageChange
    rank = case(*[(h.stage == stage, n) for stage, n in RANK.items()], else_=-1)
    furthest = (select(h.opportunity_id, func.max(rank).label("rank"))
                .join(o, o.id == h.opportunity_id)
                .where(o.created_at >= lo, o.created_at < hi)
                .group_by(h.opportunity_id).subquery())
    counts: dict[int, int] = dict(session.execute(
        select(furthest.c.rank, func.count()).group_by(furthest.c.rank)).all())
    figures.reached = {stage: sum(n for r, n in counts.items() if r >= RANK[stage])
                       for stage in REACHED}


def _closed(session: Session, figures: PipelineFigures, lo: datetime, hi: datetime) -> None:
    o = schema.Opportunity
    closed = (o.closed_at >= lo, o.closed_at < hi)
    won = session.execute(select(o.created_at, o.closed_at)
                          .where(*closed, o.stage == "won")).all()
    figures.won = len(won)
    figures.cycle_total = sum((closed_at - created for created, closed_at in won
                               if closed_at is not None), timedelta(0))
    lost = session.execute(
        select(func.coalesce(o.lost_reason, "none"), func.count())
        .where(*closed, o.stage == "lost").group_by(o.lost_reason)).all()
    figures.lost = sum(n for _, n in lost)
    figures.lost_reasons = sorted(((reason, n) for reason, n in lost),
                                  key=lambda r: (-r[1], r[0]))


def _onboarding(session: Session, figures: PipelineFigures, lo: datetime, hi: datetime,
                now: datetime) -> None:
    b = schema.Onboarding
    on_time = case((b.delivered_at <= b.delivery_due_at, 1), else_=0)
    due, kept = session.execute(
        select(func.count(), func.coalesce(func.sum(on_time), 0))
        .where(b.delivery_due_at >= lo, b.delivery_due_at < hi, b.delivery_due_at <= now)).one()
    figures.onboardings_due, figures.onboardings_on_time = int(due), int(kept)


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%} ({part}/{whole})" if whole else "—"


def _days(span: timedelta | None) -> str:
    return "—" if span is None else f"{span.total_seconds() / 86400:.1f} days"


def pipeline_rows(p: PipelineFigures) -> list[tuple[str, str]]:
    """The report's lines for the pipeline and onboarding."""
    return [
        ("pipeline value by stage", "; ".join(
            f"{stage} {v.total} {currency} ({v.opportunities})"
            for (stage, currency), v in p.value_by_stage.items()) or "—"),
        ("stage conversion", ", ".join(
            f"{stage} → {REACHED[RANK[stage] + 1]} "
            + _pct(p.reached.get(REACHED[RANK[stage] + 1], 0), p.reached.get(stage, 0))
            for stage in PIPELINE)),
        ("win rate", _pct(p.won, p.won + p.lost)),
        ("average deal cycle", _days(p.average_cycle)),
        ("lost reasons", ", ".join(f"{reason} {n}" for reason, n in p.lost_reasons) or "—"),
        ("onboarding on time", _pct(p.onboardings_on_time, p.onboardings_due)),
    ]
