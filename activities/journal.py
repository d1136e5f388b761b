"""journey_events and signal rejections: written inside the caller's unit of work."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio import activity

from activities.logs import activity_logger
from activities.store import Store
from domain import schema
from domain.journeys import RejectionRecord

log = activity_logger("crm.journal")


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
    """Idempotent by `key`: a retried activity records its step once (one
    INSERT ... ON CONFLICT DO NOTHING rather than a look-up and an insert)."""
    dialect = session.get_bind().dialect.name
    values = dict(key=key, journey=journey, entity_id=entity_id, step=step, at=at, detail=detail)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(schema.JourneyEvent).values(**values)
                        .on_conflict_do_nothing(index_elements=["key"]))
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(schema.JourneyEvent).values(**values)
                        .on_conflict_do_nothing(index_elements=["key"]))
    else:  # pragma: no cover - the two engines the store supports
        exists = session.scalar(
            select(schema.JourneyEvent.id).where(schema.JourneyEvent.key == key))
        if exists is None:
            session.add(schema.JourneyEvent(**values))


class JournalActivities:
    """What every journey records the same way."""

    def __init__(self, *, store: Store) -> None:
        self.store = store

    @activity.defn
    def record_rejection(self, record: RejectionRecord) -> None:
        """A signal that broke a rule: kept with its payload and reason."""
        key = f"{record.workflow_id}:rejected:{record.n}"
        with self.store.unit_of_work() as session:
            if session.scalar(
                select(schema.SignalRejection.id).where(schema.SignalRejection.key == key)
            ):
                return
            session.add(
                schema.SignalRejection(
                    key=key,
                    workflow_id=record.workflow_id,
                    journey=record.journey,
                    entity_id=record.entity_id,
                    signal=record.rejection.signal,
                    payload=_jsonable(record.rejection.payload),
                    reason=record.rejection.reason,
                    at=record.rejection.at,
                )
            )
        log.warning("%s rejected %s: %s", record.workflow_id, record.rejection.signal,
                    record.rejection.reason)


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else
                str(v) if isinstance(v, Decimal) else v) for k, v in payload.items()}
