"""The delivery sinks of `bench.chaos`, each run as its own process so that the
bench can take it down (SIGTERM) and bring it back on the same port.

    python -m bench.chaos_sinks smtp --port P --log FILE
    python -m bench.chaos_sinks webhook --port P --log FILE

Every message accepted is appended to FILE as one JSON line (`sink`, `key`,
`message_id`, `to`, `path`, `received_at`) and flushed *before* the sender is
told it was accepted: a message the sender believes delivered is always in the
file, so a touch missing from it was never accepted. (The price: a sink taken
down between the line and the acknowledgement makes the sender retry, which
the file shows as a duplicate; the window is a few microseconds.)

The touch key is read from the `X-Crm-Touch-Key` header (e-mail and webhook
alike) and, for a webhook, from a `key` field in the JSON body if there is one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
from datetime import UTC, datetime
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from aiosmtpd.controller import Controller


class Log:
    """Appends JSON lines, one writer at a time, each flushed at once."""

    def __init__(self, path: Path) -> None:
        self._out: TextIO = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        record["received_at"] = datetime.now(UTC).isoformat()
        with self._lock:
            self._out.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._out.flush()


class SmtpHandler:
    def __init__(self, log: Log) -> None:
        self.log = log

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = message_from_bytes(envelope.original_content or envelope.content)
        self.log.write({"sink": "smtp", "key": parsed.get("X-Crm-Touch-Key"),
                        "message_id": parsed.get("Message-ID"),
                        "to": list(envelope.rcpt_tos), "path": None})
        return "250 OK"


def run_smtp(port: int, log: Log) -> None:
    controller = Controller(SmtpHandler(log), hostname="127.0.0.1", port=port)
    controller.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()


def run_webhook(port: int, log: Log) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                payload = {}
            body_key = payload.get("key") if isinstance(payload, dict) else None
            log.write({"sink": "webhook", "key": self.headers.get("X-Crm-Touch-Key"),
                       "body_key": body_key, "message_id": None, "to": None,
                       "path": self.path})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["smtp", "webhook"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    log = Log(args.log)
    if args.kind == "smtp":
        # aiosmtpd's controller runs its own loop in a thread; nothing to await here.
        asyncio.set_event_loop(asyncio.new_event_loop())
        run_smtp(args.port, log)
    else:
        run_webhook(args.port, log)


if __name__ == "__main__":
    main()
