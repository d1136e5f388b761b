"""Starting and signalling opportunity journeys knowing only the opportunity id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy

from domain.journeys import Decision
from domain.opportunities import (
    Advance,
    LogActivity,
    Lose,
    OpportunityInput,
    OpportunityStatus,
    SendQuote,
    UpdateForecast,
    Win,
    opportunity_workflow_id,
)


class Opportunities:
    def __init__(self, client: Client, *, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def start(self, opportunity: OpportunityInput
                    ) -> WorkflowHandle[Any, OpportunityStatus]:
        return await self.client.start_workflow(
            "OpportunityJourney", opportunity,
            id=opportunity_workflow_id(opportunity.opportunity_id),
            task_queue=self.task_queue, result_type=OpportunityStatus,
            # A journey id is used once: a finished opportunity is not started again.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            task_timeout=timedelta(seconds=10))

    def handle(self, opportunity_id: str) -> WorkflowHandle[Any, OpportunityStatus]:
        return self.client.get_workflow_handle(opportunity_workflow_id(opportunity_id),
                                               result_type=OpportunityStatus)

    async def advance(self, opportunity_id: str, advance: Advance) -> Decision:
        return await self.handle(opportunity_id).execute_update(
            "advance_now", advance, result_type=Decision)

    async def update_forecast(self, opportunity_id: str, forecast: UpdateForecast) -> None:
        await self.handle(opportunity_id).signal("update_forecast", forecast)

    async def log_activity(self, opportunity_id: str, logged: LogActivity) -> None:
        await self.handle(opportunity_id).signal("log_activity", logged)

    async def send_quote(self, opportunity_id: str, quote: SendQuote) -> None:
        await self.handle(opportunity_id).signal("send_quote", quote)

    async def win(self, opportunity_id: str, win: Win) -> Decision:
        return await self.handle(opportunity_id).execute_update("win_now", win,
                                                                result_type=Decision)

    async def lose(self, opportunity_id: str, lose: Lose) -> Decision:
        return await self.handle(opportunity_id).execute_update("lose_now", lose,
                                                                result_type=Decision)

    async def status(self, opportunity_id: str) -> OpportunityStatus:
        return await self.handle(opportunity_id).query("status", result_type=OpportunityStatus)
