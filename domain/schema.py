"""The CRM store's schema (SQLAlchemy 2 typed models).

Imported by activities, migrations and the starter; never by workflows.
Money is integer minor units beside its currency; every time is UTC and comes
back with its offset on SQLite too (see `UtcDateTime`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes only; stored in UTC, returned in UTC on every engine."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps aware UTC times only")
        value = value.astimezone(UTC)
        # SQLite keeps text; drop the offset so values sort and compare as text.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON, list[str]: JSON}


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # rep, agent, advisor, supervisor, manager, finance
    role: Mapped[str] = mapped_column(String(20), index=True)
    group: Mapped[str | None] = mapped_column("group_name", String(64), index=True)
    regions: Mapped[list[str]] = mapped_column(default=list)
    product_lines: Mapped[list[str]] = mapped_column(default=list)
    seniority: Mapped[int] = mapped_column(Integer, default=0)
    manager_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    locale: Mapped[str] = mapped_column(String(16), default="zh-CN")
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    chat: Mapped[str | None] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer, default=50)
    created_at: Mapped[datetime]
    deactivated_at: Mapped[datetime | None]


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(16), default="zh-CN")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    phone: Mapped[str | None] = mapped_column(String(32), index=True)  # E.164
    email: Mapped[str | None] = mapped_column(String(320), index=True)  # normalised
    company: Mapped[str | None] = mapped_column(String(200))
    company_key: Mapped[str | None] = mapped_column(String(200), index=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    # Lifecycle: purchase figures kept current by the lifecycle journey, the
    # tier by the daily RFM sweep.
    first_purchase_at: Mapped[datetime | None]
    last_purchase_at: Mapped[datetime | None]
    order_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    favourite_category: Mapped[str | None] = mapped_column(String(64))
    lifecycle_state: Mapped[str | None] = mapped_column(String(20))
    # Deliberately unindexed: a changed tier is then a heap-only update
    # (migration 0006); reports count tiers over the table.
    tier: Mapped[str | None] = mapped_column(String(16))
    tier_changed_on: Mapped[date | None] = mapped_column(Date)
    advisor_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))

    # The RFM sweep's lookups by recency and first purchase, index-only on
    # PostgreSQL (on SQLite `id` is a last key column instead).
    __table_args__ = (
        Index("ix_customers_last_purchase_at_id", "last_purchase_at",
              postgresql_include=["id"]),
        Index("ix_customers_first_purchase_at_id", "first_purchase_at",
              postgresql_include=["id"]),
    )


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    company: Mapped[str | None] = mapped_column(String(200))
    company_key: Mapped[str | None] = mapped_column(String(200), index=True)
    region: Mapped[str] = mapped_column(String(64))
    product_line: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    need: Mapped[str | None] = mapped_column(Text)
    locale: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str] = mapped_column(String(20), index=True)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"))
    merged_into: Mapped[str | None] = mapped_column(ForeignKey("leads.id"))
    received_at: Mapped[datetime]
    assigned_at: Mapped[datetime | None]
    first_touch_due: Mapped[datetime | None]
    first_contact_at: Mapped[datetime | None]
    follow_up_due: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(Text)


class Interaction(Base):
    """A contact a person logged with a lead or customer."""

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    lead_id: Mapped[str | None] = mapped_column(ForeignKey("leads.id"), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    channel: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]


class Task(Base):
    """Work for a person: a first touch, a follow-up, a callback."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    entity_kind: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, done, cancelled
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_tasks_entity", "entity_kind", "entity_id", "status"),)


class Opportunity(Base):
    __tablename__ = "opportunities"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    lead_id: Mapped[str | None] = mapped_column(ForeignKey("leads.id"), unique=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"))
    name: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    created_at: Mapped[datetime]
    # The pipeline (opportunity journey): expected close, quote, outcome.
    close_date: Mapped[date | None] = mapped_column(Date)
    stage_entered_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None]
    quote_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    contract_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    lost_reason: Mapped[str | None] = mapped_column(String(32))
    lost_note: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]


