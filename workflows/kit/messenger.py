"""The one send path of every journey's touches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.messaging import MessageClass, Recipient, SendOutcome, SendRequest

from workflows.kit.calls import WITHDRAW_UNWANTED_TOUCHES, patched, send_message


class Messenger:
    """Sends a journey's touches through the one send path.

    Keys are `{workflow_id}:{step}:{n}`; `counters` lives in the journey's own
    state (and is carried across continue-as-new), so a recurring step is a
    new touch and a retried one is not. Each touch runs as its own task: a
    touch deferred by quiet hours sleeps durably until the time the send path
    named and asks again, while the journey goes on.
    """

    def __init__(self, *, journey: str, counters: dict[str, int],
                 settled: Callable[[SendRequest, bool], None] | None = None) -> None:
        """`settled(request, failed)`: told when a touch is given up for good
        (failed) or goes through, so the journey can raise or clear an incident."""
        self.journey = journey
        self.counters = counters
        self.settled_hook = settled
        self.pending: list[asyncio.Task[SendOutcome | None]] = []
        self.outcomes: dict[str, str] = {}

    def send(
        self,
        *,
        step: str,
        message_class: MessageClass,
        recipient: Recipient,
        template: str | None = None,
        entity_kind: str | None = None,
        entity_id: str | None = None,
        facts: dict[str, Any] | None = None,
        channel: str | None = None,
        unwanted: Callable[[], str | None] | None = None,
    ) -> asyncio.Task[SendOutcome | None]:
        """`unwanted`: asked before a deferred touch is asked again; the reason
        the journey no longer wants it (the milestone paid, the ticket closed),
        or None to send it."""
        n = self.counters.get(step, 0) + 1
        self.counters[step] = n
        request = SendRequest(
            key=f"{workflow.info().workflow_id}:{step}:{n}",
            journey=self.journey,
            step=step,
            message_class=message_class,
            recipient=recipient,
            template=template or step,
            channel=channel,
            entity_kind=entity_kind,
            entity_id=entity_id,
            facts=facts or {},
            now=workflow.now(),
        )
        task = asyncio.create_task(self._deliver(request, unwanted))
        self.pending.append(task)
        return task

    async def _deliver(self, request: SendRequest,
                       unwanted: Callable[[], str | None] | None) -> SendOutcome | None:
        withdrawable = False
        while True:
            request = request.model_copy(update={"now": workflow.now()})
            if withdrawable and unwanted is not None and (reason := unwanted()) is not None:
                request = request.model_copy(update={"withdrawn": reason})
            try:
                outcome = await send_message(request)
            except ActivityError as err:
                # The touch is recorded as failed in the store; the journey goes on.
                workflow.logger.warning("touch %s not sent: %s", request.key, err.cause or err)
                self.outcomes[request.key] = "failed"
                if self.settled_hook is not None:
                    self.settled_hook(request, True)
                return None
            self.outcomes[request.key] = outcome.status
            if outcome.status == "sent" and self.settled_hook is not None:
                self.settled_hook(request, False)
            if outcome.status != "deferred" or outcome.until is None:
                return outcome
            # A touch that waits out quiet hours may lose its point meanwhile;
            # older journeys sent it anyway, and replay so.
            withdrawable = withdrawable or (unwanted is not None
                                            and patched(WITHDRAW_UNWANTED_TOUCHES))
            await workflow.sleep(max(outcome.until - workflow.now(), timedelta(seconds=1)))

    async def drain(self) -> None:
        """Waits for every touch still on its way (a deferred welcome, say)."""
        while self.pending:
            batch, self.pending = self.pending, []
            await asyncio.gather(*batch)

    def settled(self) -> bool:
        """Whether every touch has gone, been suppressed or failed for good."""
        return all(task.done() for task in self.pending)
