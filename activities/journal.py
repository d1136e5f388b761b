"""journey_events and signal rejections: written inside the caller's unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import schema


def record_event(
    session: Session,
    *,
    key: str,
    journey: str,
    entity_id: str,
    step: str,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Idempotent by `key`: a retried activity records its step once."""
    exists = session.scalar(select(schema.JourneyEvent.id).where(schema.JourneyEvent.key == key))
    if exists is None:
        session.add(
            schema.JourneyEvent(
                key=key, journey=journey, entity_id=entity_id, step=step, at=at, detail=detail
            )
        )
