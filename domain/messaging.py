"""The one send path's models and its decision rule.

Deciding whether a message goes now, later or never (time zone, quiet hours,
consent, frequency cap) happens in the send activity, never in workflow code,
so a tzdata or policy change cannot alter a replay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.policy import QuietHours


class MessageClass(StrEnum):
    staff = "staff"
    transactional = "transactional"
    reminder = "reminder"
    marketing = "marketing"


class ConsentScope(StrEnum):
    marketing = "marketing"  # no marketing on this channel
    all = "all"  # no messages of any customer class on this channel


ALL_CHANNELS = "all"


class Recipient(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: Literal["staff", "customer", "lead"]
    id: str


class SendRequest(BaseModel):
    """One touch. `key` is `{workflow_id}:{step}:{n}`, unique per touch."""

    model_config = ConfigDict(extra="ignore")

    key: str
    journey: str
    step: str
    message_class: MessageClass
    recipient: Recipient
    template: str
    channel: str | None = None
    # The record the message is about, loaded by the activity for the template.
    entity_kind: str | None = None
    entity_id: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)
    now: AwareDatetime
    # A marketing touch the frequency cap holds back waits ("defer") or is dropped.
    when_capped: Literal["defer", "suppress"] = "defer"
    # Why the journey no longer wants a touch it had deferred (the milestone
    # was paid, the ticket closed): recorded as suppressed, never sent.
    withdrawn: str | None = None


class SendOutcome(BaseModel):
    """`unconfirmed`: an attempt was cut short while handing the message to a
    channel that cannot drop a repeat, so it may or may not have arrived; it
    is not sent again, and staff are given a task to check."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["sent", "suppressed", "deferred", "unconfirmed"]
    reason: str | None = None
    until: AwareDatetime | None = None
    channel: str | None = None


class FrequencyCap(BaseModel):
    """At most `per_day` marketing touches per recipient in any 24 hours and
    `per_week` in any 7 days, across every journey."""

    model_config = ConfigDict(extra="ignore")

    per_day: int = 1
    per_week: int = 3


def cap_allows_at(recent: list[datetime], *, now: datetime, cap: FrequencyCap) -> datetime | None:
    """When the cap next allows a marketing touch, given the times of the
    recipient's recent ones; None when it allows one now."""
    day_ago, week_ago = now - timedelta(days=1), now - timedelta(days=7)
    in_day = sorted(t for t in recent if t > day_ago)
    in_week = sorted(t for t in recent if t > week_ago)
    waits = []
    if cap.per_day >= 0 and len(in_day) >= cap.per_day:
        waits.append(in_day[len(in_day) - cap.per_day] + timedelta(days=1) if cap.per_day
                     else now + timedelta(days=1))
    if cap.per_week >= 0 and len(in_week) >= cap.per_week:
        waits.append(in_week[len(in_week) - cap.per_week] + timedelta(days=7) if cap.per_week
                     else now + timedelta(days=7))
    return max(waits) if waits else None


class Consent(BaseModel):
    channel: str
    scope: ConsentScope


def in_quiet_hours(local: datetime, quiet: QuietHours) -> bool:
    t = local.timetz().replace(tzinfo=None)
    if not quiet.enabled or quiet.start == quiet.end:
        return False
    if quiet.start < quiet.end:
        return quiet.start <= t < quiet.end
    return t >= quiet.start or t < quiet.end


def quiet_hours_end(now: datetime, *, timezone: str, quiet: QuietHours) -> datetime | None:
    """The UTC instant the recipient's quiet hours end, or None if they are not in them.

    Computed on the local wall clock, so a DST change inside the window is
    honoured: 09:00 local is 09:00 local whatever the offset that morning.
    """
    if not quiet.enabled:
        return None
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    if not in_quiet_hours(local, quiet):
        return None
    end = local.replace(
        hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0, tzinfo=None
    )
    if end <= local.replace(tzinfo=None):
        end += timedelta(days=1)
    return end.replace(tzinfo=zone).astimezone(UTC)


def consent_blocks(message_class: MessageClass, channel: str,
                   consents: list[Consent]) -> str | None:
    """The reason a recorded opt-out forbids this message, or None."""
    if message_class is MessageClass.staff:
        return None
    for consent in consents:
        if consent.channel not in (channel, ALL_CHANNELS):
            continue
        if consent.scope is ConsentScope.all:
            return f"opted out of all messages on {consent.channel}"
        if consent.scope is ConsentScope.marketing and message_class is MessageClass.marketing:
            return f"opted out of marketing on {consent.channel}"
    return None


def decide_send(
    *,
    message_class: MessageClass,
    channel: str,
    now: datetime,
    timezone: str,
    quiet: QuietHours,
    consents: list[Consent],
    cap_allows_at: datetime | None = None,
    when_capped: str = "defer",
) -> SendOutcome | None:
    """None means send now; otherwise the outcome that replaces sending.

    `cap_allows_at` is the frequency cap's answer for marketing touches (the
    earliest time the cap allows one), None when the cap does not bind.
    """
    reason = consent_blocks(message_class, channel, consents)
    if reason:
        return SendOutcome(status="suppressed", reason=reason, channel=channel)
    if message_class in (MessageClass.reminder, MessageClass.marketing):
        until = quiet_hours_end(now, timezone=timezone, quiet=quiet)
        if until is not None:
            return SendOutcome(status="deferred", reason="quiet hours", until=until,
                               channel=channel)
    if message_class is MessageClass.marketing and cap_allows_at and cap_allows_at > now:
        if when_capped == "suppress":
            return SendOutcome(status="suppressed", reason="frequency cap", channel=channel)
        return SendOutcome(
            status="deferred", reason="frequency cap", until=cap_allows_at, channel=channel
        )
    return None
