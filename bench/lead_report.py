"""What one batch of `bench.lead` journeys measured, and how the figures print:
rates, the CPU split with worker processes, and real against no-op in CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class Batch:
    variant: str
    journeys: int
    seconds: float
    lead_ids: list[str]
    failures: list[str] = field(default_factory=list)
    # CPU seconds spent meanwhile by this process (worker, client and sinks)
    # and by the dev server, where /proc tells.
    cpu_here: float = 0.0
    cpu_server: float | None = None
    # With worker processes (--workers): theirs, and PostgreSQL's.
    cpu_workers: float | None = None
    cpu_postgres: float | None = None

    @property
    def rate(self) -> float:
        return (self.journeys - len(self.failures)) / self.seconds if self.seconds else 0.0


def _total(values: list[float | None]) -> float | None:
    return None if None in values else sum(v for v in values if v is not None)


def merge(batches: list[Batch]) -> Batch:
    servers = [b.cpu_server for b in batches]
    return Batch(
        variant=batches[0].variant,
        journeys=sum(b.journeys for b in batches),
        seconds=sum(b.seconds for b in batches),
        lead_ids=[lid for b in batches for lid in b.lead_ids],
        failures=[f for b in batches for f in b.failures],
        cpu_here=sum(b.cpu_here for b in batches),
        cpu_server=None if None in servers else sum(s for s in servers if s is not None),
        cpu_workers=_total([b.cpu_workers for b in batches]),
        cpu_postgres=_total([b.cpu_postgres for b in batches]),
    )


def print_rates(batches: list[Batch]) -> None:
    print(f"{'variant':<8} {'journeys':>8} {'seconds':>8} {'journeys/s':>11}"
          f" {'CPU ms/journey: here':>21} {'server':>7}")
    for b in batches:
        here = b.cpu_here / b.journeys * 1000
        server = "-" if b.cpu_server is None else f"{b.cpu_server / b.journeys * 1000:.0f}"
        print(f"{b.variant:<8} {b.journeys:>8} {b.seconds:>8.2f} {b.rate:>11.2f}"
              f" {here:>21.0f} {server:>7}")
    for b in batches:
        if b.failures:
            print(f"{b.variant}: {len(b.failures)} journeys failed, e.g. {b.failures[0]}")


def print_cpu_split(real: Batch, workers: int) -> None:
    """Where a journey's CPU went with worker processes, and how busy the machine was."""
    parts = {"workers": real.cpu_workers, "dev server": real.cpu_server,
             "PostgreSQL": real.cpu_postgres, "this process (client, sinks)": real.cpu_here}
    known = {k: v for k, v in parts.items() if v is not None}
    total = sum(known.values())
    print(f"CPU per journey ({workers} worker process{'es' if workers > 1 else ''}): "
          + ", ".join(f"{k} {v / real.journeys * 1000:.0f} ms" for k, v in known.items())
          + f"; total {total / real.journeys * 1000:.0f} ms")
    print("CPU share: " + ", ".join(f"{k} {v / total * 100:.0f} %" for k, v in known.items())
          + f"; {total / real.seconds:.2f} of {os.cpu_count()} cores busy on average "
          f"({total:.1f} CPU s in {real.seconds:.1f} s)")


def print_cpu_ratio(real: Batch, noop: Batch) -> None:
    """The same comparison in CPU time, which the machine's other load disturbs less."""
    if real.cpu_server is None or noop.cpu_server is None:
        return
    real_ms = (real.cpu_here + real.cpu_server) / real.journeys * 1000
    noop_ms = (noop.cpu_here + noop.cpu_server) / noop.journeys * 1000
    print(f"CPU per journey (this process + dev server): real {real_ms:.0f} ms, "
          f"no-op {noop_ms:.0f} ms; no-op/real {noop_ms / real_ms:.2f}")
