"""A campaign's steps as data, checked, and compiled to the list a run walks
with a counter (`domain.campaigns` says what each step does)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import Any

CHANNELS = ("email", "sms", "chat")
TEMPLATE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class CampaignError(ValueError):
    """A declaration that cannot run; the message says where and why."""


@dataclass(frozen=True)
class Message:
    channel: str
    template: str


@dataclass(frozen=True)
class Wait:
    days: float = 0
    until: time | None = None


@dataclass(frozen=True)
class WaitFor:
    event: str
    days: float


@dataclass(frozen=True)
class Branch:
    on: str
    then: tuple[Step, ...]
    otherwise: tuple[Step, ...]


Step = Message | Wait | WaitFor | Branch
# A purchase is a conversion; a reply is the customer answering a touch (the
# `replied` signal, or a contact logged with them since the wait began).
EVENTS = ("purchase", "reply")


def parse_steps(data: Any, at: str = "steps") -> tuple[Step, ...]:
    if not isinstance(data, list):
        raise CampaignError(f"{at}: a list of steps")
    return tuple(_step(item, f"{at}[{n}]") for n, item in enumerate(data))


def _step(item: Any, at: str) -> Step:
    if not isinstance(item, dict) or len(item) != 1:
        raise CampaignError(f"{at}: a step is an object with one key: message, wait, "
                            "wait_for or branch")
    [(kind, body)] = item.items()
    here = f"{at}.{kind}"
    if not isinstance(body, dict):
        raise CampaignError(f"{here}: an object")
    if kind == "message":
        channel, template = body.get("channel"), body.get("template")
        if channel not in CHANNELS:
            raise CampaignError(f"{here}.channel: one of {', '.join(CHANNELS)}, not {channel!r}")
        if not isinstance(template, str) or not TEMPLATE.match(template):
            raise CampaignError(f"{here}.template: a template name (a-z, 0-9, _)")
        _only(body, {"channel", "template"}, here)
        return Message(channel=channel, template=template)
    if kind == "wait":
        _only(body, {"days", "until"}, here)
        if "until" in body:
            try:
                return Wait(until=time.fromisoformat(str(body["until"])))
            except ValueError:
                raise CampaignError(f"{here}.until: a time of day, HH:MM") from None
        return Wait(days=_days(body.get("days"), here))
    if kind == "wait_for":
        _only(body, {"event", "days"}, here)
        if body.get("event") not in EVENTS:
            raise CampaignError(f"{here}.event: one of {', '.join(EVENTS)}")
        return WaitFor(event=body["event"], days=_days(body.get("days"), here))
    if kind == "branch":
        _only(body, {"on", "then", "else"}, here)
        if body.get("on") not in EVENTS:
            raise CampaignError(f"{here}.on: one of {', '.join(EVENTS)}")
        return Branch(on=body["on"], then=parse_steps(body.get("then", []), f"{here}.then"),
                      otherwise=parse_steps(body.get("else", []), f"{here}.else"))
    raise CampaignError(f"{at}: unknown step {kind!r} (message, wait, wait_for, branch)")


@dataclass(frozen=True)
class JumpUnless:
    """Go on if the event happened since entering, else jump to `target`."""

    on: str
    target: int


@dataclass(frozen=True)
class Jump:
    target: int


Instruction = Message | Wait | WaitFor | JumpUnless | Jump


def program(steps: tuple[Step, ...]) -> list[Instruction]:
    """The steps as one list a run walks with a counter: a branch becomes a
    conditional jump past its `then` and a jump past its `else`."""
    out: list[Instruction] = []

    def emit(items: tuple[Step, ...]) -> None:
        for item in items:
            if isinstance(item, Branch):
                at = len(out)
                out.append(JumpUnless(item.on, -1))
                emit(item.then)
                jump = len(out)
                out.append(Jump(-1))
                out[at] = JumpUnless(item.on, len(out))
                emit(item.otherwise)
                out[jump] = Jump(len(out))
            else:
                out.append(item)

    emit(steps)
    return out


def _only(body: dict[str, Any], keys: set[str], here: str) -> None:
    if extra := set(body) - keys:
        raise CampaignError(f"{here}: unknown field {sorted(extra)[0]!r}")


def _days(value: Any, here: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 365:
        raise CampaignError(f"{here}.days: a number of days, more than 0 and at most 365")
    return float(value)


