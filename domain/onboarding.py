"""Onboarding after signing: on a signed contract a dedicated service group is
set up (签约即触发专属服务群) and a minimum usable version is delivered within
3 days (3天内交付最小可用版本), with a reminder before the deadline, the
service lead's manager told on a breach, the customer welcomed with the
group's contact and checked in on a week after delivery.

Pure models and rules; lenient at the boundary."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, Field

from domain.journeys import Lenient, Rejection
from domain.limits import Duration, Group, Id, Moment

JOURNEY = "onboarding"


def onboarding_workflow_id(contract_id: str) -> str:
    return f"onboarding-{contract_id}"


class OnboardingStage(StrEnum):
    awaiting_delivery = "awaiting_delivery"
    escalated = "escalated"  # the delivery deadline passed; still awaiting delivery
    delivered = "delivered"  # the check-in follows
    completed = "completed"


class OnboardingPolicy(Lenient):
    """Who sets the service group up and how soon the first delivery is due."""

    # The service lead: the active supervisor of this group (staff roles).
    service_group: Group = "after_sales"
    delivery_within: Duration = timedelta(days=3)
    reminder_before: Duration = timedelta(days=1)
    check_in_after: Duration = timedelta(days=7)
    # The delivery's acceptance is the contract's acceptance (its acceptance
    # milestones get their due dates), told to the payment journey as `accept`.
    delivery_is_acceptance: bool = True

    def scaled(self, factor: float) -> OnboardingPolicy:
        if factor == 1:
            return self
        return self.model_copy(update={
            "delivery_within": self.delivery_within / factor,
            "reminder_before": self.reminder_before / factor,
            "check_in_after": self.check_in_after / factor})


class OnboardingInput(Lenient):
    contract_id: Id
    customer_id: Id
    owner_id: Id
    signed_at: Moment
    policy: OnboardingPolicy | None = None


class Delivered(Lenient):
    by: str = ""
    note: str | None = None


class GroupReady(Lenient):
    link: str = ""


class OpenOnboarding(Lenient):
    onboarding: OnboardingInput
    workflow_id: str
    service_group: str
    delivery_within: timedelta
    now: AwareDatetime


class OnboardingOpened(Lenient):
    service_lead_id: str | None
    delivery_due_at: AwareDatetime


class DeliveryRecord(Lenient):
    contract_id: str
    workflow_id: str
    by: str
    note: str | None = None
    now: AwareDatetime
    tell_payment: bool = True


class GroupRecord(Lenient):
    contract_id: str
    workflow_id: str
    link: str
    now: AwareDatetime


class DeliveryEscalation(Lenient):
    contract_id: str
    workflow_id: str
    service_lead_id: str | None
    now: AwareDatetime


class EscalatedTo(Lenient):
    manager_id: str | None = None


class OnboardingStep(Lenient):
    contract_id: str
    workflow_id: str
    step: str
    now: AwareDatetime


class ServiceLeadHandover(Lenient):
    contract_id: str
    workflow_id: str
    from_staff_id: str
    now: AwareDatetime
    n: int


class OnboardingStatus(Lenient):
    contract_id: str
    customer_id: str
    owner_id: str
    service_lead_id: str | None = None
    stage: OnboardingStage
    delivery_due_at: datetime | None = None
    group_link: str | None = None
    delivered_at: datetime | None = None
    delivered_by: str | None = None
    on_time: bool | None = None
    escalated_to: str | None = None
    deadline: datetime | None = None
    rejections: list[Rejection] = Field(default_factory=list)
    policy: OnboardingPolicy | None = None
