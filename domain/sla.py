"""The SLA clock: when a duration that starts now falls due, and a ticket's
resolution time, which runs while the ticket is open and stops while it waits
on the customer.

Deadlines are computed once, inside an activity, and stored; a business
calendar (working hours, public holidays) can replace the calendar clock later
without changing any recorded deadline or breaking replay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal


class CalendarClock:
    """Round-the-clock SLA time: the deadline is start + duration."""

    def due(self, start: datetime, duration: timedelta) -> datetime:
        if start.tzinfo is None:
            raise ValueError("SLA start time must carry a UTC offset")
        return (start + duration).astimezone(UTC)


def elapsed(start: datetime, end: datetime) -> timedelta:
    """The time from `start` to `end`, never negative."""
    return max(end - start, timedelta(0))


@dataclass(frozen=True)
class SlaClock:
    """Resolution time on the SLA clock, which runs while the ticket is open and
    stops while it waits on the customer and once it is resolved.

    `used` is the SLA time used before `running_since` (all of it while the clock
    is not running); `paused` the waiting-on-customer time of pauses that have
    ended. Each transition takes the moment it happened and returns a new clock,
    so the accounting is exact in every order of events: several pauses, a
    pause ended by resolution (its waiting time counts as paused), a reopen
    (the clock runs on from the time already used; the time the ticket spent
    resolved counts as neither).
    """

    target: timedelta
    used: timedelta = timedelta(0)
    paused: timedelta = timedelta(0)
    pauses: int = 0
    running_since: datetime | None = None
    paused_since: datetime | None = None

    @property
    def state(self) -> Literal["running", "paused", "stopped"]:
        if self.running_since is not None:
            return "running"
        if self.paused_since is not None:
            return "paused"
        return "stopped"

    def start(self, now: datetime) -> SlaClock:
        """Runs the clock from `now` (a new ticket, a reopened one) with the time used."""
        if self.state == "running":
            return self
        if self.state == "paused":
            return self.resume(now)
        return replace(self, running_since=now)

    def pause(self, now: datetime) -> SlaClock:
        if self.running_since is None:
            return self
        return replace(self, used=self.used + elapsed(self.running_since, now),
                       running_since=None, paused_since=max(now, self.running_since),
                       pauses=self.pauses + 1)

    def resume(self, now: datetime) -> SlaClock:
        if self.paused_since is None:
            return self
        return replace(self, paused=self.paused + elapsed(self.paused_since, now),
                       paused_since=None, running_since=max(now, self.paused_since))

    def stop(self, now: datetime) -> SlaClock:
        """Resolution: the clock stops, ending a pause if there is one."""
        if self.running_since is not None:
            return replace(self, used=self.used + elapsed(self.running_since, now),
                           running_since=None)
        if self.paused_since is not None:
            return replace(self, paused=self.paused + elapsed(self.paused_since, now),
                           paused_since=None)
        return self

    def used_at(self, now: datetime) -> timedelta:
        if self.running_since is None:
            return self.used
        return self.used + elapsed(self.running_since, now)

    def paused_at(self, now: datetime) -> timedelta:
        if self.paused_since is None:
            return self.paused
        return self.paused + elapsed(self.paused_since, now)

    def remaining_at(self, now: datetime) -> timedelta:
        return self.target - self.used_at(now)

    def breached_at(self, now: datetime) -> bool:
        return self.used_at(now) >= self.target

    def due_at(self, threshold: timedelta | None = None,
               calendar: CalendarClock | None = None) -> datetime | None:
        """When the time used reaches `threshold` (the target by default) if the
        clock runs on uninterrupted; None while it is paused or stopped. May lie
        in the past (a reopened ticket already over its target)."""
        if self.running_since is None:
            return None
        left = (self.target if threshold is None else threshold) - self.used
        return (calendar or CalendarClock()).due(self.running_since, left)
