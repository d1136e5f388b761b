"""Times the domain tests share.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from domain.policy import QuietHours

SHANGHAI = "Asia/Shanghai"
CST = timezone(timedelta(hours=8))
NIGHT = QuietHours()  # the default 21:00-09:00


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
