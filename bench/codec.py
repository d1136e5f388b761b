"""What the payload codec costs a lead journey: the same real worker with the
codec on and off, in one run.

    python -m bench.codec [--journeys N] [--concurrency C]

Starts a local Temporal dev server, SMTP server and webhook receiver (as
`bench.lead` does) and runs N lead journeys (intake -> assignment -> welcome
-> first contact -> convert) through two real workers on the same server: one
whose client encrypts every payload (AES-256-GCM, `starter.codec`), one in
plaintext. After a warm-up of each, the variants alternate rounds, so other
load on the machine falls on both alike. It prints the CPU per journey of each
(this process, which holds worker, client and sinks, plus the dev server), the
ratio, and the codec's own CPU per journey: encrypting and decrypting every
payload of one journey's history, timed apart from the rest. It reports; it
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from bench.lead import Variant, measure
from bench.lead_history import history
from bench.lead_infra import (
    bench_settings,
    crm_database,
    running_sinks,
    seed_staff,
    temporal_binary,
)
from bench.lead_report import Batch, merge, print_rates
from bench.lead_workers import Assignments, real_worker
from bench.quiet import stdout_to_devnull
from starter.client import Journeys, data_converter
from starter.codec import EncryptionCodec, KeyRing, new_key
from worker import ACTIVITY_THREADS
from workflows.kit import SEARCH_ATTRIBUTES


def cpu_ms(batch: Batch) -> float:
    return (batch.cpu_here + (batch.cpu_server or 0.0)) / batch.journeys * 1000


def payloads_of(events: Iterable[Message]) -> list[Payload]:
    """Every payload in a journey's history events."""
    found: list[Payload] = []

    def walk(message: Message) -> None:
        for descriptor, value in message.ListFields():
            if descriptor.message_type is None:
                continue
            if isinstance(value, Message):
                items = [value]
            elif descriptor.message_type.GetOptions().map_entry:
                items = list(value.values())
            else:
                items = list(value)
            for item in items:
                if isinstance(item, Payload):
                    found.append(item)
                elif isinstance(item, Message):
                    walk(item)

    for event in events:
        walk(event)
    return found


def codec_ms_per_journey(codec: EncryptionCodec, payloads: list[Payload],
                         repeat: int = 200) -> float:
    """CPU to decrypt a journey's payloads and encrypt them again (a payload is
    encrypted once where it is made and decrypted where it is read)."""
    started = time.process_time()
    for _ in range(repeat):
        for payload in payloads:
            codec.encrypt(codec.decrypt(payload))
    return (time.process_time() - started) / repeat * 1000


async def main(args: argparse.Namespace) -> int:
    run = uuid.uuid4().hex[:6]
    assignments = Assignments(asyncio.get_running_loop())
    codec = EncryptionCodec(KeyRing.parse({"bench": new_key()}, source="bench"))
    with (tempfile.TemporaryDirectory(prefix="crm-bench-codec-") as tmp,
          crm_database(None, Path(tmp)) as database_url,
          running_sinks() as (smtp, webhook)):
        store = Store.from_url(database_url)
        try:
            seed_staff(store)
            settings = bench_settings(Path(tmp), database_url, smtp, webhook)
            with stdout_to_devnull():
                env = await WorkflowEnvironment.start_local(
                    dev_server_existing_path=temporal_binary(),
                    search_attributes=SEARCH_ATTRIBUTES, data_converter=data_converter(),
                    dev_server_log_level="error")
            try:
                plain = env.client
                sealed = await Client.connect(plain.service_client.config.target_host,
                                              namespace=plain.namespace,
                                              data_converter=data_converter(codec))
                print(f"lead journeys: {args.journeys} per variant after {args.warmup} "
                      f"warm-up, in {args.rounds} alternating rounds, concurrency "
                      f"{args.concurrency}, store sqlite")
                async with (real_worker(plain, settings, store, threads=args.threads,
                                        assignments=assignments) as plain_queue,
                            real_worker(sealed, settings, store, threads=args.threads,
                                        assignments=assignments) as sealed_queue):
                    variants = [Variant("off", Journeys(plain, task_queue=plain_queue)),
                                Variant("on", Journeys(sealed, task_queue=sealed_queue))]
                    await measure(variants, assignments, run=run, journeys=args.journeys,
                                  rounds=args.rounds, warmup=args.warmup,
                                  concurrency=args.concurrency)
                off, on = (merge(v.batches) for v in variants)
                print()
                print_rates([on, off])
                if off.cpu_server is not None and on.cpu_server is not None:
                    print(f"CPU per journey (this process + dev server): codec on "
                          f"{cpu_ms(on):.1f} ms, off {cpu_ms(off):.1f} ms; on/off "
                          f"{cpu_ms(on) / cpu_ms(off):.3f}")
                events = (await history(sealed, on.lead_ids[0])).events
                payloads = payloads_of(events)
                own = codec_ms_per_journey(codec, payloads)
                print(f"the codec's own CPU per journey ({len(payloads)} payloads, "
                      f"{sum(len(p.data) for p in payloads)} bytes): {own:.3f} ms = "
                      f"{own / cpu_ms(off) * 100:.2f} % of a journey's CPU without it "
                      "(goal: under 5 %)")
            finally:
                await env.shutdown()
        finally:
            store.dispose()
    return 1 if on.failures or off.failures else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.codec",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--journeys", type=int, default=100, help="counted journeys per variant")
    parser.add_argument("--concurrency", type=int, default=10, help="journeys in flight at once")
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternating rounds the counted journeys are split into")
    parser.add_argument("--warmup", type=int, default=5,
                        help="uncounted journeys per variant first")
    parser.add_argument("--threads", type=int, default=ACTIVITY_THREADS,
                        help="activity threads of each worker (default: the worker's own)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
