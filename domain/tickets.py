"""Ticket journey: its policy and the models that cross its boundaries (the SLA
clock is in `domain.sla`, routing in `domain.ticket_routing`, the status query's
answer in `domain.ticket_status`).

Pure rules (no I/O, no clock: `now` is passed in) used by the ticket
activities, the ticket journey and unit tests alike. Boundary models are
lenient (extra fields ignored, rules checked by the journey and its
activities), because replay re-decodes old signals with new code.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.journeys import Lenient
from domain.limits import Channel, Duration, FreeText, Group, Id, Moment, Subject
from domain.sla import SlaClock

JOURNEY = "ticket"


def ticket_workflow_id(ticket_id: str) -> str:
    return f"ticket-{ticket_id}"


class TicketType(StrEnum):
    technical = "technical"
    after_sales = "after_sales"
    complaint = "complaint"
    order_query = "order_query"
    other = "other"


class Priority(StrEnum):
    urgent = "urgent"
    high = "high"
    normal = "normal"
    low = "low"

    @property
    def rank(self) -> int:
        """0 is the most urgent."""
        return list(Priority).index(self)


class TicketStage(StrEnum):
    new = "new"
    awaiting_response = "awaiting_response"
    escalated_supervisor = "escalated_supervisor"
    escalated_manager = "escalated_manager"
    in_progress = "in_progress"
    waiting_on_customer = "waiting_on_customer"
    resolved = "resolved"
    closed = "closed"


OPEN_STATUSES = (
    TicketStage.new,
    TicketStage.awaiting_response,
    TicketStage.escalated_supervisor,
    TicketStage.escalated_manager,
    TicketStage.in_progress,
    TicketStage.waiting_on_customer,
)


class EscalationKind(StrEnum):
    first_response = "first_response"
    resolution = "resolution"
    low_rating = "low_rating"


SUPERVISOR, MANAGER = 1, 2

DEFAULT_COMPLAINT_WORDS = ["投诉", "不满意", "退款", "complaint", "refund"]
DEFAULT_URGENT_WORDS = ["紧急", "严重", "投诉升级", "urgent"]


class TicketPolicy(BaseModel):
    """Ticket response SLA (docs/design.md, journey 3). Per-priority maps are keyed by
    the priority's name; a priority they do not name takes the default."""

    model_config = ConfigDict(extra="ignore")

    first_response: Duration = timedelta(minutes=15)
    first_response_by_priority: dict[str, Duration] = Field(default_factory=dict)
    warning_before: Duration = timedelta(minutes=5)
    # After the supervisor, the manager: this long later (on the first-response
    # clock for an unanswered ticket, on the SLA clock after a resolution breach).
    manager_after: Duration = timedelta(minutes=15)
    resolution_targets: dict[str, Duration] = Field(default_factory=lambda: {
        Priority.urgent.value: timedelta(hours=1),
        Priority.high.value: timedelta(hours=4),
        Priority.normal.value: timedelta(hours=24),
        Priority.low.value: timedelta(hours=72),
    })
    groups: dict[str, Group] = Field(default_factory=lambda: {
        TicketType.technical.value: "technical",
        TicketType.after_sales.value: "after_sales",
        TicketType.complaint.value: "complaints",
        TicketType.order_query.value: "orders",
        TicketType.other.value: "general",
    })
    default_group: Group = "general"
    complaint_words: list[str] = Field(default_factory=lambda: list(DEFAULT_COMPLAINT_WORDS))
    # Agents at or above this seniority take tickets that carry complaint words.
    senior_seniority: int = 3
    # On the first-response escalation the supervisor also takes the ticket over.
    reassign_to_supervisor: bool = False
    survey_after: Duration = timedelta(days=7)
    close_after_survey: Duration = timedelta(days=3)
    # A rating below `notify_below` tells the supervisor; below `reopen_below`
    # it also reopens the ticket and escalates it.
    notify_below: int = 4
    reopen_below: int = 3
    # Complaint words that mark a complaint urgent (the 1-hour target); other
    # complaint words raise it to at least high.
    urgent_words: list[str] = Field(default_factory=lambda: list(DEFAULT_URGENT_WORDS))
    # Transfers of one ticket beyond this many alert its group's supervisor
    # (a ticket passed back and forth between teams).
    max_transfers: int = 2
    # How long a closed ticket's journey still answers (rejects) late signals.
    linger_after_close: Duration = timedelta(days=1)
    rating_url: str = "https://support.example.com/tickets/{ticket_id}/rate"

    def first_response_for(self, priority: Priority) -> timedelta:
        return self.first_response_by_priority.get(priority.value, self.first_response)

    def resolution_target(self, priority: Priority) -> timedelta:
        return self.resolution_targets.get(priority.value, timedelta(hours=24))

    def group_for(self, ticket_type: TicketType) -> str:
        return self.groups.get(ticket_type.value, self.default_group)

    def scaled(self, factor: float) -> TicketPolicy:
        """Every duration divided by `factor` (a demo runs a day in seconds)."""
        if factor == 1:
            return self
        return self.model_copy(update={
            "first_response": self.first_response / factor,
            "first_response_by_priority": {k: v / factor
                                           for k, v in self.first_response_by_priority.items()},
            "warning_before": self.warning_before / factor,
            "manager_after": self.manager_after / factor,
            "resolution_targets": {k: v / factor for k, v in self.resolution_targets.items()},
            "survey_after": self.survey_after / factor,
            "close_after_survey": self.close_after_survey / factor,
            "linger_after_close": self.linger_after_close / factor,
        })


