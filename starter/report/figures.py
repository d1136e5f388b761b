"""What the KPI report holds: each journey's funnel steps, the ticket figures
of a group or an agent, and the report of a period."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from statistics import fmean, median
from typing import Any

from domain.registry import JOURNEYS
from domain.tickets import TicketStage
from starter.report.campaigns import CampaignResult
from starter.report.customers import CustomerFigures
from starter.report.loyalty import LoyaltyFigures
from starter.report.nps import NpsFigures
from starter.report.pipeline import PipelineFigures

# Each journey's main path, in order; the other steps are exits or side events.
FUNNELS: dict[str, list[str]] = {entry.name: list(entry.funnel) for entry in JOURNEYS}
EXITS: dict[str, list[str]] = {entry.name: list(entry.exits) for entry in JOURNEYS}
# Steps recorded under a more specific name that count as one funnel step.
ALIASES: dict[str, str] = {step: counted for entry in JOURNEYS
                           for step, counted in entry.aliases}


@dataclass
class FunnelStep:
    step: str
    reached: int
    dropped: int  # reached the previous step but not this one


# A ticket counts as resolved in these stages (a reopened one no longer does).
RESOLVED_STAGES = (TicketStage.resolved.value, TicketStage.closed.value)
# CSAT: the share of ratings at or above this score is the satisfied share.
SATISFIED_SCORE = 4
UNASSIGNED = "unassigned"


@dataclass
class TicketFigures:
    """The tickets of one group, one agent or all of them."""

    opened: int = 0
    first_response_seconds: list[float] = field(default_factory=list, repr=False)
    first_response_breached: int = 0
    resolved: int = 0
    resolution_breached: int = 0
    ratings: int = 0
    rating_total: int = 0
    satisfied: int = 0  # ratings of SATISFIED_SCORE or more

    @property
    def answered(self) -> int:
        return len(self.first_response_seconds)

    @property
    def first_response_median(self) -> float | None:
        return median(self.first_response_seconds) if self.first_response_seconds else None

    @property
    def first_response_mean(self) -> float | None:
        return fmean(self.first_response_seconds) if self.first_response_seconds else None

    @property
    def first_response_breach_rate(self) -> float | None:
        return self.first_response_breached / self.opened if self.opened else None

    @property
    def resolution_rate(self) -> float | None:
        return self.resolved / self.opened if self.opened else None

    @property
    def resolution_breach_rate(self) -> float | None:
        return self.resolution_breached / self.opened if self.opened else None

    @property
    def csat(self) -> float | None:
        """The average rating, 1 to 5."""
        return self.rating_total / self.ratings if self.ratings else None

    @property
    def satisfied_share(self) -> float | None:
        return self.satisfied / self.ratings if self.ratings else None


@dataclass
class Report:
    start: date
    end: date  # exclusive
    as_of: datetime  # when ticket states were read and deadlines judged
    leads_received: int = 0
    leads_converted: int = 0
    first_touch_hours: float | None = None
    payments_collected: dict[str, Decimal] = field(default_factory=dict)
    # Overpayments: held for the customer, owed back or set against a later
    # invoice; not revenue, so not in `payments_collected`.
    payments_credit: dict[str, Decimal] = field(default_factory=dict)
    overdue_outstanding: dict[str, Decimal] = field(default_factory=dict)
    overdue_milestones: int = 0
    winback_customers: int = 0
    winback_reactivated: int = 0
    tiers: dict[str, int] = field(default_factory=dict)
    escalations: dict[str, int] = field(default_factory=dict)
    escalations_by_day: dict[str, dict[str, int]] = field(default_factory=dict)
    tickets: TicketFigures = field(default_factory=TicketFigures)
    ticket_groups: dict[str, TicketFigures] = field(default_factory=dict)
    ticket_agents: dict[tuple[str, str], TicketFigures] = field(default_factory=dict)
    breaches_by_day: dict[str, dict[str, int]] = field(default_factory=dict)
    funnels: dict[str, list[FunnelStep]] = field(default_factory=dict)
    exits: dict[str, dict[str, int]] = field(default_factory=dict)
    completed: dict[str, int] = field(default_factory=dict)
    customers: CustomerFigures = field(default_factory=CustomerFigures)
    pipeline: PipelineFigures = field(default_factory=PipelineFigures)
    nps: NpsFigures = field(default_factory=NpsFigures)
    loyalty: LoyaltyFigures = field(default_factory=LoyaltyFigures)
    campaigns: list[CampaignResult] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def conversion_rate(self) -> float | None:
        return self.leads_converted / self.leads_received if self.leads_received else None

    @property
    def winback_success_rate(self) -> float | None:
        return self.winback_reactivated / self.winback_customers if self.winback_customers \
            else None
