"""Managing staff in the store (used by the CLI, the demo and tests)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.store import Store
from domain import schema
from domain.contact import normalise_email, normalise_phone
from domain.limits import (
    Email,
    Group,
    Id,
    Locale,
    Name,
    Phone,
    ProductLine,
    Region,
    StoreInt,
    Timezone,
)
from domain.vocabulary import STAFF_ROLES

ROLES = STAFF_ROLES


class StaffMember(BaseModel):
    """A staff member as the CLI and imports take one; every value fits the store."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    name: Name
    role: str
    group: Group | None = None
    regions: list[Region] = Field(default_factory=list)
    product_lines: list[ProductLine] = Field(default_factory=list)
    seniority: StoreInt = 0
    manager_id: Id | None = None
    active: bool = True
    timezone: Timezone = "Asia/Shanghai"
    locale: Locale = "zh-CN"
    email: Email | None = None
    phone: Phone | None = None
    chat: Name | None = None
    capacity: StoreInt = 50

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        return role

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return normalise_email(value) if value else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalise_phone(value) if value else None


class StaffError(ValueError):
    pass


def add_staff(store: Store, member: StaffMember, *, now: datetime) -> None:
    """Creates or updates a staff member (by id)."""
    with store.unit_of_work() as session:
        if member.manager_id and session.get(schema.Staff, member.manager_id) is None:
            raise StaffError(f"manager {member.manager_id!r} does not exist")
        row = session.get(schema.Staff, member.id)
        values = member.model_dump()
        if row is None:
            session.add(schema.Staff(**values, created_at=now))
        else:
            for name, value in values.items():
                setattr(row, name, value)


def list_staff(store: Store, *, role: str | None = None) -> list[StaffMember]:
    with store.unit_of_work() as session:
        query = select(schema.Staff).order_by(schema.Staff.id)
        if role:
            query = query.where(schema.Staff.role == role)
        return [
            StaffMember.model_construct(**{f: getattr(row, f) for f in StaffMember.model_fields})
            for row in session.scalars(query)
        ]


def active_manager_above(session: Session, staff: schema.Staff | None, *,
                         role: str | None = None) -> schema.Staff | None:
    """The nearest active member up `staff`'s line of managers (of `role`, when
    given), never `staff` itself; None when the line runs out."""
    seen = {staff.id} if staff else set()
    manager_id = staff.manager_id if staff else None
    while manager_id and manager_id not in seen:
        seen.add(manager_id)
        manager = session.get(schema.Staff, manager_id)
        if manager is None:
            return None
        if manager.active and role in (None, manager.role):
            return manager
        manager_id = manager.manager_id
    return None


def deactivate_staff(store: Store, staff_id: str, *, now: datetime) -> list[str]:
    """Marks a staff member inactive; returns the workflow ids of the open
    journeys in which they hold a role (a lead's owner, a ticket's assignee, a
    course's advisor, a contract's owner, a customer's exclusive advisor: each
    journey's `open_roles` in the registry). Each must be told
    (`staff_deactivated`) so that it hands their part on."""
    from domain.registry import JOURNEYS, load

    with store.unit_of_work() as session:
        row = session.get(schema.Staff, staff_id)
        if row is None:
            raise StaffError(f"unknown staff {staff_id!r}")
        row.active = False
        row.deactivated_at = now
        return [entry.workflow_id(entity_id)
                for entry in JOURNEYS if entry.open_roles
                for entity_id in load(entry.open_roles)(session, staff_id)]
