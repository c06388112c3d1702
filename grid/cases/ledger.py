"""The case ledger (台账): 事事记录，步步签字. Every step is recorded and signed.

Each event is one row of `case_event`. Its hash covers the event's columns and the hash
of the event before it, so changing, removing or reordering a step breaks that step (and
the chain after it). The server signs each hash with Ed25519, so nobody can re-hash a
rewritten step without the key, and anyone with the public key can check.

Two seals exist (the `seal` column):

- **2, every column** (everything written since migration 0108). The hash is over
  `seal_bytes` below: every column a reader of `/ledger` sees, read back from the row.
  The event names the key that signed it (`key_id`).
- **1, the body only** (events written before migration 0108). The hash is
  sha256(prev_hash + canonical JSON of `body`), and `body` holds copies of the columns.
  Verify checks that hash, and that every column still equals its copy in the body, so
  these events cannot be changed either. They carry no key id: any trusted key may have
  signed them. Verify counts them, so an operator knows how many there are.

Trusted public keys come from the server's configuration, never from the database (see
app/settings.py): whoever controls the database must not be able to add a key.

`GET /cases/{id}/ledger` shows every sealed field (`details` is the body, `at` the
time), so with the public keys (`wuzhang ledger keys`) anyone can recompute a chain from
that answer alone. What a chain cannot show by itself: its last steps removed whole.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GENESIS = "0" * 64
SEAL_BODY_ONLY = 1
SEAL_ALL_COLUMNS = 2
# Starts every seal-2 preimage. A seal-1 preimage starts with 64 hex digits (the previous
# hash), so no body can be made whose seal-1 hash equals a seal-2 hash: an event cannot
# be passed off as seal 1 to escape the check of its columns.
SEAL_2_PREFIX = b"wuzhang-ledger/2\n"

Keyring = Mapping[str, Ed25519PublicKey]  # the trusted public keys, by key id


def canonical(body: Mapping[str, Any]) -> bytes:
    """The seal-1 form (and a report's fingerprint): sorted keys, no spaces, UTF-8, times
    in ISO 8601. Kept byte for byte: events and fingerprints stored before 0108 use it."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_iso).encode()


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not allowed in a ledger body")


def canonical_json(value: Any) -> bytes:
    """The seal-2 form: one byte string per JSON value.

    - UTF-8, no whitespace, object keys sorted by Unicode code point; characters outside
      ASCII are written as they are, and strings escaped as JSON requires (`"`, `\\` and
      control characters; `\\n`, `\\t` ... short forms, others `\\u00XX`, lowercase hex);
    - integers in decimal; a float with an integral value as that integer (`24.0` is
      `24`, `-0.0` is `0`); any other float as the shortest decimal that reads back as the
      same IEEE 754 double (Python's `repr`, e.g. `0.1`, `1e-05`); NaN and infinities are
      refused;
    - a time as `canonical_time`.

    Integral floats are written as integers because PostgreSQL's jsonb does not keep the
    difference: `1e+20` comes back as `100000000000000000000`, `-0.0` as `0.0`.
    """
    return json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value  # NaN, inf: json.dumps refuses them
    if isinstance(value, datetime):
        return canonical_time(value)
    if isinstance(value, Mapping):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    raise TypeError(f"{type(value).__name__} is not allowed in a ledger event")


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"a ledger object's keys are strings, not {type(key).__name__}")
    return key


def canonical_time(at: datetime) -> str:
    """UTC, microseconds always written: `2026-03-01T01:00:00.000000Z`. PostgreSQL's
    timestamptz keeps microseconds, so the time read back gives the same string."""
    if at.tzinfo is None:
        raise ValueError("a ledger time must carry its time zone")
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# --- the event ---------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """The columns of one `case_event` row that a seal covers (its id, hash and
    signature are not: the id is the database's, the others are the seal itself)."""

    case_id: int
    seq: int
    action: str
    actor_person_id: int | None  # None: a step the server took by itself
    from_state: str | None
    to_state: str
    note: str | None
    attachment_hashes: Sequence[str]
    body: Mapping[str, Any]  # what the step records beyond the columns (JSON object)
    created_at: datetime
    key_id: str | None  # None only on seal-1 events


def seal_bytes(event: Event, prev_hash: str) -> bytes:
    """What a seal-2 event's hash covers: `SEAL_2_PREFIX` (the 17 bytes
    `wuzhang-ledger/2` and a newline), then `canonical_json` of this object:

    | key | value |
    |---|---|
    | `action` | the step, e.g. `"accept"` |
    | `actor_person_id` | integer, or `null` for the server's own steps |
    | `attachment_hashes` | array of strings (`[]` when none) |
    | `body` | the `body` column: a JSON object (`{}` when empty) |
    | `case_id` | integer |
    | `created_at` | string, `canonical_time` of the `created_at` column |
    | `from_state` | string, or `null` for the first step |
    | `key_id` | string: the signing key's id (`key_id_of`) |
    | `note` | string or `null` |
    | `prev_hash` | the previous event's hash (64 lowercase hex), `GENESIS` for the first |
    | `seal` | `2` |
    | `seq` | integer, 1 for the first step of a case |
    | `to_state` | string |

    The hash is the lowercase hex sha256 of these bytes; the signature is Ed25519 over
    the 64 ASCII characters of that hex, stored in base64.
    """
    return SEAL_2_PREFIX + canonical_json({
        "action": event.action, "actor_person_id": event.actor_person_id,
        "attachment_hashes": list(event.attachment_hashes), "body": event.body, "case_id": event.case_id,
        "created_at": canonical_time(event.created_at), "from_state": event.from_state, "key_id": event.key_id,
        "note": event.note, "prev_hash": prev_hash, "seal": SEAL_ALL_COLUMNS, "seq": event.seq,
        "to_state": event.to_state,
    })  # fmt: skip


