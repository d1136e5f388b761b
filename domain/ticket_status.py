"""What a ticket journey's status query answers: where the ticket stands, its
SLA figures, breaches and escalations."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, Field

from domain.journeys import Lenient, Rejection
from domain.sla import elapsed
from domain.tickets import EscalationKind, Priority, TicketPolicy, TicketStage, TicketType


class EscalationInfo(Lenient):
    kind: EscalationKind
    level: int
    to_staff_id: str | None = None
    at: AwareDatetime
    due_at: AwareDatetime | None = None


class Breach(Lenient):
    sla: Literal["first_response", "resolution"]
    due_at: AwareDatetime | None = None
    at: AwareDatetime


class TicketStatus(Lenient):
    ticket_id: str
    customer_id: str
    type: TicketType
    priority: Priority
    priority_raised: bool = False
    complaint_words: list[str] = Field(default_factory=list)
    subject: str
    channel: str
    group: str | None = None
    assignee_id: str | None = None
    # Assignees who were deactivated while they held the ticket, in order.
    previous_assignees: list[str] = Field(default_factory=list)
    transfers: int = 0  # handed to another group
    stage: TicketStage
    opened_at: datetime
    first_response_due: datetime | None = None
    first_response_at: datetime | None = None
    first_response_time: timedelta | None = None
    resolution_target: timedelta | None = None
    resolution_due: datetime | None = None
    # SLA figures as of `as_of` (the journey's last step: a query cannot read
    # the clock); `used_at`/`paused_at` carry them on to any later moment.
    as_of: datetime | None = None
    sla_clock: Literal["running", "paused", "stopped"] | None = None
    time_used: timedelta = timedelta(0)
    time_paused: timedelta = timedelta(0)
    pauses: int = 0
    waiting_since: datetime | None = None
    breaches: list[Breach] = Field(default_factory=list)
    escalations: list[EscalationInfo] = Field(default_factory=list)
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    reopens: int = 0
    rating: int | None = None
    rating_comment: str | None = None
    survey_due: datetime | None = None
    survey_sent: bool = False
    closes_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None
    waiting_for: str | None = None
    deadline: datetime | None = None
    rejections: list[Rejection] = Field(default_factory=list)
    policy: TicketPolicy | None = None

    def used_at(self, now: datetime) -> timedelta:
        if self.sla_clock == "running" and self.as_of is not None:
            return self.time_used + elapsed(self.as_of, now)
        return self.time_used

    def paused_at(self, now: datetime) -> timedelta:
        if self.sla_clock == "paused" and self.as_of is not None:
            return self.time_paused + elapsed(self.as_of, now)
        return self.time_paused
