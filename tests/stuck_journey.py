"""A workflow whose task never yields: its thread blocks the way a workflow
stuck in a potential deadlock does (used by the shutdown tests)."""

from __future__ import annotations

import threading

from temporalio import workflow


@workflow.defn(name="StuckJourney")
class StuckJourney:
    @workflow.run
    async def run(self) -> None:
        with workflow.unsafe.sandbox_unrestricted():
            threading.Event().wait(600)
