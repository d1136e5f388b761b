"""The codec server: Temporal's remote codec protocol over HTTP, so the Web UI
and the `temporal` CLI show decrypted payloads while the server stores
ciphertext.

`POST {endpoint}/encode` and `POST {endpoint}/decode` take and return
`{"payloads": [{"metadata": {name: base64}, "data": base64}]}` (the JSON form
of `temporal.api.common.v1.Payloads`). The UI calls from the browser, so the
server answers CORS preflights for the configured UI origins. With a token
configured, every call must carry `Authorization: Bearer TOKEN`: whoever can
reach the server without it cannot decrypt.

The standard library's threading HTTP server is enough: each call is a few
AES-GCM operations, and the server is for people looking at histories, not
for journey traffic.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from starter.codec import CodecKeyError, EncryptionCodec

log = logging.getLogger("crm.codec_server")
# A history's payloads in one call; a bigger body is refused, not read.
MAX_BODY_BYTES = 16 * 1024 * 1024
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"


class CodecServer:
    """The codec server on `host:port` (0: a free port), served from a thread."""

    def __init__(self, codec: EncryptionCodec, *, token: str | None,
                 origins: Sequence[str], host: str = "127.0.0.1", port: int = 0) -> None:
        self.codec = codec
        self.token = token
        self.origins = frozenset(origins)
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> CodecServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="codec-server",
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> CodecServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def authorised(self, header: str | None) -> bool:
        if not self.token:
            return True
        expected = f"Bearer {self.token}".encode()
        return header is not None and hmac.compare_digest(header.strip().encode(), expected)

    def convert(self, operation: str, body: bytes) -> bytes:
        payloads = Payloads()
        json_format.Parse(body, payloads)
        step: Callable[[Payload], Payload] = (
            self.codec.encrypt if operation == "encode" else self.codec.decrypt)
        # `payloads` always present, an empty list included (the UI reads it).
        converted = [json_format.MessageToDict(step(p)) for p in payloads.payloads]
        return json.dumps({"payloads": converted}).encode()


def _handler(server: CodecServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_OPTIONS(self) -> None:  # noqa: N802 - the stdlib's naming
            self._answer(204, b"")

        def do_POST(self) -> None:  # noqa: N802
            operation = self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            if operation not in ("encode", "decode"):
                self._fail(404, f"no such codec operation: {self.path} (POST …/encode or "
                                "…/decode)")
                return
            if not server.authorised(self.headers.get("Authorization")):
                self._fail(401, "a bearer token is required (Authorization: Bearer TOKEN)")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._fail(413, f"body over {MAX_BODY_BYTES} bytes")
                return
            body = self.rfile.read(length)
            try:
                answer = server.convert(operation, body)
            except json_format.ParseError as exc:
                self._fail(400, f"not a JSON object of payloads: {exc}")
                return
            except CodecKeyError as exc:
                self._fail(400, str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - a payload that will not decrypt
                self._fail(400, f"{operation} failed: {exc.__class__.__name__}")
                return
            self._answer(200, answer)

        def _fail(self, status: int, message: str) -> None:
            self._answer(status, json.dumps({"message": message}).encode())

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            origin = self.headers.get("Origin")
            if origin and origin in server.origins:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                self.send_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
                self.send_header("Vary", "Origin")
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            # The request line and status only: never a payload.
            log.info("%s %s", self.address_string(), format % args)

    return Handler
