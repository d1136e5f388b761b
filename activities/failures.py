"""Every activity failure stays small: its message, and those of its causes,
cut to a few hundred characters before it leaves the worker.

A failure is stored in workflow history, where Temporal limits its size and
where customer data does not belong; an exception's text can carry a whole
statement, a rendered message or a value someone sent. The store's own errors
are already short (activities/store/errors.py); this catches whatever else an
activity raises.
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from activities.store import truncated

MAX_MESSAGE = 500


def shortened(exc: BaseException) -> BaseException | None:
    """A copy of `exc` whose message is at most MAX_MESSAGE characters and
    which drops a cause that is not, or None when `exc` is short already.
    An ApplicationError keeps its type and whether it may be retried; any other
    exception becomes the retryable ApplicationError Temporal would have made
    of it, typed by its class name."""
    if not _too_long(exc):
        return None
    if isinstance(exc, ApplicationError):
        return ApplicationError(
            truncated(exc.message, MAX_MESSAGE), *exc.details, type=exc.type,
            non_retryable=exc.non_retryable, next_retry_delay=exc.next_retry_delay,
            category=exc.category)
    return ApplicationError(truncated(str(exc), MAX_MESSAGE), type=type(exc).__name__)


def _too_long(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = current.message if isinstance(current, ApplicationError) else str(current)
        if len(text) > MAX_MESSAGE or "\x00" in text:
            return True
        current = current.__cause__
    return False


class ShortFailures(Interceptor):
    """Worker interceptor: activity failures leave with short messages."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ShortFailuresInbound(next)


class _ShortFailuresInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except CancelledError:
            raise
        except Exception as exc:
            short = shortened(exc)
            if short is None:
                raise
            # Without the original as cause: its text is what had to go.
            raise short from None
