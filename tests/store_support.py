"""Helpers the store tests share: reading rows back, and a lead taken in and
assigned through the lead activities.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from activities.leads import LeadActivities
from activities.store import Store
from domain import schema
from domain.leads import AssignRequest, ContactRequest, IntakeRequest, IntakeResult, LeadInput
from domain.policy import LeadPolicy
from tests.harness import seed_staff

NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
HOUR = timedelta(hours=1)


def rows(store: Store, model: type[Any], **where: Any) -> list[Any]:
    with store.unit_of_work() as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list(session.scalars(query))


def count(store: Store, model: type[Any]) -> int:
    with store.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def staffed(store: Store) -> Store:
    seed_staff(store)
    return store


@pytest.fixture
def leads(staffed: Store) -> LeadActivities:
    return LeadActivities(store=staffed, policy=LeadPolicy())


def a_lead(lead_id: str, n: int, **overrides: Any) -> LeadInput:
    """A lead whose contact details are its own, unless overridden."""
    values: dict[str, Any] = {
        "lead_id": lead_id,
        "name": "张伟",
        "phone": f"139 {n:04d} {n:04d}",
        "email": f"{lead_id.lower()}@example.com",
        "company": f"{lead_id} Trading",
        "region": "east",
        "product_line": "erp",
        "source": "web_form",
        "need": "need an ERP for 200 staff",
    }
    values.update(overrides)
    return LeadInput.model_validate(values)


def intake(leads: LeadActivities, lead: LeadInput, now: datetime = NOW) -> IntakeResult:
    return leads.intake_lead(
        IntakeRequest(lead=lead, workflow_id=f"lead-{lead.lead_id}", now=now)
    )


def assign(leads: LeadActivities, lead_id: str, now: datetime = NOW, n: int = 1) -> Any:
    return leads.assign_lead(AssignRequest(lead_id=lead_id, workflow_id=f"lead-{lead_id}",
                                           now=now, first_touch=timedelta(hours=24), n=n))


def contact(leads: LeadActivities, *, at: datetime, now: datetime, n: int) -> Any:
    return leads.record_contact(
        ContactRequest(lead_id="L1", workflow_id="lead-L1", owner_id="rep-a", channel="phone",
                       note="called, wants a demo", at=at, now=now, assigned_at=NOW,
                       follow_up=timedelta(days=3), n=n)
    )


def touch(store: Store, key: str = "lead-L1:assigned:1") -> schema.Touch:
    [found] = rows(store, schema.Touch, key=key)
    return found
