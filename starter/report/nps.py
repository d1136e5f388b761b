"""NPS in the report: the answers given in the period, overall and per survey
period, per customer tier (as it stands) and per owner; the reasons'
categories; and the detractor follow-up on-time rate — of the detractors who
answered in the period and whose follow-up is done or past due when the
report is built, the share done by the deadline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from domain import schema
from domain.nps import DETRACTOR_MAX, NPS_BENCHMARK, PASSIVE_MAX

UNASSIGNED = "unassigned"
NO_TIER = "none"


@dataclass
class NpsTally:
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def answers(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float | None:
        n = self.answers
        return 100 * (self.promoters - self.detractors) / n if n else None

    def add(self, other: NpsTally) -> None:
        self.promoters += other.promoters
        self.passives += other.passives
        self.detractors += other.detractors


@dataclass
class NpsFigures:
    overall: NpsTally = field(default_factory=NpsTally)
    by_period: dict[str, NpsTally] = field(default_factory=dict)
    by_tier: dict[str, NpsTally] = field(default_factory=dict)
    by_owner: dict[str, NpsTally] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    follow_ups_due: int = 0
    follow_ups_on_time: int = 0

    @property
    def follow_up_on_time_rate(self) -> float | None:
        return self.follow_ups_on_time / self.follow_ups_due if self.follow_ups_due else None

    @property
    def above_benchmark(self) -> bool | None:
        value = self.overall.nps
        return None if value is None else value > NPS_BENCHMARK


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def nps_figures(session: Session, lo: datetime, hi: datetime, now: datetime) -> NpsFigures:
    n, c = schema.NpsSurvey, schema.Customer
    answered = (n.answered_at >= lo, n.answered_at < hi, n.score.is_not(None))
    tallies = (_count(n.score > PASSIVE_MAX), _count(and_(n.score > DETRACTOR_MAX,
                                                          n.score <= PASSIVE_MAX)),
               _count(n.score <= DETRACTOR_MAX))
    figures = NpsFigures()
    tier = func.coalesce(c.tier, NO_TIER)
    owner = func.coalesce(n.owner_id, UNASSIGNED)
    groups: list[tuple[Any, dict[str, NpsTally]]] = [
        (n.period, figures.by_period), (tier, figures.by_tier), (owner, figures.by_owner)]
    for key, target in groups:
        rows = session.execute(select(key, *tallies).join(c, c.id == n.customer_id)
                               .where(*answered).group_by(key)).all()
        for name, promoters, passives, detractors in sorted(rows):
            target[str(name)] = NpsTally(int(promoters), int(passives), int(detractors))
    for tally in figures.by_period.values():
        figures.overall.add(tally)
    figures.categories = {str(category): int(count) for category, count in sorted(
        session.execute(select(n.category, func.count()).where(
            *answered, n.category.is_not(None)).group_by(n.category)).all())}
    due, on_time = session.execute(
        select(func.count(), _count(n.followed_up_at <= n.follow_up_due))
        .where(*answered, n.follow_up_due.is_not(None),
               or_(n.followed_up_at.is_not(None), n.follow_up_due < now))).one()
    figures.follow_ups_due, figures.follow_ups_on_time = int(due), int(on_time or 0)
    return figures


def _score(tally: NpsTally) -> str:
    if tally.nps is None:
        return "—"
    return (f"{tally.nps:.1f} ({tally.promoters} promoters, {tally.passives} passives, "
            f"{tally.detractors} detractors)")


def _per(tallies: dict[str, NpsTally]) -> str:
    return "; ".join(f"{name} {tally.nps:.1f} ({tally.answers})"
                     for name, tally in tallies.items() if tally.nps is not None) or "—"


def nps_rows(f: NpsFigures) -> list[tuple[str, str]]:
    """NPS overall (against the benchmark), per survey period, tier and owner;
    the reasons' categories; the detractor follow-up on-time rate."""
    line = "" if f.above_benchmark is None else \
        f", {'above' if f.above_benchmark else 'not above'} the benchmark of {NPS_BENCHMARK}"
    on_time = "—" if f.follow_up_on_time_rate is None else \
        f"{f.follow_up_on_time_rate:.1%} ({f.follow_ups_on_time}/{f.follow_ups_due})"
    return [
        ("NPS", _score(f.overall) + line),
        ("NPS by survey period", _per(f.by_period)),
        ("NPS by tier", _per(f.by_tier)),
        ("NPS by owner", _per(f.by_owner)),
        ("NPS reasons", ", ".join(f"{k} {v}" for k, v in f.categories.items()) or "—"),
        ("detractor follow-up on time", on_time),
    ]
