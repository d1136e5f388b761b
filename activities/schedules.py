"""Schedules: what a journey declares (`JourneyEntry.schedules`, a function of
the settings giving its schedules by id) and how the worker puts them on the
server — created on its first start, brought in line with the settings on
every later one, so that a changed hour, time zone or task queue reaches the
server. A schedule's state (paused, its note) stays as an admin left it."""

from __future__ import annotations

import dataclasses
import logging

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from domain.settings import Settings


def daily(settings: Settings, action: ScheduleActionStartWorkflow, *,
          minute: int = 0) -> Schedule:
    """Every day at the settings' nightly hour (`rfm_schedule_hour`) and
    `minute`, in the business time zone; a run still going skips the next."""
    return Schedule(
        action=action,
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(
                hour=[ScheduleRange(settings.rfm_schedule_hour)],
                minute=[ScheduleRange(minute)], second=[ScheduleRange(0)])],
            time_zone_name=settings.default_timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def every_months(settings: Settings, action: ScheduleActionStartWorkflow, *, months: int,
                 hour: int) -> Schedule:
    """At `hour` on the first day of every `months`-th month from January, in
    the business time zone; a run still going skips the next."""
    return Schedule(
        action=action,
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(
                month=[ScheduleRange(1, 12, months)], day_of_month=[ScheduleRange(1)],
                hour=[ScheduleRange(hour)], minute=[ScheduleRange(0)],
                second=[ScheduleRange(0)])],
            time_zone_name=settings.default_timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure(client: Client, schedules: dict[str, Schedule]) -> None:
    for schedule_id, schedule in schedules.items():
        try:
            await client.create_schedule(schedule_id, schedule)
            logging.getLogger("crm.worker").info("schedule %s created", schedule_id)
        except ScheduleAlreadyRunningError:
            def follow_settings(current: ScheduleUpdateInput,
                                schedule: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=dataclasses.replace(
                    schedule, state=current.description.schedule.state))

            await client.get_schedule_handle(schedule_id).update(follow_settings)
