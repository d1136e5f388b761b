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
import importlib
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from domain.registry import JOURNEYS

HISTORIES = Path(__file__).parent / "histories"


def recordings() -> dict[str, Callable[[WorkflowEnvironment, Path], Awaitable[str]]]:
    """Every journey's recordings: `tests/recorders/<journey>.py` per registry entry."""
    found: dict[str, Callable[[WorkflowEnvironment, Path], Awaitable[str]]] = {}
    for entry in JOURNEYS:
        found.update(importlib.import_module(f"tests.recorders.{entry.name}").RECORDINGS)
    return found


RECORDINGS = recordings()


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
