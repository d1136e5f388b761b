"""How long `crm` takes to answer: the whole process, start-up included.

    python -m bench.cli [--runs N] [--before DIR]

Times, as a person at a terminal waits for them, `crm --help`, `crm lead
--help` and `crm lead status L` against a Temporal dev server on which lead L
runs (a real worker in this process answers its status query), beside `python
-c pass` (the interpreter's own start-up) as the yardstick in the same run.
With `--before DIR` (a `git worktree` of older code) each command also runs
from DIR's code, in turn with this code's (ABAB...), so that the machine's
other load falls on both alike, and the ratio after/before is printed pair by
pair. Beside the wall time, each command's own CPU time (user + system), which
other load on the machine moves less. Every command runs as `python -m starter
...` in a scratch directory (no `.env` is read) against a scratch SQLite
store. It reports; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.store import Store, migrate
from bench.quiet import stdout_to_devnull
from domain.leads import LeadInput
from starter.client import data_converter
from starter.devstack import temporal_binary
from tests.harness import make_settings, running_worker, seed_staff
from workflows.kit import SEARCH_ATTRIBUTES

THIS_CODE = Path(__file__).resolve().parent.parent


@dataclass
class Timed:
    label: str
    argv: list[str]
    env: dict[str, str]
    seconds: list[float] = field(default_factory=list)  # wall
    cpu: list[float] = field(default_factory=list)  # user + system

    async def run(self, workdir: Path) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *self.argv, cwd=workdir, env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, stderr = await process.communicate()
        self.seconds.append(time.perf_counter() - start)
        # The only child reaped meanwhile (the dev server is reaped at the end).
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if process.returncode != 0:
            raise SystemExit(f"{self.label}: exit {process.returncode}: {stderr.decode()[-500:]}")

    def row(self, yardstick: Timed) -> str:
        s = sorted(self.seconds)
        median = statistics.median(s)
        return (f"{self.label:<34} {s[0]:>6.3f} {median:>7.3f} {s[-1]:>6.3f}"
                f" {statistics.median(self.cpu):>6.3f}"
                f" {median / statistics.median(yardstick.seconds):>9.1f}")


def crm(code: Path, env: dict[str, str], label: str, *args: str) -> Timed:
    """`crm ARGS` as `python -m starter ARGS`, from the code in `code`: another
    checkout goes first on PYTHONPATH, ahead of this one's editable install."""
    if code != THIS_CODE:
        env = {**env, "PYTHONPATH": str(code)}
    return Timed(label, [sys.executable, "-m", "starter", *args], env)


def code_of(timed: Timed, workdir: Path) -> str:
    """Where a command's `starter` package is loaded from: proof that "before"
    runs the older code."""
    probe = [sys.executable, "-c", "import starter; print(starter.__file__)"]
    return subprocess.run(probe, cwd=workdir, env=timed.env, capture_output=True, text=True,
                          check=True).stdout.strip()


def load_average() -> str:
    return " ".join(f"{figure:.2f}" for figure in os.getloadavg())


async def measure(args: argparse.Namespace, workdir: Path, cli_env: dict[str, str],
                  lead_id: str) -> tuple[Timed, list[list[Timed]]]:
    """The yardstick and, per command, its timings from each code."""
    yardstick = Timed("python -c pass", [sys.executable, "-c", "pass"], cli_env)
    codes = [("", THIS_CODE)] + ([("before: ", args.before.resolve())] if args.before else [])
    commands = [("crm --help", ["--help"]), ("crm lead --help", ["lead", "--help"]),
                ("crm lead status L", ["lead", "status", lead_id])]
    pairs = [[crm(code, cli_env, prefix + label, *argv) for prefix, code in codes]
             for label, argv in commands]
    for (prefix, _), timed in zip(codes, pairs[0], strict=True):
        print(f"{prefix or 'this code: '}{code_of(timed, workdir)}")
    everything = [yardstick, *(timed for pair in pairs for timed in pair)]
    for timed in everything:
        await timed.run(workdir)  # warm-up: the page cache, the .pyc files
        timed.seconds.clear()
        timed.cpu.clear()
    for _ in range(args.runs):
        for timed in everything:
            await timed.run(workdir)
    return yardstick, pairs


async def main(args: argparse.Namespace) -> int:
    lead_id = f"bench-cli-{uuid.uuid4().hex[:6]}"
    print(f"load average at the start {load_average()}")
    with tempfile.TemporaryDirectory(prefix="crm-bench-cli-") as tmp:
        workdir = Path(tmp)
        settings = make_settings(workdir)
        migrate(settings.database_url)
        store = Store.from_url(settings.database_url)
        seed_staff(store)
        with stdout_to_devnull():
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=temporal_binary(), search_attributes=SEARCH_ATTRIBUTES,
                data_converter=data_converter(), dev_server_log_level="error")
        try:
            async with running_worker(env.client, store, settings) as harness:
                await harness.journeys.start_lead(LeadInput(
                    lead_id=lead_id, name="Li Na", email="li.na@example.com", region="east",
                    product_line="erp", source="referral"))
                cli_env = {
                    **os.environ,
                    "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                    "TEMPORAL_NAMESPACE": env.client.namespace,
                    "CRM_DATABASE_URL": settings.database_url,
                    "CRM_CODEC_KEY_FILE": str(workdir / "no-codec-keys.json"),
                    "COLUMNS": "100",
                }
                yardstick, pairs = await measure(args, workdir, cli_env, lead_id)
        finally:
            await env.shutdown()
            store.dispose()
    print(f"\n{args.runs} runs each: wall seconds, and the median CPU seconds (user + "
          f"system); load average at the end {load_average()}")
    print(f"{'command':<34} {'min':>6} {'median':>7} {'max':>6} {'CPU':>6} {'× python':>9}")
    print(yardstick.row(yardstick))
    for pair in pairs:
        for timed in pair:
            print(timed.row(yardstick))
        if len(pair) == 2:
            ratios = [a / b for a, b in zip(pair[0].seconds, pair[1].seconds, strict=True)]
            cpu = statistics.median(pair[0].cpu) / statistics.median(pair[1].cpu)
            print(f"{'  after / before, pair by pair':<34} {min(ratios):>6.2f}"
                  f" {statistics.median(ratios):>7.2f} {max(ratios):>6.2f} {cpu:>6.2f}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--before", type=Path,
                        help="a checkout of older code (`git worktree add /tmp/cli-before REF`)")
    sys.exit(asyncio.run(main(parser.parse_args())))