class OpportunityStageChange(Base):
    """An opportunity's stage history: each stage it entered, when, and why."""

    __tablename__ = "opportunity_stages"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    opportunity_id: Mapped[str] = mapped_column(ForeignKey("opportunities.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(32))
    by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class Onboarding(Base):
    """A signed contract's onboarding: the service group, the first delivery
    and its deadline, the check-in."""

    __tablename__ = "onboardings"

    contract_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    service_lead_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    signed_at: Mapped[datetime]
    delivery_due_at: Mapped[datetime]
    group_link: Mapped[str | None] = mapped_column(Text)
    group_ready_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    delivered_by: Mapped[str | None] = mapped_column(String(64))
    delivery_note: Mapped[str | None] = mapped_column(Text)
    breached: Mapped[bool] = mapped_column(Boolean, default=False)
    checked_in_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(24))


class Escalation(Base):
    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    journey: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    from_staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    to_staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    at: Mapped[datetime]


class Touch(Base):
    """Every message, recorded under its idempotency key before it is sent."""

    __tablename__ = "touches"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    workflow_id: Mapped[str] = mapped_column(String(128), index=True)
    journey: Mapped[str] = mapped_column(String(20))
    step: Mapped[str] = mapped_column(String(64))
    message_class: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[str] = mapped_column(String(64), index=True)
    template: Mapped[str] = mapped_column(String(200))
    # pending -> sending -> sent | suppressed | deferred (-> pending again) | failed
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    deferred_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class Consent(Base):
    """Per-recipient, per-channel opt-out ("all" as channel covers every channel)."""

    __tablename__ = "consent"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))  # customer or lead
    subject_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16))  # marketing or all
    at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("subject_kind", "subject_id", "channel", "scope", name="uq_consent"),
    )


class JourneyEvent(Base):
    """Every step a journey reaches, for funnels."""

    __tablename__ = "journey_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    journey: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    detail: Mapped[dict[str, Any] | None]

    __table_args__ = (Index("ix_journey_events_funnel", "journey", "step", "at"),)


class SignalRejection(Base):
    __tablename__ = "signal_rejections"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    workflow_id: Mapped[str] = mapped_column(String(128), index=True)
    journey: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[str] = mapped_column(String(64))
    signal: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class Enrollment(Base):
    """A student on a course, with the advisor who calls them afterwards."""

    __tablename__ = "enrollments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    course_id: Mapped[str] = mapped_column(String(64), index=True)
    advisor_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    ends_at: Mapped[datetime]
    callback_due_at: Mapped[datetime | None]
    callback_outcome: Mapped[str | None] = mapped_column(String(32))
    callback_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20))
    enrolled_at: Mapped[datetime]


class Contract(Base):
    """A signed contract and its finance status; amounts in minor units."""

    __tablename__ = "contracts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # unpaid, partially_paid, paid, cancelled
    finance_status: Mapped[str] = mapped_column(String(20))
    signed_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64))


class PaymentMilestone(Base):
    __tablename__ = "payment_milestones"

    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    percent: Mapped[str] = mapped_column(String(16))  # exact decimal text
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    relative_to: Mapped[str] = mapped_column(String(16))
    due_days: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[str | None] = mapped_column(String(10))  # ISO date, customer-local
    overdue_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(24))


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), index=True)
    reference: Mapped[str] = mapped_column(String(128))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    credit_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_at: Mapped[datetime]
    recorded_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("contract_id", "reference", name="uq_payments_reference"),)


class PaymentAllocation(Base):
    __tablename__ = "payment_allocations"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    contract_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(BigInteger)


class CustomerValue(Base):
    """A customer's lifetime value per currency (payments received)."""

    __tablename__ = "customer_values"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    lifetime_value_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class SalesFigure(Base):
    """What a sales owner has collected, per currency."""

    __tablename__ = "sales_figures"

    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    collected_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class Order(Base):
    """A purchase reported by the order system; idempotent by its id."""

    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    # Win-back credit: the campaign coupon and touch that brought the customer back.
    credited_coupon: Mapped[str | None] = mapped_column(String(32))
    credited_touch: Mapped[str | None] = mapped_column(String(300))

    # Shaped for the RFM sweep (migration 0006): a customer's figures come from
    # the first index alone; the other two find the day's candidates. A coupon
    # credits at most one order (migration 0008): two orders racing for it
    # cannot both commit, whatever the activity checked before.
    __table_args__ = (
        Index("ux_orders_credited_coupon", "credited_coupon", unique=True),
        Index("ix_orders_customer_at_amount", "customer_id", "at",
              postgresql_include=["amount_minor"]),
        Index("ix_orders_at_customer_id", "at", postgresql_include=["customer_id"]),
        Index("ix_orders_recorded_at", "recorded_at"),
    )


