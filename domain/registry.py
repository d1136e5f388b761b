"""The journey registry: one entry per journey, read by everything that serves
every journey — the worker (workflows and activities), the `crm` command
(sub-apps, diagrams), staff deactivation (who holds a role in which open
journey), the KPI report (funnels and colours) and the tests (harness, history
recorders, replay).

Entries name code by its import path (`module:attribute`) and `load` imports
it when asked, so reading the registry costs nothing: `crm --help` does not
load Temporal or SQLAlchemy for it. Adding a journey is one entry here; the
rest of its code lives in its own modules (`docs/journeys.md`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JourneyEntry:
    """Where a journey's parts are and how it is named."""

    name: str  # the journey's name: CrmJourney, the report's key, `crm journey diagram NAME`
    workflow: str  # the workflow class, `module:Class`
    activities: str  # the activity class, `module:Class` (`activities/parts.py`)
    policy: str  # the policy model, `module:Class`; settings give its values
    id_prefix: str  # workflow ids are `{id_prefix}-{entity id}`
    entity_kind: str  # what its messages and tasks are about ("lead", "enrollment")
    noun: str  # how commands name one ("lead", "enrolment")
    # `crm NAME …`: the sub-app, `module:app`, its command name and its help
    # (declared here, so `crm --help` lists it without importing the sub-app).
    cli: str | None = None
    cli_name: str | None = None
    cli_help: str = ""
    # A function (session, staff_id) -> entity ids of the open journeys in which
    # the staff member holds a role, each told `staff_deactivated` on deactivation.
    open_roles: str | None = None
    # The report: the main path in order, the exits and side events, its colour.
    funnel: tuple[str, ...] = ()
    exits: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()  # (step recorded, funnel step it counts as)
    colour: str = "#7b8794"
    # Other workflows the journey's activities start (the RFM sweep).
    more_workflows: tuple[str, ...] = ()
    # A function (session, Person) -> Held: the journey's records about a
    # person being erased, their free text tombstoned (`activities/store/
    # erasure.py`). Journeys about a customer or lead themselves need none.
    erasure: str | None = None
    # A function (settings) -> {schedule id: temporalio Schedule}: what the
    # worker keeps on the server for the journey (`activities/schedules.py`).
    schedules: str | None = None

    def workflow_id(self, entity_id: str) -> str:
        return f"{self.id_prefix}-{entity_id}"


