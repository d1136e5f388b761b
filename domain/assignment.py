"""Choosing the rep who owns a lead."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class RepLoad:
    staff_id: str
    regions: frozenset[str]
    product_lines: frozenset[str]
    open_leads: int
    capacity: int
    seniority: int = 0
    active: bool = True

    def covers(self, region: str, product_line: str) -> bool:
        return region in self.regions and product_line in self.product_lines


def choose_rep(
    reps: Iterable[RepLoad],
    *,
    region: str,
    product_line: str,
    exclude: Iterable[str] = (),
) -> str | None:
    """The active rep covering region and product line, under capacity, with the
    fewest open leads; ties go to the more senior, then to the lower id, so the
    choice is the same on every run. None leaves the lead in the pool."""
    excluded = set(exclude)
    eligible = [
        rep
        for rep in reps
        if rep.active
        and rep.staff_id not in excluded
        and rep.covers(region, product_line)
        and rep.open_leads < rep.capacity
    ]
    if not eligible:
        return None
    best = min(eligible, key=lambda rep: (rep.open_leads, -rep.seniority, rep.staff_id))
    return best.staff_id