class CouponRecord(Base):
    """A unique, single-use coupon: `redeemed_order_id` is the one order it
    credited, whether presented at checkout or credited to its campaign."""

    __tablename__ = "coupons"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    campaign: Mapped[str] = mapped_column(String(32))
    discount_percent: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    redeemed_order_id: Mapped[str | None] = mapped_column(String(64))
    redeemed_at: Mapped[datetime | None]


class TierOutbox(Base):
    """Tier changes that carry a strategy, waiting to be told to the lifecycle journey."""

    __tablename__ = "tier_outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(16))
    business_day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(index=True)

    __table_args__ = (
        UniqueConstraint("customer_id", "tier", "business_day", name="uq_tier_outbox"),
    )


class RfmSweep(Base):
    """Each day's sweep: which business day, how, how many tiers changed."""

    __tablename__ = "rfm_sweeps"

    business_day: Mapped[date] = mapped_column(Date, primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    changed: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]


class Ticket(Base):
    """A support ticket and its SLA figures (seconds on the SLA clock)."""

    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    type: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(10))
    requested_priority: Mapped[str] = mapped_column(String(10))
    # Complaint words raised the priority and routed the ticket to senior agents.
    priority_raised: Mapped[bool] = mapped_column(Boolean, default=False)
    complaint_words: Mapped[list[str]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(32))
    group: Mapped[str] = mapped_column("group_name", String(64), index=True)
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    # a TicketStage: awaiting_response ... closed
    status: Mapped[str] = mapped_column(String(24), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    first_response_due: Mapped[datetime]
    first_response_at: Mapped[datetime | None]
    first_responder_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    first_response_seconds: Mapped[float | None]
    first_response_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    resolution_target_seconds: Mapped[float]
    resolution_due_at: Mapped[datetime | None]  # None while the SLA clock is stopped
    sla_used_seconds: Mapped[float] = mapped_column(default=0.0)
    sla_paused_seconds: Mapped[float] = mapped_column(default=0.0)
    resolution_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    resolution: Mapped[str | None] = mapped_column(Text)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    rating: Mapped[int | None] = mapped_column(Integer)
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime]


