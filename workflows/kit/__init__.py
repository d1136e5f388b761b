"""The journey kit: what every journey is built from.

- `agenda`: a journey's timed steps as typed data (its `Plan`, the `Due`
  entries of its `Agenda`);
- `journey`: the `Journey` base, with the inbox, the one run loop and the finish;
- `calls`: search attributes, the store and send activities, refusals and the
  decoding of inputs and signals;
- `messenger`: the one send path of every touch.
"""

from temporalio import workflow

# The agenda is plain data and pure functions: loaded once per worker instead
# of once per journey in every workflow sandbox (with no workflow cache, once
# per workflow task), where building its dataclasses was a large part of the
# worker's CPU.
with workflow.unsafe.imports_passed_through():
    from workflows.kit.agenda import (
        Agenda,
        Cadence,
        Deadline,
        Due,
        Ladder,
        Level,
        Plan,
        StepsPerWake,
        Transition,
        WaitUntil,
        moves,
        span,
    )
from workflows.kit.calls import (
    CRM_CUSTOMER_ID,
    CRM_INCIDENT,
    CRM_JOURNEY,
    CRM_OWNER_ID,
    CRM_SLA_DEADLINE,
    CRM_STAGE,
    CRM_STEP,
    CRM_TIER,
    CRM_VERSION,
    FOLDED_STORE_CALLS,
    SEARCH_ATTRIBUTES,
    STORE_RETRY,
    answering,
    call,
    call_local,
    call_urgent,
    patched,
    refusal,
    since,
    start_input,
    upsert_search_attributes,
)
from workflows.kit.journey import Inbound, Journey

__all__ = [
    "CRM_CUSTOMER_ID", "CRM_INCIDENT", "CRM_JOURNEY", "CRM_OWNER_ID", "CRM_SLA_DEADLINE",
    "CRM_STAGE", "CRM_STEP", "CRM_TIER", "CRM_VERSION", "FOLDED_STORE_CALLS",
    "SEARCH_ATTRIBUTES", "STORE_RETRY",
    "Agenda", "Cadence", "Deadline", "Due", "Inbound", "Journey", "Ladder", "Level", "Plan",
    "StepsPerWake", "Transition", "WaitUntil", "answering", "call", "call_local", "call_urgent",
    "moves",
    "patched", "refusal", "since", "span", "start_input", "upsert_search_attributes",
]
