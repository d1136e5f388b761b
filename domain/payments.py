"""Payment milestones: the plan, its amounts and dates, allocation of payments.

Pure rules (no I/O, no clock) and the journey's boundary models. Money is
Decimal, never float; amounts are rounded to the currency's minor unit half-up,
the last milestone taking the remainder so the parts add up exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, Field, ValidationInfo, model_validator

from domain import limits
from domain.journeys import Lenient, Rejection
from domain.limits import Currency, DayCount, Id, MilestoneName, Moment
from domain.money import round_money

JOURNEY = "payment"


def contract_workflow_id(contract_id: str) -> str:
    return f"contract-{contract_id}"


def _percent_problem(percent: Decimal) -> str | None:
    if not 0 < percent <= 100:
        return f"{percent} is not more than 0 and at most 100"
    if len(str(percent)) > limits.PERCENT_TEXT:
        return (f"has more digits than the store keeps ({limits.PERCENT_TEXT} characters "
                "of decimal text)")
    return None


class MilestoneRule(Lenient):
    """A share of the contract due some days after signing or after acceptance."""

    percent: Annotated[Decimal, limits.store_limit(_percent_problem)]
    due_days: DayCount
    relative_to: Literal["signing", "acceptance"] = "signing"
    name: MilestoneName | None = None


DEFAULT_PLAN = [
    MilestoneRule(percent=Decimal(30), due_days=7, relative_to="signing", name="deposit"),
    MilestoneRule(percent=Decimal(70), due_days=30, relative_to="acceptance", name="balance"),
]


class PaymentPolicy(Lenient):
    """Payment milestones (docs/design.md, journey 2)."""

    reminder_days_before: list[DayCount] = Field(default_factory=lambda: [7, 1, 0])
    overdue_reminder_days_after: DayCount = 1
    escalation_days_after: DayCount = 7
    # At least a day: escalations repeat until the milestone is paid.
    escalation_repeat_days: Annotated[int, limits.store_limit(
        lambda days: limits.range_problem(days, 1, limits.MAX_DAYS, unit=" days"))] = 7
    # Customer-local time of day at which reminders and escalations go out.
    notice_time: time = time(10, 0)
    default_plan: list[MilestoneRule] = Field(default_factory=lambda: list(DEFAULT_PLAN))


class MilestoneState(StrEnum):
    awaiting_acceptance = "awaiting_acceptance"
    scheduled = "scheduled"
    overdue = "overdue"
    paid = "paid"
    cancelled = "cancelled"


class ContractStage(StrEnum):
    awaiting_payment = "awaiting_payment"
    partially_paid = "partially_paid"
    overdue = "overdue"
    paid = "paid"
    cancelled = "cancelled"


class Milestone(Lenient):
    seq: int
    name: str
    percent: Decimal
    amount: Decimal
    paid: Decimal = Decimal(0)
    relative_to: Literal["signing", "acceptance"]
    due_days: int
    due_date: date | None = None
    overdue_at: AwareDatetime | None = None
    state: MilestoneState = MilestoneState.scheduled

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.paid


class ActionKind(StrEnum):
    reminder = "reminder"  # before or on the due date
    overdue = "overdue"  # the local midnight after the due date
    overdue_reminder = "overdue_reminder"
    escalation = "escalation"


class Action(Lenient):
    """Something the journey does at a moment, about one milestone."""

    at: AwareDatetime
    kind: ActionKind
    seq: int
    days_before: int | None = None
    level: int = 0


# -- pure rules ------------------------------------------------------------------


class PlanError(ValueError):
    pass


def split_amounts(total: Decimal, percents: list[Decimal], currency: str) -> list[Decimal]:
    """Each share rounded half-up to the minor unit; the last takes the remainder."""
    if not percents:
        raise PlanError("a payment plan needs at least one milestone")
    if any(p <= 0 for p in percents):
        raise PlanError("every milestone's percentage must be positive")
    if sum(percents) != 100:
        raise PlanError(f"milestone percentages add up to {sum(percents)}, not 100")
    parts = [round_money(total * p / 100, currency) for p in percents[:-1]]
    parts.append(total - sum(parts, Decimal(0)))
    return parts


def local_moment(day: date, at: time, zone: str) -> datetime:
    """`at` on `day` in `zone`, as UTC (a DST gap or fold resolves the zoneinfo way)."""
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def due_date(anchor: datetime, days: int, zone: str) -> date:
    """The calendar date, in the customer's zone, `days` after the anchor's local date."""
    return anchor.astimezone(ZoneInfo(zone)).date() + timedelta(days=days)


def overdue_from(due: date, zone: str) -> datetime:
    """A milestone is overdue from the local midnight after its due date."""
    return local_moment(due + timedelta(days=1), time(0, 0), zone)


def milestone_actions(milestone: Milestone, *, zone: str, policy: PaymentPolicy,
                      now: datetime) -> list[Action]:
    """Reminders before and on the due date, the overdue reminder and the first
    escalation, at the policy's local notice time; moments already past are
    not scheduled (a contract signed today is not reminded of today's past)."""
    assert milestone.due_date is not None
    actions = [
        Action(at=local_moment(milestone.due_date - timedelta(days=d), policy.notice_time, zone),
               kind=ActionKind.reminder, seq=milestone.seq, days_before=d)
        for d in sorted(policy.reminder_days_before, reverse=True)
    ]
    assert milestone.overdue_at is not None
    actions.append(Action(at=milestone.overdue_at, kind=ActionKind.overdue, seq=milestone.seq))
    after = milestone.due_date + timedelta(days=policy.overdue_reminder_days_after)
    actions.append(Action(at=local_moment(after, policy.notice_time, zone),
                          kind=ActionKind.overdue_reminder, seq=milestone.seq))
    escalate = milestone.due_date + timedelta(days=policy.escalation_days_after)
    actions.append(Action(at=local_moment(escalate, policy.notice_time, zone),
                          kind=ActionKind.escalation, seq=milestone.seq, level=1))
    return [a for a in actions if a.at > now]


def next_escalation(previous: Action, *, zone: str, policy: PaymentPolicy) -> Action:
    """The same local time, `escalation_repeat_days` later."""
    local_day = previous.at.astimezone(ZoneInfo(zone)).date()
    return Action(
        at=local_moment(local_day + timedelta(days=policy.escalation_repeat_days),
                        policy.notice_time, zone),
        kind=ActionKind.escalation, seq=previous.seq, level=previous.level + 1,
    )


@dataclass(frozen=True)
class OwnerCandidate:
    """A rep who could own a contract, with the contracts they already carry."""

    staff_id: str
    regions: frozenset[str]
    product_lines: frozenset[str]
    open_contracts: int
    active: bool = True


def choose_contract_owner(candidates: Iterable[OwnerCandidate], *, regions: Iterable[str],
                          product_lines: Iterable[str], exclude: Iterable[str] = ()
                          ) -> str | None:
    """The active rep who takes over a contract: one who shares the previous
    owner's region and product line (where the previous owner had any) comes
    first, then the fewest open contracts, then the lower id, so the choice is
    the same on every run. None when no active rep is left."""
    excluded, patch_regions, patch_lines = set(exclude), set(regions), set(product_lines)
    eligible = [c for c in candidates if c.active and c.staff_id not in excluded]
    if not eligible:
        return None

    def same_patch(c: OwnerCandidate) -> bool:
        return bool((not patch_regions or c.regions & patch_regions)
                    and (not patch_lines or c.product_lines & patch_lines))

    best = min(eligible, key=lambda c: (not same_patch(c), c.open_contracts, c.staff_id))
    return best.staff_id


@dataclass(frozen=True)
class Allocation:
    applied: dict[int, Decimal]  # milestone seq -> amount
    credit: Decimal


def allocate(amount: Decimal, milestones: list[Milestone]) -> Allocation:
    """A payment goes to the milestones in order, each up to what it still owes;
    what is left over is kept as credit."""
    left = amount
    applied: dict[int, Decimal] = {}
    for milestone in sorted(milestones, key=lambda m: m.seq):
        if left <= 0:
            break
        if milestone.state is MilestoneState.cancelled:
            continue
        take = min(left, milestone.outstanding)
        if take > 0:
            applied[milestone.seq] = take
            left -= take
    return Allocation(applied=applied, credit=left)


# -- boundary models -------------------------------------------------------------


class ContractInput(Lenient):
    """A signed contract. Its values must fit the store (domain/limits.py): a
    start that cannot be written fails at once rather than retrying for ever."""

    contract_id: Id
    customer_id: Id
    owner_id: Id
    amount: Decimal
    currency: Currency = "CNY"
    signed_at: Moment
    milestones: list[MilestoneRule] | None = None
    policy: PaymentPolicy | None = None

    @model_validator(mode="after")
    def _amount_fits_the_currency(self, info: ValidationInfo) -> ContractInput:
        if not limits.limits_apply(info):
            return self
        problem = (f"{self.amount} must be positive" if self.amount <= 0
                   else limits.amount_problem(self.amount, self.currency))
        if problem:
            raise ValueError(f"amount: {problem}")
        return self


class Accept(Lenient):
    accepted_at: AwareDatetime | None = None


class RecordPayment(Lenient):
    amount: Decimal = Decimal(0)
    paid_at: AwareDatetime | None = None
    reference: str = ""
    currency: str | None = None


class Cancel(Lenient):
    reason: str = ""


class SignRequest(Lenient):
    contract: ContractInput
    plan: list[MilestoneRule]
    policy: PaymentPolicy
    workflow_id: str
    now: AwareDatetime


class Schedule(Lenient):
    """Milestones with their amounts and dates, and what falls due when."""

    milestones: list[Milestone]
    actions: list[Action]
    timezone: str


class AcceptRequest(Lenient):
    contract_id: str
    workflow_id: str
    accepted_at: AwareDatetime
    milestones: list[Milestone]
    policy: PaymentPolicy
    now: AwareDatetime


class PaymentRequest(Lenient):
    contract_id: str
    workflow_id: str
    amount: Decimal
    currency: str
    paid_at: AwareDatetime
    reference: str
    now: AwareDatetime
    # Names this call across its retries (e.g. `{workflow_id}:payment:{n}`);
    # without it the activity names it by its workflow run and activity id.
    key: str | None = None


class PaymentResult(Lenient):
    duplicate: bool = False
    milestones: list[Milestone]
    applied: dict[int, Decimal] = Field(default_factory=dict)
    credit: Decimal = Decimal(0)


class OverdueEscalation(Lenient):
    contract_id: str
    workflow_id: str
    seq: int
    level: int
    now: AwareDatetime


class EscalationTargets(Lenient):
    manager_id: str | None
    finance_ids: list[str]


class OwnerHandover(Lenient):
    """The contract's owner has left: who takes it over is decided in the store."""

    contract_id: str
    workflow_id: str
    previous_owner_id: str
    n: int
    now: AwareDatetime


class NewOwner(Lenient):
    """`how`: a rep took over; no active rep was left, so the previous owner's
    (nearest active) manager did; or nobody could, and finance was told."""

    owner_id: str | None
    previous_owner_id: str
    how: Literal["rep", "manager", "unassigned"]
    finance_ids: list[str] = Field(default_factory=list)


class ContractClosed(Lenient):
    contract_id: str
    workflow_id: str
    status: Literal["paid", "cancelled"]
    reason: str | None = None
    now: AwareDatetime


class ContractStatus(Lenient):
    contract_id: str
    customer_id: str
    owner_id: str
    amount: Decimal
    currency: str
    stage: ContractStage
    accepted_at: datetime | None = None
    milestones: list[Milestone] = Field(default_factory=list)
    paid: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    next_due: datetime | None = None
    next_action: Action | None = None
    references: list[str] = Field(default_factory=list)
    ignored_duplicates: int = 0
    rejections: list[Rejection] = Field(default_factory=list)
    policy: PaymentPolicy | None = None
    previous_owners: list[str] = Field(default_factory=list)
