"""How late `bench.ticket`'s SLA escalations are: the commit time of each
ticket's first escalation (from the worker's store sessions), a scenario's
result, and the table of results."""

from __future__ import annotations

import math
import statistics
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from domain import schema


class CommitClock:
    """Wall-clock commit time of each ticket's first escalation, from the
    session events of the worker's units of work (which run in this process)."""

    def __init__(self) -> None:
        self.committed: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def install(self) -> None:
        event.listen(Session, "after_flush", self._after_flush)
        event.listen(Session, "after_commit", self._after_commit)
        event.listen(Session, "after_rollback", self._after_rollback)

    def _after_flush(self, session: Session, _context: Any) -> None:
        for obj in session.new:
            if isinstance(obj, schema.TicketEvent) and obj.kind == "escalated":
                session.info.setdefault("escalated", []).append(obj.ticket_id)

    def _after_commit(self, session: Session) -> None:
        now = datetime.now(UTC)
        tickets = session.info.pop("escalated", [])
        with self._lock:
            for ticket_id in tickets:
                self.committed.setdefault(ticket_id, now)

    def _after_rollback(self, session: Session) -> None:
        session.info.pop("escalated", None)

    def count(self, ticket_ids: set[str]) -> int:
        with self._lock:
            return sum(1 for t in self.committed if t in ticket_ids)


@dataclass
class Result:
    name: str
    tickets: int
    start_seconds: float
    lateness: list[float]  # commit - deadline, seconds
    timer: list[float]  # escalation `at` (workflow time) - deadline
    written: list[float]  # recorded_at - deadline
    deadline_error: float  # largest |stored deadline - intended deadline|, seconds
    missing: int
    cpu_opening: float  # CPU seconds of this process (worker, sinks, client) while opening
    cpu_window: float  # ... from just before the first warning to the last escalation
    server_window: float | None  # the dev server's CPU seconds meanwhile
    # (deadline - first deadline, commit - deadline) per ticket, seconds
    profile: list[tuple[float, float]] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def print_results(results: list[Result]) -> None:
    print()
    print(f"{'scenario':<9} {'measure':<28} {'median':>8} {'p99':>8} {'max':>8} {'min':>8}")
    for r in results:
        for label, values in (("commit - deadline (s)", r.lateness),
                              ("  escalation at - deadline", r.timer),
                              ("  recorded_at - deadline", r.written)):
            if not values:
                print(f"{r.name:<9} {label:<28} {'-':>8}")
                continue
            print(f"{r.name:<9} {label:<28} {statistics.median(values):>8.3f} "
                  f"{percentile(values, 99):>8.3f} {max(values):>8.3f} {min(values):>8.3f}")
    print()
    for r in results:
        print(f"{r.name}: {r.tickets - r.missing}/{r.tickets} escalations committed; stored "
              f"deadlines within {r.deadline_error * 1000:.3f} ms of the intended ones; "
              f"CPU per ticket: this process {r.cpu_opening / r.tickets * 1000:.0f} ms opening, "
              f"{r.cpu_window / r.tickets * 1000:.0f} ms warning and escalating; dev server "
              + (f"{r.server_window / r.tickets * 1000:.0f} ms" if r.server_window is not None
                 else "-") + " warning and escalating")
    for r in results:
        if not r.profile:
            continue
        late = sum(1 for _, lateness in r.profile if lateness > 1)
        print(f"{r.name}: {late} of {len(r.profile)} escalations more than 1 s late; "
              "the latest per 5 s of deadlines:")
        windows: dict[int, list[float]] = {}
        for offset, lateness in r.profile:
            windows.setdefault(int(offset // 5) * 5, []).append(lateness)
        print("  " + "  ".join(f"+{start}s {max(values):.2f}"
                               for start, values in sorted(windows.items())))
    spread = next((r for r in results if r.name == "spread"), None)
    if spread and spread.lateness:
        p99 = percentile(spread.lateness, 99)
        print(f"spread p99 {p99:.3f} s (target <= 1 s): {'met' if p99 <= 1 else 'NOT met'}")
