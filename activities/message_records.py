"""What the send path reads and keeps beside a touch: the loaders of the record
a message is about (journeys register theirs with `entity_loader`), the
recipient's addresses and consents, the record's frozen copy, who checks an
unconfirmed touch, and the outcome a touch settles on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.exceptions import ApplicationError

from activities.logs import activity_logger
from domain import schema
from domain.messaging import Consent, ConsentScope, SendOutcome

log = activity_logger("crm.messaging")

# Loaders of the record a message is about, by entity kind; journeys add theirs.
EntityLoader = Callable[[Session, str], dict[str, Any] | None]
ENTITY_LOADERS: dict[str, EntityLoader] = {}


def entity_loader(kind: str) -> Callable[[EntityLoader], EntityLoader]:
    def register(fn: EntityLoader) -> EntityLoader:
        ENTITY_LOADERS[kind] = fn
        return fn

    return register


@dataclass
class RecipientInfo:
    name: str
    locale: str
    timezone: str
    endpoints: dict[str, str]
    consents: list[Consent] = field(default_factory=list)
    inactive: bool = False
    # Erased on request: nothing is sent to them again.
    erased: bool = False

    def as_context(self) -> dict[str, Any]:
        return {"name": self.name, "locale": self.locale, "timezone": self.timezone}



class BrokenRecord(Exception):
    pass


def responsible_staff(session: Session, touch: schema.Touch) -> str | None:
    """Who checks a touch that may not have arrived: a staff recipient's
    manager, a lead's or customer's owner."""
    if touch.recipient_kind == "staff":
        staff = session.get(schema.Staff, touch.recipient_id)
        return staff.manager_id if staff else None
    model = {"lead": schema.Lead, "customer": schema.Customer}.get(touch.recipient_kind)
    row = session.get(model, touch.recipient_id) if model is not None else None
    return getattr(row, "owner_id", None)


def freeze(value: Any) -> Any:
    """JSON for the store that `thaw` turns back into the same values."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dict):
        return {str(k): freeze(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [freeze(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def thaw(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            [(tag, text)] = value.items()
            if tag == "$datetime":
                return datetime.fromisoformat(text)
            if tag == "$date":
                return date.fromisoformat(text)
            if tag == "$decimal":
                return Decimal(text)
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [thaw(v) for v in value]
    return value


def endpoints(**channels: str | None) -> dict[str, str]:
    return {channel: address for channel, address in channels.items() if address}


def consents(session: Session, subjects: list[tuple[str, str]]) -> list[Consent]:
    rows: list[Consent] = []
    for kind, sid in subjects:
        for row in session.scalars(
            select(schema.Consent).where(
                schema.Consent.subject_kind == kind, schema.Consent.subject_id == sid
            )
        ):
            rows.append(Consent(channel=row.channel, scope=ConsentScope(row.scope)))
    return rows


def settle(touch: schema.Touch, now: datetime, status: str, reason: str | None) -> SendOutcome:
    touch.status = status
    touch.reason = reason
    touch.updated_at = now
    if status != "sent":
        log.info("touch %s %s: %s", touch.key, status, reason)
    return outcome_of(touch)


def outcome_of(touch: schema.Touch) -> SendOutcome:
    if touch.status == "failed":
        # A touch that failed for good (a template error) stays failed.
        raise ApplicationError(
            f"touch {touch.key} failed: {touch.reason}", type="TemplateError", non_retryable=True
        )
    status: Literal["suppressed", "unconfirmed", "sent"] = (
        "suppressed" if touch.status == "suppressed"
        else "unconfirmed" if touch.status == "unconfirmed" else "sent")
    return SendOutcome(status=status, reason=touch.reason, channel=touch.channel)


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
