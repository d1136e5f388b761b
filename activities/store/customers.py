"""Managing customers in the store (used by the CLI, the demo and tests)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import select

from activities.store import Store
from domain import schema
from domain.contact import company_key, normalise_email, normalise_phone
from domain.limits import Email, Id, Locale, Name, Phone, Timezone


class CustomerRecord(BaseModel):
    """A customer as the CLI and imports take one; every value fits the store."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    name: Name
    locale: Locale = "zh-CN"
    timezone: Timezone = "Asia/Shanghai"
    phone: Phone | None = None
    email: Email | None = None
    company: Name | None = None
    owner_id: Id | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return normalise_email(value) if value else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalise_phone(value) if value else None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def add_customer(store: Store, customer: CustomerRecord, *, now: datetime) -> None:
    """Creates or updates a customer (by id)."""
    with store.unit_of_work() as session:
        row = session.get(schema.Customer, customer.id)
        values = customer.model_dump()
        values["company_key"] = company_key(customer.company) if customer.company else None
        if row is None:
            session.add(schema.Customer(**values, created_at=now))
        else:
            for name, value in values.items():
                setattr(row, name, value)


def list_customers(store: Store) -> list[CustomerRecord]:
    with store.unit_of_work() as session:
        return [
            CustomerRecord.model_construct(
                **{f: getattr(row, f) for f in CustomerRecord.model_fields}
            )
            for row in session.scalars(select(schema.Customer).order_by(schema.Customer.id))
        ]
