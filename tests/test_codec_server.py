"""The codec server over HTTP, called as the Temporal Web UI calls it from the
browser: a CORS preflight, then `POST {endpoint}/decode` with `X-Namespace`,
the UI's origin, a JSON body of payloads and the bearer token.

(The real UI in a browser calling it: `test_ui_codec_browser.py`.)"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from domain.leads import LeadInput
from starter.client import data_converter
from starter.codec import EncryptionCodec, KeyRing, new_key
from starter.codec_server import CodecServer

UI = "http://127.0.0.1:8233"
TOKEN = "s3cret-token"
LEAD = LeadInput(lead_id="L1", name="王芳", phone="13800138000", region="east",
                 product_line="erp", source="web_form")


@pytest.fixture
def codec() -> EncryptionCodec:
    return EncryptionCodec(KeyRing.parse({"k1": new_key()}, source="test"))


@pytest.fixture
def server(codec: EncryptionCodec) -> Iterator[CodecServer]:
    with CodecServer(codec, token=TOKEN, origins=[UI]) as running:
        yield running


def call(server: CodecServer, method: str, path: str, body: Any = None,
         **headers: str) -> tuple[int, dict[str, str], Any]:
    host, port = server.httpd.server_address[:2]
    conn = http.client.HTTPConnection(str(host), port, timeout=10)
    try:
        data = body if isinstance(body, bytes) else (
            json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), json.loads(raw) if raw else None
    finally:
        conn.close()


def as_json(codec: EncryptionCodec | None) -> dict[str, Any]:
    """The start input as the UI receives it from the server: payloads in JSON."""
    [payload] = asyncio.run(data_converter(codec).encode([LEAD]))
    return {"payloads": [{"metadata": {k: base64.b64encode(v).decode()
                                       for k, v in payload.metadata.items()},
                          "data": base64.b64encode(payload.data).decode()}]}


UI_HEADERS = {"Origin": UI, "Content-Type": "application/json", "X-Namespace": "default",
              "Authorization": f"Bearer {TOKEN}"}


def test_the_ui_s_preflight_is_answered_for_its_origin(server: CodecServer) -> None:
    status, headers, _ = call(server, "OPTIONS", "/decode", Origin=UI,
                              **{"Access-Control-Request-Method": "POST",
                                 "Access-Control-Request-Headers":
                                     "authorization,content-type,x-namespace"})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == UI
    assert headers["Access-Control-Allow-Credentials"] == "true"
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-namespace"} <= allowed
    # Another origin gets no CORS grant: its browser will not hand it the answer.
    status, headers, _ = call(server, "OPTIONS", "/decode", Origin="http://evil.example")
    assert "Access-Control-Allow-Origin" not in headers


def test_the_ui_s_decode_call_gets_the_payload_in_plaintext(
    server: CodecServer, codec: EncryptionCodec
) -> None:
    status, headers, answer = call(server, "POST", "/decode", as_json(codec), **UI_HEADERS)

    assert status == 200, answer
    assert headers["Access-Control-Allow-Origin"] == UI
    [payload] = answer["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(payload["data"]))["name"] == "王芳"
    assert answer == as_json(None)


def test_encode_then_decode_gives_back_the_payload(server: CodecServer) -> None:
    plain = as_json(None)
    status, _, sealed = call(server, "POST", "/encode", plain, **UI_HEADERS)
    assert status == 200
    assert "13800138000" not in base64.b64decode(sealed["payloads"][0]["data"]).decode(
        errors="replace")
    assert call(server, "POST", "/decode", sealed, **UI_HEADERS)[2] == plain


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", TOKEN])
def test_without_the_token_nothing_is_decrypted(
    server: CodecServer, codec: EncryptionCodec, authorization: str | None
) -> None:
    headers = {k: v for k, v in UI_HEADERS.items() if k != "Authorization"}
    if authorization:
        headers["Authorization"] = authorization
    status, cors, answer = call(server, "POST", "/decode", as_json(codec), **headers)
    assert status == 401
    assert answer == {"message": "a bearer token is required (Authorization: Bearer TOKEN)"}
    # The UI can read the refusal (and say so) rather than a CORS error.
    assert cors["Access-Control-Allow-Origin"] == UI


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/decode", b"{not json", 400, "not a JSON object of payloads"),
    ("/decrypt", {"payloads": []}, 404, "no such codec operation: /decrypt"),
])
def test_a_bad_call_is_answered_with_the_reason(
    server: CodecServer, path: str, body: Any, status: int, message: str
) -> None:
    got, _, answer = call(server, "POST", path, body, **UI_HEADERS)
    assert got == status
    assert message in answer["message"]


def test_a_payload_under_an_unknown_key_is_refused_with_its_key_id(
    server: CodecServer
) -> None:
    other = EncryptionCodec(KeyRing.parse({"k9": new_key()}, source="test"))
    status, _, answer = call(server, "POST", "/decode", as_json(other), **UI_HEADERS)
    assert status == 400
    assert "key 'k9'" in answer["message"]


def test_no_payloads_come_back_as_an_empty_list(server: CodecServer) -> None:
    status, _, answer = call(server, "POST", "/decode", {"payloads": []}, **UI_HEADERS)
    assert (status, answer) == (200, {"payloads": []})
