"""The case ledger (台账): 事事记录，步步签字. Every step is recorded and signed.

Each event's hash is sha256(previous hash + canonical JSON of its body), so
changing, removing or reordering one event breaks every hash after it. The server
signs each hash with Ed25519; the body holds the actor, so nobody can re-sign a
rewritten step without the key, and anyone with the public key can check.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64


def canonical(body: Mapping[str, Any]) -> bytes:
    """One byte string per body: sorted keys, no spaces, UTF-8, times in ISO 8601."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_iso).encode()


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not allowed in a ledger body")


def chain_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(body)).hexdigest()


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, seed_b64: str) -> Signer:
        seed = base64.b64decode(seed_b64)
        if len(seed) != 32:
            raise ValueError("the ledger signing key must be 32 bytes, base64-encoded")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def sign(self, event_hash: str) -> str:
        return base64.b64encode(self.private_key.sign(event_hash.encode())).decode()


def verify_signature(public_key: Ed25519PublicKey, event_hash: str, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature), event_hash.encode())
        return True
    except (InvalidSignature, ValueError):
        return False


@dataclass(frozen=True)
class StoredEvent:
    id: int
    body: Mapping[str, Any]
    prev_hash: str
    hash: str
    signature: str


def verify(events: Iterable[StoredEvent], public_key: Ed25519PublicKey) -> tuple[bool, int | None]:
    """(valid, id of the first bad event). Events in the order they were written."""
    prev = GENESIS
    for event in events:
        if (
            event.prev_hash != prev
            or chain_hash(prev, event.body) != event.hash
            or not verify_signature(public_key, event.hash, event.signature)
        ):
            return False, event.id
        prev = event.hash
    return True, None
