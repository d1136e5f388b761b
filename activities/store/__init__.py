"""The store layer that activities, the CLI and the demo share: the engine and
its unit of work (`engine`), how a store error leaves an activity (`errors`),
and the staff and customer services (`staff`, `customers`). Activities are the
Temporal activity classes beside it, in the `activities` package."""

from activities.store.engine import (
    MIGRATIONS_DIR,
    SQLITE_BUSY_TIMEOUT_MS,
    Store,
    make_engine,
    migrate,
)
from activities.store.errors import (
    MAX_FAILURE_MESSAGE,
    refuse_invalid,
    store_failure,
    truncated,
)

__all__ = [
    "MAX_FAILURE_MESSAGE",
    "MIGRATIONS_DIR",
    "SQLITE_BUSY_TIMEOUT_MS",
    "Store",
    "make_engine",
    "migrate",
    "refuse_invalid",
    "store_failure",
    "truncated",
]
