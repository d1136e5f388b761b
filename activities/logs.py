"""Activity loggers that carry the workflow id, workflow type and activity on
every line (the worker's JSON formatter turns them into fields)."""

from __future__ import annotations

import logging

from temporalio import activity


def activity_logger(name: str) -> activity.LoggerAdapter:
    adapter = activity.LoggerAdapter(logging.getLogger(name), None)
    # The details go into the record's fields, not into the message text.
    adapter.activity_info_on_message = False
    return adapter
