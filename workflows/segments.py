"""The daily segment refresh, started by the `segments-daily` schedule half an
hour after the RFM sweep (so rules on the tier see the day's tiers). After
the entries are recorded, each active on_entry campaign enrols the customers
who entered its segment (`activities.campaign_entry`)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.campaigns import CampaignNames, Enrolled, EnrolRequest
    from domain.segments import SegmentRefreshAnswer, SegmentRefreshRequest
    from workflows.kit.calls import CAMPAIGN_ON_ENTRY, STORE_RETRY, call, patched

# Starting a segment's day of entrants' runs takes longer than a store call.
ENROL_TIMEOUT = timedelta(minutes=30)


@workflow.defn(name="SegmentRefresh")
class SegmentRefresh:
    @workflow.run
    async def run(self, request: SegmentRefreshRequest) -> SegmentRefreshAnswer:
        answer = await workflow.execute_activity(
            "refresh_segments", request, start_to_close_timeout=timedelta(minutes=30),
            retry_policy=STORE_RETRY, result_type=SegmentRefreshAnswer)
        if patched(CAMPAIGN_ON_ENTRY):
            await self._enrol()
        return answer

    async def _enrol(self) -> None:
        """Each campaign enrols from where it last looked, so it does not
        matter which segments this refresh recorded entries for; `now` is
        fixed here, the same on a retried enrolment."""
        live = await call("on_entry_campaigns", result_type=CampaignNames)
        for name in live.campaigns:
            done = await workflow.execute_activity(
                "enrol_campaign_entrants", EnrolRequest(campaign=name, now=workflow.now()),
                start_to_close_timeout=ENROL_TIMEOUT, retry_policy=STORE_RETRY,
                result_type=Enrolled, summary=f"enrol campaign {name}")
            if done.arms:
                workflow.logger.info("campaign %s enrolled %s", name, done.arms)
