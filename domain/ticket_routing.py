"""Routing a ticket: the complaint words in it, the priority they raise, and the
least-loaded agent of its group (a senior one for a complaint). Pure rules,
used by the ticket activities and unit tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from domain.tickets import Priority


def complaint_words_in(texts: Iterable[str | None], words: Iterable[str]) -> list[str]:
    """The complaint words that occur in any of `texts`, case-insensitively, in
    the policy's order. Substrings count: Chinese has no spaces between words."""
    haystack = "\n".join(t for t in texts if t).casefold()
    found: dict[str, str] = {}
    for word in words:
        w = word.strip()
        if w and w.casefold() in haystack:
            found.setdefault(w.casefold(), w)
    return list(found.values())


def raised_priority(priority: Priority, *, urgent: bool = False) -> Priority:
    """A complaint is at least high priority; one in urgent words is urgent."""
    floor = Priority.urgent if urgent else Priority.high
    return priority if priority.rank <= floor.rank else floor


@dataclass(frozen=True)
class AgentLoad:
    staff_id: str
    open_tickets: int
    seniority: int = 0
    capacity: int = 50
    active: bool = True


@dataclass(frozen=True)
class Routing:
    agent_id: str | None
    senior: bool  # chosen among the senior agents
    note: str | None = None


def choose_agent(agents: Iterable[AgentLoad], *, min_seniority: int | None = None) -> Routing:
    """The active agent with the fewest open tickets (under capacity when anyone
    is); ties go to the more senior, then to the lower id, so the choice is the
    same on every run. With `min_seniority` (a complaint) only agents that
    senior are considered, or, when the group has none active, everyone."""
    active = [a for a in agents if a.active]
    note = None
    pool = active
    senior = False
    if min_seniority is not None:
        seniors = [a for a in active if a.seniority >= min_seniority]
        if seniors:
            pool, senior = seniors, True
        else:
            note = f"no active agent with seniority >= {min_seniority}: any agent of the group"
    if not pool:
        return Routing(agent_id=None, senior=False, note="no active agent in the group")
    under = [a for a in pool if a.open_tickets < a.capacity] or pool
    best = min(under, key=lambda a: (a.open_tickets, -a.seniority, a.staff_id))
    return Routing(agent_id=best.staff_id, senior=senior, note=note)