def event_hash(event: Event, prev_hash: str) -> str:
    return hashlib.sha256(seal_bytes(event, prev_hash)).hexdigest()


def chain_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    """The seal-1 hash: sha256 of the previous hash's 64 characters, then the body's
    canonical JSON."""
    return hashlib.sha256(prev_hash.encode() + canonical(body)).hexdigest()


# --- keys --------------------------------------------------------------------------


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of sha256 over the raw 32-byte public key."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()[:16]


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError("a ledger public key is 32 bytes, base64-encoded")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_b64(public_key: Ed25519PublicKey) -> str:
    return base64.b64encode(raw_public_key(public_key)).decode()


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, seed_b64: str) -> Signer:
        seed = base64.b64decode(seed_b64)
        if len(seed) != 32:
            raise ValueError("the ledger signing key must be 32 bytes, base64-encoded")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    # Cached: deriving the public key costs about as much as a signature.
    @cached_property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @cached_property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def sign(self, event_hash: str) -> str:
        return base64.b64encode(self.private_key.sign(event_hash.encode())).decode()

    def seal(self, event: Event, prev_hash: str) -> tuple[str, str]:
        """(hash, signature) of a new seal-2 event; `event.key_id` must be this key's."""
        if event.key_id != self.key_id:
            raise ValueError("an event names the key that signs it")
        digest = event_hash(event, prev_hash)
        return digest, self.sign(digest)


def verify_signature(public_key: Ed25519PublicKey, event_hash: str, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature), event_hash.encode())
        return True
    except (InvalidSignature, ValueError):
        return False


# --- verify ------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredEvent:
    """A row as read back: its id, its seal, its sealed columns and the seal itself."""

    id: int
    seal: int
    event: Event
    prev_hash: str
    hash: str
    signature: str


@dataclass(frozen=True)
class Verdict:
    valid: bool
    first_bad_event: int | None = None  # its id
    first_bad_seq: int | None = None
    # chain_broken, hash_mismatch, columns_differ_from_body, unknown_key, bad_signature, unknown_seal
    problem: str | None = None
    events: int = 0
    sealed_body_only: int = 0  # seal-1 events
    key_ids: tuple[str, ...] = ()  # the keys that signed this chain's seal-2 events


def verify(events: Iterable[StoredEvent], keys: Keyring) -> Verdict:
    """Walk one case's events in `seq` order: each must follow the one before, its hash
    must be recomputed from its columns, and a trusted key must have signed it. `keys`:
    key id → public key, from configuration."""
    prev, count, body_only = GENESIS, 0, 0
    used: dict[str, None] = {}  # insertion-ordered set
    for stored in events:
        count += 1
        body_only += stored.seal == SEAL_BODY_ONLY
        problem = _problem(stored, prev, keys)
        if problem is not None:
            return Verdict(False, stored.id, stored.event.seq, problem, count, body_only, tuple(used))
        if stored.event.key_id is not None:
            used[stored.event.key_id] = None
        prev = stored.hash
    return Verdict(True, events=count, sealed_body_only=body_only, key_ids=tuple(used))


def _problem(stored: StoredEvent, prev: str, keys: Keyring) -> str | None:
    event = stored.event
    if stored.prev_hash != prev:
        return "chain_broken"
    if stored.seal == SEAL_ALL_COLUMNS:
        if event_hash(event, prev) != stored.hash:
            return "hash_mismatch"
        key = keys.get(event.key_id or "")
        if key is None:
            return "unknown_key"
        return None if verify_signature(key, stored.hash, stored.signature) else "bad_signature"
    if stored.seal == SEAL_BODY_ONLY:
        if chain_hash(prev, event.body) != stored.hash:
            return "hash_mismatch"
        if event.key_id is not None or not _columns_match_body(event):
            return "columns_differ_from_body"
        signed = any(verify_signature(k, stored.hash, stored.signature) for k in keys.values())
        return None if signed else "bad_signature"
    return "unknown_seal"


def _columns_match_body(event: Event) -> bool:
    """A seal-1 body holds a copy of each column (and the time as `at`, ISO 8601)."""
    body = event.body
    copies = {
        "case_id": event.case_id, "seq": event.seq, "action": event.action, "actor_person_id": event.actor_person_id,
        "from_state": event.from_state, "to_state": event.to_state, "note": event.note,
        "attachment_hashes": list(event.attachment_hashes),
    }  # fmt: skip
    if any(key not in body or body[key] != value for key, value in copies.items()):
        return False
    try:
        return datetime.fromisoformat(body["at"]) == event.created_at
    except (KeyError, TypeError, ValueError):
        return False
