"""Loyalty in the report: points issued, redeemed, reversed and expired in the
period (from the ledger); members per level as they stand; joins, level
changes, 保级 offers and those taken up (the level kept at the anniversary
after an offer) and referral conversions in the period (from the journey's
steps)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import schema
from domain.loyalty import JOURNEY

CREDITS = ("earned", "behaviour", "granted", "gift", "referral")


@dataclass
class LoyaltyFigures:
    points_issued: int = 0
    points_redeemed: int = 0
    points_reversed: int = 0
    points_expired: int = 0
    members_per_level: dict[str, int] = field(default_factory=dict)
    joined: int = 0
    level_changes: int = 0
    retention_offers: int = 0
    retention_taken_up: int = 0
    referral_conversions: int = 0

    @property
    def retention_take_up(self) -> float | None:
        return self.retention_taken_up / self.retention_offers if self.retention_offers else None


def loyalty_figures(session: Session, lo: datetime, hi: datetime) -> LoyaltyFigures:
    p, m, e = schema.LoyaltyPoints, schema.LoyaltyMember, schema.JourneyEvent
    points = {str(kind): int(total) for kind, total in session.execute(
        select(p.kind, func.coalesce(func.sum(p.points), 0))
        .where(p.at >= lo, p.at < hi).group_by(p.kind)).all()}
    steps = {str(step): int(n) for step, n in session.execute(
        select(e.step, func.count())
        .where(e.journey == JOURNEY, e.at >= lo, e.at < hi).group_by(e.step)).all()}
    return LoyaltyFigures(
        points_issued=sum(points.get(kind, 0) for kind in CREDITS),
        points_redeemed=-points.get("redeemed", 0),
        points_reversed=-points.get("reversed", 0),
        points_expired=-points.get("expired", 0),
        members_per_level={str(level): int(n) for level, n in sorted(session.execute(
            select(m.level, func.count()).group_by(m.level)).all())},
        joined=steps.get("joined", 0),
        level_changes=steps.get("level_changed", 0),
        retention_offers=steps.get("retention_offered", 0),
        retention_taken_up=steps.get("retention_kept", 0),
        referral_conversions=steps.get("referral_converted", 0),
    )


def loyalty_rows(f: LoyaltyFigures) -> list[tuple[str, str]]:
    take_up = "—" if f.retention_take_up is None else \
        f"{f.retention_take_up:.1%} ({f.retention_taken_up}/{f.retention_offers})"
    return [
        ("loyalty points", f"{f.points_issued} issued, {f.points_redeemed} redeemed, "
                           f"{f.points_reversed} reversed, {f.points_expired} expired"),
        ("members per level", ", ".join(f"{level} {n}" for level, n in
                                        f.members_per_level.items()) or "—"),
        ("members joined, level changes", f"{f.joined}, {f.level_changes}"),
        ("保级 offers taken up", take_up),
        ("referral conversions", str(f.referral_conversions)),
    ]
