"""What the worker builds a journey's activities from: the store, the settings,
the Temporal client and the journey's policy. A journey's activity class takes
`store` and `policy`; one that needs more says so in a `from_parts` classmethod."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from temporalio.client import Client

    from activities.store import Store
    from domain.settings import Settings


@dataclass(frozen=True)
class ActivityParts:
    store: Store
    settings: Settings
    task_queue: str
    client: Client | None = None


def build_journey_activities(cls: type, parts: ActivityParts, policy: Any) -> Any:
    """An instance of a journey's activity class."""
    from_parts = getattr(cls, "from_parts", None)
    if callable(from_parts):
        return from_parts(parts, policy)
    return cls(store=parts.store, policy=policy)


def defined(*objects: object) -> list[Callable[..., Any]]:
    """Every Temporal activity the objects define (methods marked `@activity.defn`),
    in the order of their classes' source."""
    found: list[Callable[..., Any]] = []
    for obj in objects:
        for name in vars(type(obj)):
            method = getattr(obj, name)
            if callable(method) and hasattr(method, "__temporal_activity_definition"):
                found.append(method)
    return found
