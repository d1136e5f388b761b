"""What the PostgreSQL benchmarks share: a throwaway database on a server, the
server's settings that matter to them, statements run outside a transaction,
and `say`, a progress line stamped with the time since the run began."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

_started = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - _started:7.1f}s] {message}", flush=True)


@contextmanager
def throwaway_database(server_url: str, keep: bool = False,
                       prefix: str = "crm_bench_rfm") -> Iterator[str]:
    """A new database on the PostgreSQL server `server_url` names, dropped afterwards."""
    base = make_url(server_url)
    if base.get_backend_name() != "postgresql":
        raise SystemExit(f"--database-url must name a PostgreSQL server, not {base.drivername}")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    say(f"database {name} created")
    try:
        yield url
    finally:
        if keep:
            say(f"database kept: {url}")
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            say(f"database {name} dropped")
        admin.dispose()


def settings_report(engine: Engine) -> list[tuple[str, str]]:
    names = ["server_version", "work_mem", "hash_mem_multiplier", "maintenance_work_mem",
             "shared_buffers", "effective_cache_size", "max_parallel_workers_per_gather",
             "max_parallel_workers", "random_page_cost", "jit", "synchronous_commit",
             "autovacuum"]
    with engine.connect() as conn:
        return [(n, conn.execute(text(f"SHOW {n}")).scalar_one()) for n in names]


def autocommit(engine: Engine, sql: str, **params: Any) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(sql), params)
