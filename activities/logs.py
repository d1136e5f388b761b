"""Activity loggers that carry the workflow id, workflow type and activity on
every line (the worker's JSON formatter turns them into fields)."""

from __future__ import annotations

import logging
import re

from temporalio import activity


def activity_logger(name: str) -> activity.LoggerAdapter:
    adapter = activity.LoggerAdapter(logging.getLogger(name), None)
    # The details go into the record's fields, not into the message text.
    adapter.activity_info_on_message = False
    return adapter


# `scheme://user:password@host`: the password part, up to the `@` that ends
# the credentials (a password may itself hold `:`; `/`, `@` and spaces end it).
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^/@\s]+@")


def mask_secrets(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***` (apprise
    URLs carry SMTP and API passwords; apprise's own messages quote them)."""
    return _URL_PASSWORD.sub(r"\g<head>***@", text)
