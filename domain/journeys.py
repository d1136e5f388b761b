"""What every journey shares at its boundary: the lenient base of its models,
the answer to a request a person made, a rejected signal, and the signal that
tells a journey one of its staff has left.

Boundary models are lenient (extra fields ignored, rules checked by the journey
and its activities, not here) because replay re-decodes old signals with new
code; a stricter rule goes behind `workflow.patched`.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Lenient(BaseModel):
    """Base of every model that crosses a Temporal boundary: fields it does not
    know are ignored, so an old payload still decodes on new code."""

    model_config = ConfigDict(extra="ignore")


class Decision(Lenient):
    """An activity's answer to a request a person made: accepted, or why not."""

    accepted: bool
    reason: str | None = None
    due_at: AwareDatetime | None = None
    at: AwareDatetime | None = None


class Rejection(Lenient):
    """A signal or update the journey refused, as its `status` query lists it."""

    signal: str
    reason: str
    at: AwareDatetime
    payload: dict[str, object] = Field(default_factory=dict)


class RejectionRecord(Lenient):
    """A rejection to keep in the store; `n` counts the journey's rejections, so
    a retried activity keeps it once."""

    workflow_id: str
    journey: str
    entity_id: str
    rejection: Rejection
    n: int


class StaffDeactivated(Lenient):
    """Signal: a staff member was deactivated; the journey reassigns what they held."""

    staff_id: str = ""
