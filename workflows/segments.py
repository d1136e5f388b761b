"""The daily segment refresh, started by the `segments-daily` schedule half an
hour after the RFM sweep (so rules on the tier see the day's tiers)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.segments import SegmentRefreshAnswer, SegmentRefreshRequest
    from workflows.kit.calls import STORE_RETRY


@workflow.defn(name="SegmentRefresh")
class SegmentRefresh:
    @workflow.run
    async def run(self, request: SegmentRefreshRequest) -> SegmentRefreshAnswer:
        return await workflow.execute_activity(
            "refresh_segments", request, start_to_close_timeout=timedelta(minutes=30),
            retry_policy=STORE_RETRY, result_type=SegmentRefreshAnswer)
