"""The SLA clock: when a duration that starts now falls due.

Deadlines are computed once, inside an activity, and stored; a business
calendar (working hours, public holidays) can replace the calendar clock later
without changing any recorded deadline or breaking replay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class CalendarClock:
    """Round-the-clock SLA time: the deadline is start + duration."""

    def due(self, start: datetime, duration: timedelta) -> datetime:
        if start.tzinfo is None:
            raise ValueError("SLA start time must carry a UTC offset")
        return (start + duration).astimezone(UTC)
