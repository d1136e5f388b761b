"""A journey's timed steps as typed data.

A journey declares its clock in a `Plan`, built from its policy values:
deadlines with a reminder before them, escalation ladders, repeating cadences
and waits until a date held in the journey's facts. The plan says what the
journey does on its own and when, in words (the diagram, the timers' summaries
in the Temporal UI) and in time: each part turns the journey's facts into the
entries of its `Agenda`, the `Due` steps the run loop waits for.

Nothing here reads a clock or talks to Temporal: `now` is passed in, so the
same plan is drawn by `crm journey diagram`, checked by unit tests and run by
the workflow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any


def snake(words: str) -> str:
    """`first touch` → `first_touch`: a wait's name from its words."""
    return re.sub(r"\W+", "_", words).strip("_").lower()


def span(duration: timedelta) -> str:
    """A duration as people say it: `24 h`, `3 days`, `15 min`, `90 s`."""
    seconds = int(duration.total_seconds())
    if seconds and seconds % 86400 == 0 and seconds > 86400:
        return f"{seconds // 86400} days"
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


@dataclass(frozen=True)
class Due:
    """One step on a journey's agenda: what it is, when it falls due, and the
    words the Temporal UI shows on the timer that waits for it.

    `sla`: a deadline someone is held to (the journey's CrmSlaDeadline).
    `void_after`: a step with no point once that time has passed (a reminder
    found after its deadline is dropped; the deadline's own step acts).
    `data`: what the step needs that the journey's state does not say (the
    milestone a payment reminder is about).
    `rank`: the order of steps due at the same instant (by default, the order
    in which the journey lists them).
    `wait`: what the journey waits in while this step is next (`first_touch`,
    `resolution`): its CrmStep, the overview's row.
    """

    step: str
    at: datetime
    summary: str
    sla: bool = False
    void_after: datetime | None = None
    data: Any = None
    rank: Any = 0
    wait: str = ""

    def void(self, now: datetime) -> bool:
        return self.void_after is not None and now >= self.void_after