# -- boundary models ---------------------------------------------------------------


class TicketInput(Lenient):
    """A new ticket. Its values must fit the store (domain/limits.py): a start
    that cannot be written fails at once rather than retrying for ever."""

    ticket_id: Id
    customer_id: Id
    type: TicketType
    priority: Priority = Priority.normal
    subject: Subject
    channel: Channel = "web"
    description: FreeText | None = None
    # When the helpdesk opened the ticket, if earlier than the journey's start:
    # the SLA runs from then.
    opened_at: Moment | None = None
    policy: TicketPolicy | None = None


class Respond(Lenient):
    agent_id: str = ""
    note: str | None = None


class WaitOnCustomer(Lenient):
    note: str | None = None


class CustomerReplied(Lenient):
    note: str | None = None


class Resolve(Lenient):
    agent_id: str = ""
    resolution: str = ""


class Reopen(Lenient):
    reason: str = ""


class Rate(Lenient):
    score: int | None = None
    comment: str | None = None


class Transfer(Lenient):
    """Hand the ticket to another team (必要时转交技术团队): its least-loaded
    agent takes it; the SLA clock keeps running."""

    to_group: str = ""
    reason: str = ""
    by: str = ""


# Activity payloads ----------------------------------------------------------------


class OpenTicketRequest(Lenient):
    ticket: TicketInput
    workflow_id: str
    opened_at: AwareDatetime
    now: AwareDatetime
    policy: TicketPolicy


class SlaDeadlines(Lenient):
    """When the resolution target falls due on the SLA clock, and the manager
    level after it; None while the clock is paused or stopped."""

    resolution_due: AwareDatetime | None = None
    manager_due: AwareDatetime | None = None


class TicketOpened(Lenient):
    priority: Priority
    requested_priority: Priority
    priority_raised: bool = False
    complaint_words: list[str] = Field(default_factory=list)
    group: str
    assignee_id: str | None = None
    supervisor_id: str | None = None
    senior_routing: bool = False
    first_response_due: AwareDatetime
    warning_at: AwareDatetime
    first_response_manager_due: AwareDatetime
    clock: SlaClock
    deadlines: SlaDeadlines


class ResponseRequest(Lenient):
    ticket_id: str
    workflow_id: str
    agent_id: str
    at: AwareDatetime
    first: bool
    n: int
    note: str | None = None


class ClockChange(Lenient):
    """A move of the SLA clock (waiting on the customer, the reply, a reopen)
    with the clock after it; the activity stores it and its deadlines."""

    ticket_id: str
    workflow_id: str
    kind: Literal["waiting_on_customer", "customer_replied", "reopened"]
    at: AwareDatetime
    clock: SlaClock
    stage: TicketStage
    manager_after: timedelta
    n: int
    reason: str | None = None


class ResolveRequest(Lenient):
    ticket_id: str
    workflow_id: str
    agent_id: str
    resolution: str
    at: AwareDatetime
    clock: SlaClock
    first_response: bool
    n: int


class TicketEscalation(Lenient):
    ticket_id: str
    workflow_id: str
    kind: EscalationKind
    level: int
    n: int
    at: AwareDatetime
    stage: TicketStage  # the ticket's stage once escalated
    due_at: AwareDatetime | None = None
    reason: str
    comment: str | None = None
    from_staff_id: str | None = None
    reassign: bool = False


class TicketEscalated(Lenient):
    to_staff_id: str | None
    reassigned_to: str | None = None


class TicketReassignment(Lenient):
    """The assignee `staff_id` was deactivated: the ticket goes to another active
    agent of its group (a senior one for a complaint, when one is active)."""

    ticket_id: str
    workflow_id: str
    group: str
    staff_id: str
    min_seniority: int | None = None
    at: AwareDatetime
    n: int


class TicketTransfer(Lenient):
    """The ticket goes to `to_group`, routed as a new ticket of that group is."""

    ticket_id: str
    workflow_id: str
    to_group: str
    reason: str
    by: str
    min_seniority: int | None = None
    at: AwareDatetime
    n: int


class TicketReassigned(Lenient):
    """Who holds the ticket now (None: nobody active could take it) and who was
    told: the new assignee, or whoever must find one."""

    assignee_id: str | None
    notify_id: str | None
    supervisor_id: str | None = None
    # None: an agent of the group; "supervisor": the supervisor took it over;
    # "unassigned": nobody active in the group, the manager was told.
    fallback: Literal["supervisor", "unassigned"] | None = None
    senior: bool = False


class TicketClosed(Lenient):
    ticket_id: str
    workflow_id: str
    at: AwareDatetime
    reason: str


class RatingRecord(Lenient):
    ticket_id: str
    workflow_id: str
    score: int
    comment: str | None = None
    at: AwareDatetime
    n: int
    # The close a rating brings, in the same activity (journeys started since
    # folded-store-calls).
    close: TicketClosed | None = None
