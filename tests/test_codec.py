"""The payload codec: what it writes (ciphertext naming its key), what it reads
(its own payloads under any key of the ring, plaintext as it is), how keys
come from the settings, and the worker's log lines masking URL passwords."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload

from activities.logs import mask_secrets
from domain.leads import LeadInput
from domain.settings import Settings
from starter.client import data_converter
from starter.codec import (
    ENCODING,
    KEY_ID,
    CodecKeyError,
    EncryptionCodec,
    KeyRing,
    ensure_key_file,
    key_ring,
    new_key,
    read_key_file,
)
from worker import JsonLogFormatter

LEAD = LeadInput(lead_id="L1", name="王芳", phone="13800138000", email="wang.fang@example.com",
                 region="east", product_line="erp", source="web_form")


def ring(*ids: str) -> KeyRing:
    return KeyRing.parse({key_id: new_key() for key_id in ids}, source="test")


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'crm.db'}",
                    _env_file=None, **values)  # type: ignore[call-arg, arg-type]


def encode(codec: EncryptionCodec | None, value: object) -> list[Payload]:
    return asyncio.run(data_converter(codec).encode([value]))


def decode(codec: EncryptionCodec | None, payloads: list[Payload]) -> LeadInput:
    [value] = asyncio.run(data_converter(codec).decode(payloads, [LeadInput]))
    assert isinstance(value, LeadInput)
    return value


def test_a_payload_is_ciphertext_naming_its_key_and_reads_back() -> None:
    codec = EncryptionCodec(ring("2026-11", "2026-01"))

    [payload] = encode(codec, LEAD)

    assert payload.metadata["encoding"] == ENCODING
    assert payload.metadata[KEY_ID] == b"2026-11"  # the first key encrypts
    for personal in (b"13800138000", "王芳".encode(), b"wang.fang", b"json/plain"):
        assert personal not in payload.SerializeToString()
    assert decode(codec, [payload]) == LEAD


def test_a_rotated_ring_still_reads_what_the_old_key_wrote() -> None:
    old = ring("k1")
    rotated = KeyRing(keys={"k2": new_key_bytes(), **old.keys}, current="k2")

    written_before = encode(EncryptionCodec(old), LEAD)
    written_after = encode(EncryptionCodec(rotated), LEAD)

    assert written_after[0].metadata[KEY_ID] == b"k2"
    assert decode(EncryptionCodec(rotated), written_before) == LEAD
    with pytest.raises(CodecKeyError, match="key 'k2', which is not in the key ring"):
        decode(EncryptionCodec(old), written_after)


def new_key_bytes() -> bytes:
    return base64.b64decode(new_key())


def test_plaintext_payloads_pass_through_so_old_histories_still_decode() -> None:
    plaintext = encode(None, LEAD)
    assert plaintext[0].metadata["encoding"] == b"json/plain"
    assert decode(EncryptionCodec(ring("k1")), plaintext) == LEAD


def test_a_payload_tampered_with_does_not_decode() -> None:
    codec = EncryptionCodec(ring("k1"))
    [payload] = encode(codec, LEAD)
    payload.data = payload.data[:-1] + bytes([payload.data[-1] ^ 1])
    with pytest.raises(InvalidTag):
        decode(codec, [payload])


@pytest.mark.parametrize(("keys", "problem"), [
    ({}, "no key"),
    ({"k1": "not base64!"}, "key 'k1' is not base64"),
    ({"k1": base64.b64encode(b"short").decode()}, "is 5 bytes; AES-256 needs 32"),
])
def test_a_bad_key_ring_is_refused_with_the_reason(keys: dict[str, str], problem: str) -> None:
    with pytest.raises(CodecKeyError, match=problem):
        KeyRing.parse(keys, source="CRM_CODEC_KEYS")


def test_keys_come_from_the_settings_else_from_the_key_file(tmp_path: Path) -> None:
    # Neither: no codec (payloads in plaintext).
    assert key_ring(settings(tmp_path)) is None
    # The key file beside the SQLite store, made once, for its owner only.
    path = settings(tmp_path).codec_key_path
    assert path == tmp_path / "codec-keys.json"
    assert ensure_key_file(path) is True
    assert ensure_key_file(path) is False
    assert path.stat().st_mode & 0o777 == 0o600
    from_file = key_ring(settings(tmp_path))
    assert from_file is not None and from_file == read_key_file(path)
    # CRM_CODEC_KEYS wins over the file.
    named = {"env-1": new_key()}
    from_env = key_ring(settings(tmp_path, codec_keys=named))
    assert from_env is not None and from_env.current == "env-1"
    # A store that is not a SQLite file has no default key file.
    assert Settings(database_url="postgresql://crm@db/crm",
                    _env_file=None).codec_key_path is None  # type: ignore[call-arg]


def test_a_key_file_that_is_not_a_key_ring_says_so(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(["k1"]))
    with pytest.raises(CodecKeyError, match="not a JSON object"):
        key_ring(settings(tmp_path, codec_key_file=path))


@pytest.mark.parametrize(("text", "masked"), [
    ("mailtos://crm:s3cr3t@smtp.example.com:587/?to={to}",
     "mailtos://crm:***@smtp.example.com:587/?to={to}"),
    ("failed on mailto://u:p:w@h/ and json://hooks/x", "failed on mailto://u:***@h/ and "
                                                       "json://hooks/x"),
    ("no URL here: a:b@c", "no URL here: a:b@c"),
])
def test_url_passwords_are_masked(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked


def test_the_worker_s_log_lines_never_carry_a_url_password() -> None:
    try:
        raise RuntimeError("apprise could not reach mailtos://crm:s3cr3t@smtp.example.com")
    except RuntimeError:
        import sys

        record = logging.LogRecord("apprise", logging.ERROR, __file__, 1,
                                   "Failed to send to %s", ("mailtos://crm:s3cr3t@smtp/",),
                                   sys.exc_info())
    line = JsonLogFormatter().format(record)
    assert "s3cr3t" not in line
    assert "mailtos://crm:***@smtp/" in json.loads(line)["message"]