@dataclass(frozen=True)
class Agenda:
    """What a journey does on its own next, in time order."""

    entries: tuple[Due, ...] = ()

    @classmethod
    def of(cls, *parts: Due | Iterable[Due] | None) -> Agenda:
        entries: list[Due] = []
        for part in parts:
            if part is None:
                continue
            if isinstance(part, Due):
                entries.append(part)
            else:
                entries.extend(part)
        return cls(tuple(sorted(entries, key=lambda e: (e.at, e.rank))))

    def __iter__(self) -> Iterator[Due]:
        return iter(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def next_at(self) -> datetime | None:
        """When the journey next has something to do on its own (a step that
        may turn out void by then still wakes it: the journey decides then)."""
        return self.entries[0].at if self.entries else None

    def next(self) -> Due | None:
        return self.entries[0] if self.entries else None

    def due(self, now: datetime) -> list[Due]:
        """The steps due by `now`, earliest first, void ones left out."""
        return [e for e in self.entries if e.at <= now and not e.void(now)]

    def sla_deadline(self) -> datetime | None:
        """The earliest deadline someone is held to."""
        return min((e.at for e in self.entries if e.sla), default=None)

    def cancel(self, *steps: str) -> Agenda:
        """The agenda without the named steps."""
        return Agenda(tuple(e for e in self.entries if e.step not in steps))

    def add(self, *entries: Due) -> Agenda:
        return Agenda.of(self.entries, entries)

    def shifted(self, by: timedelta, *, steps: Sequence[str]) -> Agenda:
        """The named steps moved later by `by` (an SLA clock resumed after a
        pause moves its deadlines by the time it stood still)."""
        return Agenda.of(replace(e, at=e.at + by) if e.step in steps else e
                         for e in self.entries)


class StepsPerWake(Enum):
    """How a journey takes the steps that are due when it wakes.

    `one`: the earliest, then signals are weighed again before the next (a
    step's effects are settled before the next step is considered).
    `in_order`: every due step in time order, a signal received before the
    next step going first (a ticket two levels late escalates twice at once).
    `all_due`: every step due at the wake, then the signals that came meanwhile.
    """

    one = "one"
    in_order = "in_order"
    all_due = "all_due"


# -- the parts of a plan ------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """Something someone must do within `within`, with a reminder `reminder_before`
    the deadline (none when None or zero)."""

    step: str
    what: str  # "first touch", "first response"
    within: timedelta
    reminder_before: timedelta | None = None
    reminder_step: str = ""
    on_miss: str = ""  # what follows a miss, in words
    sla: bool = True
    wait: str = ""  # the CrmStep while it runs (default: from `what`)

    @property
    def waiting(self) -> str:
        return self.wait or snake(self.what)

    def entries(self, due_at: datetime | None, *, reminded: bool = False) -> list[Due]:
        if due_at is None:
            return []
        deadline = Due(self.step, due_at, f"{self.what} deadline ({span(self.within)})",
                       sla=self.sla, wait=self.waiting)
        if reminded or not self.reminder_before:
            return [deadline]
        reminder = Due(self.reminder_step or f"{self.step}_reminder",
                       due_at - self.reminder_before,
                       f"reminder {span(self.reminder_before)} before the {self.what} deadline",
                       void_after=due_at, wait=self.waiting)
        return [reminder, deadline]

    def describe(self) -> str:
        text = f"{self.what} within {span(self.within)}"
        if self.reminder_before:
            text += f", a reminder {span(self.reminder_before)} before"
        return text + (f"; missed: {self.on_miss}" if self.on_miss else "")


@dataclass(frozen=True)
class Level:
    """One rung of an escalation ladder: `after` the start of the ladder, to whom."""

    step: str
    after: timedelta
    to: str


@dataclass(frozen=True)
class Ladder:
    """Escalations at offsets from a deadline; `then` is what follows the last."""

    what: str
    levels: tuple[Level, ...]
    then: str = ""
    sla: bool = True
    wait: str = ""  # the CrmStep while it runs (default: from `what`)

    @property
    def waiting(self) -> str:
        return self.wait or snake(self.what)

    def entries(self, start: datetime | None, *, done: int = 0,
                at: Sequence[datetime | None] = ()) -> list[Due]:
        """The next rung not yet done (`done` rungs are). Its time is `start`
        plus its offset, or, when `at` is given, the time the store worked out
        for each rung (none: the rung is not on the clock now, e.g. while an
        SLA clock is paused)."""
        if start is None or done >= len(self.levels):
            return []
        level = self.levels[done]
        when = (at[done] if done < len(at) else None) if at else start + level.after
        if when is None:
            return []
        return [Due(level.step, when, f"{self.what}: escalate to the {level.to}", sla=self.sla,
                    wait=self.waiting)]

    def describe(self) -> str:
        rungs = ", then ".join(
            f"the {level.to}" + (f" after {span(level.after)}" if level.after else "")
            for level in self.levels)
        return f"{self.what}: escalate to {rungs}" + (f"; then {self.then}" if self.then else "")


@dataclass(frozen=True)
class Cadence:
    """A step that repeats every `every`: until `until_misses` are missed in a
    row (then `then`), or, with no count, until `then`."""

    step: str
    what: str
    every: timedelta
    until_misses: int | None
    then: str = ""
    sla: bool = True
    wait: str = ""  # the CrmStep while it runs (default: from `what`)

    @property
    def waiting(self) -> str:
        return self.wait or snake(self.what)

    def entries(self, due_at: datetime | None) -> list[Due]:
        if due_at is None:
            return []
        return [Due(self.step, due_at, f"{self.what} due (every {span(self.every)})",
                    sla=self.sla, wait=self.waiting)]

    def describe(self) -> str:
        if self.until_misses is None:
            return f"{self.what} every {span(self.every)} until {self.then or 'the end'}"
        return (f"{self.what} every {span(self.every)} until {self.until_misses} missed in a row"
                + (f"; then {self.then}" if self.then else ""))


@dataclass(frozen=True)
class WaitUntil:
    """A step at a date held in the journey's facts, `offset` after it."""

    step: str
    what: str
    fact: str  # the fact's name, e.g. "the course end"
    offset: timedelta = timedelta(0)
    local_time: bool = False  # the offset counts in the customer's local time
    sla: bool = False
    wait: str = ""  # the CrmStep while it runs (default: the step's name)

    @property
    def waiting(self) -> str:
        return self.wait or self.step

    def at(self, fact_at: datetime) -> datetime:
        return fact_at + self.offset

    def entries(self, fact_at: datetime | None, data: Any = None) -> list[Due]:
        if fact_at is None:
            return []
        return [Due(self.step, self.at(fact_at), self.summary(), sla=self.sla, data=data,
                    wait=self.waiting)]

    def entries_at(self, at: datetime | None, data: Any = None) -> list[Due]:
        """The step at a time already worked out (stored, or computed by the store)."""
        if at is None:
            return []
        return [Due(self.step, at, self.summary(), sla=self.sla, data=data, wait=self.waiting)]

    def summary(self) -> str:
        if not self.offset:
            return f"{self.what} at {self.fact}"
        return f"{self.what} {span(self.offset)} after {self.fact}"

    def describe(self) -> str:
        local = " (customer-local time)" if self.local_time else ""
        return self.summary() + local


Part = Deadline | Ladder | Cadence | WaitUntil


@dataclass(frozen=True)
class Transition:
    """A stage change: from a stage, on a signal or a timed step, to a stage."""

    source: str
    on: str
    target: str


@dataclass(frozen=True)
class Plan:
    """A journey's declaration: what it takes (signals), what it does on its own
    (the parts, built from policy values) and how its stages move."""

    journey: str
    parts: tuple[Part, ...]
    start: str
    transitions: tuple[Transition, ...] = ()
    ends: tuple[str, ...] = ()
    steps_per_wake: StepsPerWake = StepsPerWake.one
    notes: tuple[str, ...] = field(default=())

    def step_names(self) -> set[str]:
        names: set[str] = set()
        for part in self.parts:
            if isinstance(part, Deadline):
                names.add(part.step)
                if part.reminder_before:
                    names.add(part.reminder_step or f"{part.step}_reminder")
            elif isinstance(part, Ladder):
                names |= {level.step for level in part.levels}
            else:
                names.add(part.step)
        return names

    def describe(self) -> list[str]:
        return [part.describe() for part in self.parts]

    def waits(self) -> list[str]:
        """Every CrmStep the journey can be in: its timed waits, then its stages
        (a journey with nothing timed ahead waits in its stage)."""
        names = [part.waiting for part in self.parts]
        stages = [self.start, *(t.source for t in self.transitions),
                  *(t.target for t in self.transitions), *self.ends]
        return list(dict.fromkeys([*names, *(str(stage) for stage in stages)]))


def moves(*rows: tuple[str | Sequence[str], str, str]) -> tuple[Transition, ...]:
    """Transitions from rows of (from, on, to); `from` may name several stages."""
    out: list[Transition] = []
    for source, on, target in rows:
        for s in ([source] if isinstance(source, str) else source):
            out.append(Transition(s, on, target))
    return tuple(out)
