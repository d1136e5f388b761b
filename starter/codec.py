"""The payload codec: every payload the worker, the CLI and the client helpers
hand to Temporal is encrypted with AES-256-GCM, so workflow inputs, signals,
activity results and query answers (a lead's name, phone, e-mail) are
ciphertext in Temporal's history, its database and anything that exports it.

Keys are a key ring: key id -> 32-byte key. The first key encrypts; every key
decrypts, so a new key can be put first while journeys started under the old
one keep running. Each encrypted payload names its key id in its metadata.

A payload without the codec's encoding passes through `decode` unchanged:
histories written before the codec was switched on (and the recorded
histories the replay tests read) still decode.

Search attributes are not payloads the codec sees (Temporal indexes them in
the clear); the journeys put only ids and stages there.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

if TYPE_CHECKING:
    from domain.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32


class CodecKeyError(ValueError):
    """The key ring is unusable (malformed, wrong length) or lacks a payload's key."""


@dataclass(frozen=True)
class KeyRing:
    """Key id -> AES-256 key; `current` encrypts, all decrypt."""

    keys: Mapping[str, bytes]
    current: str

    @classmethod
    def parse(cls, encoded: Mapping[str, str], *, source: str) -> KeyRing:
        """From key id -> base64 key, in order (the first encrypts)."""
        if not encoded:
            raise CodecKeyError(f"{source}: no key (a JSON object of key id -> base64 key)")
        keys: dict[str, bytes] = {}
        for key_id, value in encoded.items():
            if not key_id or not isinstance(value, str):
                raise CodecKeyError(f"{source}: key {key_id!r} must be a base64 string")
            try:
                key = base64.b64decode(value, validate=True)
            except ValueError as exc:
                raise CodecKeyError(f"{source}: key {key_id!r} is not base64") from exc
            if len(key) != KEY_BYTES:
                raise CodecKeyError(f"{source}: key {key_id!r} is {len(key)} bytes; "
                                    f"AES-256 needs {KEY_BYTES}")
            keys[key_id] = key
        return cls(keys=keys, current=next(iter(keys)))


def new_key() -> str:
    """A fresh AES-256 key, base64."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def read_key_file(path: Path) -> KeyRing:
    try:
        encoded = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise CodecKeyError(f"codec key file {path}: {exc}") from exc
    if not isinstance(encoded, dict):
        raise CodecKeyError(f"codec key file {path}: not a JSON object of key id -> key")
    return KeyRing.parse(encoded, source=f"codec key file {path}")


def ensure_key_file(path: Path) -> bool:
    """Creates `path` with one new key, readable by its owner only, unless it
    exists; returns whether it was created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key_id = f"k{secrets.token_hex(4)}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({key_id: new_key()}, out)
    return True


def key_ring(settings: Settings) -> KeyRing | None:
    """The settings' keys: `CRM_CODEC_KEYS`, else the key file (by default
    `codec-keys.json` beside the embedded SQLite store) when it exists; None
    when there is neither (payloads then go to Temporal in plaintext)."""
    if settings.codec_keys:
        return KeyRing.parse(settings.codec_keys, source="CRM_CODEC_KEYS")
    path = settings.codec_key_path
    if path is not None and path.exists():
        return read_key_file(path)
    return None


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each whole payload (its metadata included)."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.ring.current
        nonce = secrets.token_bytes(NONCE_BYTES)
        data = nonce + self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=data)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # plaintext, from before the codec or from a caller without it
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecKeyError(f"payload encrypted with key {key_id!r}, which is not in the "
                                f"key ring ({', '.join(self.ring.keys)})")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        decoded = Payload()
        decoded.ParseFromString(cipher.decrypt(nonce, sealed, None))
        return decoded


def codec_for(settings: Settings) -> EncryptionCodec | None:
    ring = key_ring(settings)
    return EncryptionCodec(ring) if ring is not None else None
