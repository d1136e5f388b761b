"""Real delivery sinks for integration tests: an SMTP server and a webhook receiver."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Mail:
    to: list[str]
    subject: str
    key: str | None
    body: str
    message_id: str | None = None


@dataclass
class SmtpSink:
    """aiosmtpd on 127.0.0.1, keeping every message it accepts."""

    mails: list[Mail] = field(default_factory=list)
    controller: Controller | None = None
    port: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = message_from_bytes(envelope.original_content or envelope.content)
        self.mails.append(
            Mail(
                to=list(envelope.rcpt_tos),
                subject=str(make_header(decode_header(parsed.get("Subject", "")))),
                key=parsed.get("X-Crm-Touch-Key"),
                body=_text_body(parsed),
                message_id=parsed.get("Message-ID"),
            )
        )
        return "250 OK"

    def start(self) -> int:
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self.port

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _text_body(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8")
    return ""


@dataclass
class Hook:
    path: str
    key: str | None
    payload: dict[str, Any]


class WebhookSink:
    """A local HTTP receiver for apprise's json:// channel. With `hold`, each
    request waits until the test sets `release` (a delivery kept in flight)."""

    def __init__(self, hold: bool = False) -> None:
        self.hooks: list[Hook] = []
        self.started = threading.Event()
        self.release = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                sink.started.set()
                # Bounded, so that a test that never releases cannot hang.
                if hold and not sink.release.wait(timeout=60):
                    self.send_response(503)
                    self.end_headers()
                    return
                sink.hooks.append(
                    Hook(path=self.path, key=self.headers.get("X-Crm-Touch-Key"),
                         payload=json.loads(body or b"{}"))
                )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> int:
        self.thread.start()
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
