"""The loyalty activities' requests and results: what the membership journey
asks of the store (joining, the ledger, the level, referrals) and what it
answers."""

from __future__ import annotations

from datetime import date

from pydantic import AwareDatetime, Field

from domain.journeys import Lenient
from domain.loyalty import MemberPurchase, Refund


class EnrolRequest(Lenient):
    customer_id: str
    workflow_id: str
    joined_at: AwareDatetime
    birth_date: date | None = None
    referral_code: str | None = None
    now: AwareDatetime


class Enrolment(Lenient):
    referral_code: str
    referrer_id: str | None = None
    referral_refused: str | None = None


class DatesRequest(Lenient):
    customer_id: str
    joined_at: AwareDatetime
    cycle: int
    birthday_years: list[int] = Field(default_factory=list)
    now: AwareDatetime


class MembershipDates(Lenient):
    anniversary_at: AwareDatetime
    birthday_at: AwareDatetime | None = None
    birthday_year: int | None = None  # the customer-local year it greets
    next_expiry_at: AwareDatetime | None = None


class OrderPoints(Lenient):
    customer_id: str
    workflow_id: str
    purchase: MemberPurchase
    now: AwareDatetime


class PointsChange(Lenient):
    """A ledger write: a credit or debit under `key`, once."""

    customer_id: str
    key: str
    kind: str
    points: int
    reason: str = ""
    source: str = ""
    now: AwareDatetime


class PointsResult(Lenient):
    duplicate: bool = False
    points: int = 0  # signed: what this write added to the balance
    balance: int = 0
    multiplier: int = 1
    reasons: list[str] = Field(default_factory=list)
    first_paid_order: bool = False
    refused: str | None = None
    receipt: str | None = None
    next_expiry_at: AwareDatetime | None = None
    expiring_points: int = 0


class RefundRequest(Lenient):
    customer_id: str
    refund: Refund
    now: AwareDatetime


class ExpiryRequest(Lenient):
    customer_id: str
    workflow_id: str
    now: AwareDatetime


class RetentionRequest(Lenient):
    customer_id: str
    workflow_id: str
    level: str
    cycle: int
    anniversary_at: AwareDatetime
    now: AwareDatetime


class RetentionResult(Lenient):
    would_drop: bool
    spend_minor: int
    needed_minor: int = 0
    keeps: str | None = None  # the level the offer keeps
    drops_to: str | None = None


class LevelRequest(Lenient):
    customer_id: str
    workflow_id: str
    level: str
    cycle: int
    offered: bool
    now: AwareDatetime


class LevelResult(Lenient):
    level: str
    previous: str
    discount_percent: int
    spend_minor: int
    changed: bool
    kept_after_offer: bool = False


class ReferralReward(Lenient):
    referee_id: str
    referrer_id: str
    order_id: str
    workflow_id: str
    now: AwareDatetime


class ReferralResult(Lenient):
    rewarded: bool
    referrer_points: int = 0
    referee_points: int = 0
