"""Records the workflow histories that the replay tests keep replaying.

    python -m tests.record_histories [NAME ...]     (e.g. enrollment-R2; all by default)

Run it only when a journey's *intended* behaviour changes, and commit the new
file beside the old ones: the recorded histories stand for journeys already
running in production, which every later version of the code must replay
without non-determinism (use `workflow.patched` for changes of shape).

The recorders live per journey in tests/recorders/; this module names them
and runs them.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.recorders.contract import record_contract_every_signal, record_contract_full
from tests.recorders.course import record_course_every_signal, record_course_full
from tests.recorders.customer import (
    record_customer_every_signal,
    record_customer_full,
    record_customer_tier_changes,
)
from tests.recorders.lead import record_lead_every_signal, record_lead_full
from tests.recorders.ticket import record_ticket_every_signal, record_ticket_full

HISTORIES = Path(__file__).parent / "histories"

RECORDINGS = {"lead-R5": record_lead_every_signal, "contract-R7": record_contract_every_signal,
              "enrollment-R8": record_course_every_signal,
              "ticket-R9": record_ticket_every_signal,
              "customer-cust-3": record_customer_every_signal,
              "lead-R1": record_lead_full, "enrollment-R2": record_course_full,
              "contract-R4": record_contract_full, "customer-cust-1": record_customer_full,
              "ticket-R3": record_ticket_full, "customer-cust-2": record_customer_tier_changes}


async def main(names: list[str]) -> None:
    from tests.conftest import register_search_attributes, time_skipping_binary

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_binary(),
        data_converter=__import__("starter.client", fromlist=["x"]).data_converter(),
    )
    await register_search_attributes(env.client)
    try:
        for name in names or RECORDINGS:
            with tempfile.TemporaryDirectory() as tmp:
                HISTORIES.mkdir(exist_ok=True)
                text = await RECORDINGS[name](env, Path(tmp))
                (HISTORIES / f"{name}.json").write_text(text)
                print("recorded", HISTORIES / f"{name}.json")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    import sys

    asyncio.run(main(sys.argv[1:]))