JOURNEYS: tuple[JourneyEntry, ...] = (
    JourneyEntry(
        name="lead",
        workflow="workflows.lead:LeadJourney",
        activities="activities.leads:LeadActivities",
        policy="domain.policy:LeadPolicy",
        id_prefix="lead",
        entity_kind="lead",
        noun="lead",
        cli="starter.cli.lead:lead_app",
        cli_name="lead",
        cli_help=(
            "Lead journeys: start, claim, log contact, convert, discard, status; erase "
            "on request."
        ),
        open_roles="activities.lead_records:open_roles",
        funnel=("received", "assigned", "first_contact", "converted"),
        exits=("escalated", "discarded", "stale", "merged", "pooled"),
        aliases=(("contacted", "first_contact"), ("claimed", "assigned"),
                 ("reassigned", "assigned")),
        colour="#2680c2",
    ),
    JourneyEntry(
        name="course",
        workflow="workflows.course:CourseJourney",
        activities="activities.courses:CourseActivities",
        policy="domain.courses:CoursePolicy",
        id_prefix="enrollment",
        entity_kind="enrollment",
        noun="enrolment",
        cli="starter.cli.course:course_app",
        cli_name="course",
        cli_help="Course journeys: enroll, end the course, log the callback, status.",
        open_roles="activities.courses:open_roles",
        funnel=("enrolled", "course_ended", "callback_task", "callback_logged"),
        exits=("escalated",),
        aliases=(("callback_renewal_intent", "callback_logged"),
                 ("callback_no_interest", "callback_logged"),
                 ("callback_unreachable", "callback_logged")),
        colour="#3ebd93",
        erasure="activities.courses:personal_data",
    ),
    JourneyEntry(
        name="payment",
        workflow="workflows.payment:PaymentJourney",
        activities="activities.payments:PaymentActivities",
        policy="domain.payments:PaymentPolicy",
        id_prefix="contract",
        entity_kind="contract",
        noun="contract",
        cli="starter.cli.contract:contract_app",
        cli_name="contract",
        cli_help="Contract payment journeys: sign, accept, pay, cancel, status.",
        open_roles="activities.payment_records:open_roles",
        funnel=("signed", "accepted", "payment_received", "paid"),
        exits=("overdue", "overdue_escalated", "cancelled"),
        colour="#f0b429",
        erasure="activities.payment_records:personal_data",
    ),
    JourneyEntry(
        name="lifecycle",
        workflow="workflows.lifecycle:CustomerLifecycle",
        activities="activities.lifecycle:LifecycleActivities",
        policy="domain.lifecycle:LifecyclePolicy",
        id_prefix="customer",
        entity_kind="customer",
        noun="customer",
        cli="starter.cli.customer:customer_app",
        cli_name="customer",
        cli_help=(
            "Customers: add and list them in the store; report purchases and opt-outs "
            "to their lifecycle journeys, status; erase one on request."
        ),
        open_roles="activities.lifecycle_records:open_roles",
        funnel=("purchased", "dormant", "reactivated"),
        exits=("lost",),
        colour="#9446ed",
        more_workflows=("workflows.lifecycle:RfmSweep",),
        schedules="activities.rfm:schedules",
    ),
    JourneyEntry(
        name="ticket",
        workflow="workflows.ticket:TicketJourney",
        activities="activities.tickets:TicketActivities",
        policy="domain.tickets:TicketPolicy",
        id_prefix="ticket",
        entity_kind="ticket",
        noun="ticket",
        cli="starter.cli.ticket:ticket_app",
        cli_name="ticket",
        cli_help="Ticket journeys: open, respond, wait, reply, resolve, reopen, rate, status.",
        open_roles="activities.ticket_records:open_roles",
        funnel=("opened", "first_response", "resolved", "closed"),
        exits=("breached", "escalated", "reopened", "rated"),
        colour="#e12d39",
        erasure="activities.ticket_records:personal_data",
    ),
    JourneyEntry(
        name="membership",
        workflow="workflows.membership:MembershipJourney",
        activities="activities.loyalty:LoyaltyActivities",
        policy="domain.loyalty:LoyaltyPolicy",
        id_prefix="membership",
        entity_kind="member",
        noun="member",
        cli="starter.cli.loyalty:loyalty_app",
        cli_name="loyalty",
        cli_help=(
            "Loyalty: join, refund, behaviour, grant, redeem; balance, history, level, "
            "report."
        ),
        open_roles="activities.loyalty_records:open_roles",
        funnel=("joined", "level_kept", "level_changed"),
        exits=("retention_offered", "retention_kept", "referral_converted"),
        colour="#d9822b",
        erasure="activities.loyalty_records:personal_data",
    ),
    JourneyEntry(
        name="opportunity",
        workflow="workflows.opportunity:OpportunityJourney",
        activities="activities.opportunities:OpportunityActivities",
        policy="domain.opportunities:OpportunityPolicy",
        id_prefix="opportunity",
        entity_kind="opportunity",
        noun="opportunity",
        cli="starter.cli.opportunity:opportunity_app",
        cli_name="opportunity",
        cli_help=(
            "Opportunity journeys: start, advance, forecast, activity, quote, win, "
            "lose, status."
        ),
        open_roles="activities.opportunity_records:open_roles",
        funnel=("opened", "proposal", "negotiation", "won"),
        exits=("lost", "stalled", "stalled_escalated", "close_date_passed"),
        colour="#0f609b",
        erasure="activities.opportunity_records:personal_data",
    ),
    JourneyEntry(
        name="onboarding",
        workflow="workflows.onboarding:OnboardingJourney",
        activities="activities.onboarding:OnboardingActivities",
        policy="domain.onboarding:OnboardingPolicy",
        id_prefix="onboarding",
        entity_kind="onboarding",
        noun="onboarding",
        cli="starter.cli.onboarding:onboarding_app",
        cli_name="onboarding",
        cli_help="Onboarding after signing: start, group-ready, delivered, status.",
        open_roles="activities.onboarding:open_roles",
        funnel=("opened", "group_ready", "delivered", "checked_in"),
        exits=("delivery_escalated",),
        colour="#27ab83",
        erasure="activities.onboarding:personal_data",
    ),
    JourneyEntry(
        name="nps",
        workflow="workflows.nps:NpsJourney",
        activities="activities.nps:NpsActivities",
        policy="domain.nps:NpsPolicy",
        id_prefix="nps",
        entity_kind="nps",
        noun="survey",
        cli="starter.cli.nps:nps_app",
        cli_name="nps",
        cli_help="NPS surveys: launch, start, answer, follow-up, status.",
        open_roles="activities.nps:open_roles",
        funnel=("asked", "answered"),
        exits=("reminded", "expired", "follow_up_escalated", "followed_up"),
        colour="#d64545",
        more_workflows=("workflows.nps:NpsLaunch",),
        schedules="activities.nps:schedules",
        erasure="activities.nps:personal_data",
    ),
    JourneyEntry(
        name="campaign",
        workflow="workflows.campaign:CampaignJourney",
        activities="activities.campaigns:CampaignActivities",
        policy="domain.campaigns:CampaignPolicy",
        id_prefix="campaign",
        entity_kind="campaign",
        noun="campaign run",
        cli="starter.cli.campaign:campaign_app",
        cli_name="campaign",
        cli_help="Campaigns: define, examples, launch, pause, resume, status, results.",
        open_roles="activities.campaigns:open_roles",
        funnel=("converted",),
        exits=("completed",),
        colour="#8662c7",
        erasure="activities.campaigns:personal_data",
    ),
)


def journey(name: str) -> JourneyEntry:
    """The entry of the journey called `name`, or a KeyError naming the known ones."""
    for entry in JOURNEYS:
        if entry.name == name:
            return entry
    raise KeyError(f"no journey {name!r}; the journeys are "
                   + ", ".join(entry.name for entry in JOURNEYS))


def load(path: str) -> Any:
    """The object at `module:attribute`."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)