class TicketEvent(Base):
    """What happened to a ticket, by whom, in which group: FRT, resolution time,
    breaches and escalations are reported per group and agent from these.
    `at` is journey time; `recorded_at` the store's wall clock when written."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    group: Mapped[str] = mapped_column("group_name", String(64))
    detail: Mapped[dict[str, Any] | None]

    __table_args__ = (Index("ix_ticket_events_report", "kind", "group_name", "at"),)


class TicketRating(Base):
    """A customer's rating of a resolution (1-5), for CSAT per group and agent."""

    __tablename__ = "ticket_ratings"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    group: Mapped[str] = mapped_column("group_name", String(64), index=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(index=True)


class Erasure(Base):
    """A person erased on request: whom, by whom, when and why, and the journeys
    whose Temporal history still holds encrypted copies until the namespace's
    retention ends."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))  # customer or lead
    subject_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    erased_by: Mapped[str] = mapped_column(String(200))
    erased_at: Mapped[datetime]
    workflow_ids: Mapped[list[str]] = mapped_column(default=list)

    __table_args__ = (Index("ix_erasures_subject", "subject_kind", "subject_id"),)


class LoyaltyMember(Base):
    """A customer in the loyalty programme: when they joined (the yearly cycle
    runs from then), their level and its discount for other services to read,
    their referral code and who referred them."""

    __tablename__ = "loyalty_members"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    joined_at: Mapped[datetime]
    birth_date: Mapped[date | None] = mapped_column(Date)
    level: Mapped[str] = mapped_column(String(16))
    discount_percent: Mapped[int] = mapped_column(Integer, default=0)
    level_since: Mapped[datetime]
    referral_code: Mapped[str] = mapped_column(String(32), unique=True)
    referred_by: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    referral_rewarded_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class LoyaltyPoints(Base):
    """The points ledger: one row per credit or debit, idempotent by `key`
    (`order:ID`, `refund:ID`, `share:ID`, ...), with the balance after it.
    A credit keeps what is left of it and when it expires; a debit, the
    credits it took from (`takes`: credit key -> points)."""

    __tablename__ = "loyalty_points"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(300), default="")
    points: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None]
    remaining: Mapped[int] = mapped_column(BigInteger, default=0)
    spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    takes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime]

    __table_args__ = (
        Index("ix_loyalty_points_customer_id", "customer_id", "id"),
        Index("ix_loyalty_points_kind_at", "kind", "at"),
    )


class Segment(Base):
    """A tag: a name and a rule over the store (`domain/segments.py`), its size
    and when its members were last computed."""

    __tablename__ = "segments"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    rule: Mapped[dict[str, Any]]
    description: Mapped[str] = mapped_column(Text, default="")
    defined_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    refreshed_at: Mapped[datetime | None]
    size: Mapped[int] = mapped_column(Integer, default=0)
    # The store's clock when the last refresh looked at the facts; empty, the
    # next refresh recomputes every customer (a new or redefined rule).
    facts_seen_at: Mapped[datetime | None]


class SegmentMember(Base):
    """A customer in a segment, since the refresh that found them in it."""

    __tablename__ = "segment_members"

    segment: Mapped[str] = mapped_column(ForeignKey("segments.name"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True,
                                             index=True)
    since: Mapped[datetime]


class SegmentChange(Base):
    """A customer entering or leaving a segment, at the refresh that saw it."""

    __tablename__ = "segment_changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    segment: Mapped[str] = mapped_column(ForeignKey("segments.name"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    change: Mapped[str] = mapped_column(String(8))  # entered, left
    at: Mapped[datetime]

    __table_args__ = (Index("ix_segment_changes_segment_at", "segment", "at"),)


class CustomerInterest(Base):
    """A category a customer follows (the app, a social account or the
    mini-program reports it): the 互动偏好 a segment rule can ask about."""

    __tablename__ = "customer_interests"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), default="app")
    at: Mapped[datetime]

    __table_args__ = (Index("ix_customer_interests_category", "category", "customer_id"),)


class CustomerFactStamp(Base):
    """When a fact a segment rule reads last changed for a customer (a field a
    rule may test, the tier, an order, an interaction, a followed category),
    by the store's clock. The database's triggers keep it (migration 0017),
    never the application: the segment refresh looks up who changed since it
    last looked."""

    __tablename__ = "customer_fact_stamps"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    changed_at: Mapped[datetime]

    __table_args__ = (Index("ix_customer_fact_stamps_changed_at", "changed_at", "customer_id"),)


class NpsSurvey(Base):
    """One customer's NPS survey for a period: when it was asked and closes,
    the answer (0-10, an optional reason and the category it matched), and a
    detractor's follow-up: due when, done when and by whom, escalated to whom."""

    __tablename__ = "nps_surveys"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # customer-period
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    period: Mapped[str] = mapped_column(String(8))
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    asked_at: Mapped[datetime]
    reminded_at: Mapped[datetime | None]
    closes_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    score: Mapped[int | None] = mapped_column(Integer)
    respondent: Mapped[str | None] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(32))
    follow_up_due: Mapped[datetime | None]
    followed_up_at: Mapped[datetime | None]
    followed_up_by: Mapped[str | None] = mapped_column(String(64))
    escalated_to: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_nps_surveys_period", "period", "answered_at"),)


class Campaign(Base):
    """A campaign's declaration (`domain/campaigns.py`) and whether it runs:
    off (defined, never launched), active or paused."""

    __tablename__ = "campaigns"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    definition: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(10))
    defined_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The last segment change (`segment_changes.id`) an on_entry campaign has
    # enrolled from: set at launch, moved on by each enrolment.
    entries_seen: Mapped[int | None] = mapped_column(BigInteger)


class CampaignMember(Base):
    """A customer's run of a campaign: the arm they were put in (a variant or
    the hold-out) when they entered, and how the run ended."""

    __tablename__ = "campaign_members"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign: Mapped[str] = mapped_column(ForeignKey("campaigns.name"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    run: Mapped[int] = mapped_column(Integer)
    arm: Mapped[str] = mapped_column(String(20))
    entered_at: Mapped[datetime]
    attributed_until: Mapped[datetime]  # orders before this are the campaign's
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(10))  # converted, completed
    order_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("campaign", "customer_id", "run",
                                       name="uq_campaign_members_run"),)
