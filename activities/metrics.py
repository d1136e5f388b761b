"""The engine's own Prometheus metrics (the Temporal runtime exports its own).

Touches by outcome, escalations by journey and level, and how late an
escalation was recorded after the deadline it answers (SLA lateness).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import event

from domain import schema

log = logging.getLogger("crm.escalations")

TOUCHES = Counter(
    "crm_touches_total", "Touches decided by the one send path",
    ["journey", "message_class", "channel", "outcome"],
)
ESCALATIONS = Counter(
    "crm_escalations_total", "Escalation records written", ["journey", "level"],
)
UNROUTED = Counter(
    "crm_escalations_unrouted_total",
    "Escalations with nobody to tell (no active supervisor or manager to reach)",
    ["journey"],
)
SLA_LATENESS = Histogram(
    "crm_sla_lateness_seconds",
    "Wall-clock time between an escalation's deadline and its record in the store",
    ["journey"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)


def count_touch(*, journey: str, message_class: str, channel: str | None, outcome: str) -> None:
    TOUCHES.labels(journey, message_class, channel or "none", outcome).inc()


@event.listens_for(schema.Escalation, "after_insert")
def _escalation_recorded(_mapper: Any, _connection: Any, target: schema.Escalation) -> None:
    ESCALATIONS.labels(target.journey, str(target.level)).inc()
    if target.to_staff_id is None:
        # A breach nobody hears of is a staffing gap an admin must close.
        UNROUTED.labels(target.journey).inc()
        log.warning("%s %s escalated (level %s) with nobody to tell: add an active "
                    "supervisor or manager", target.journey, target.entity_id, target.level)
    if target.at is not None:
        lateness = (datetime.now(UTC) - target.at).total_seconds()
        # Workflow time may run ahead of the wall clock in time-skipping tests.
        if lateness >= 0:
            SLA_LATENESS.labels(target.journey).observe(lateness)
