import base64
from datetime import UTC, datetime

from grid.cases.ledger import GENESIS, Signer, StoredEvent, canonical, chain_hash, verify

SEED = base64.b64encode(bytes(range(32))).decode()


def build(bodies, signer):
    events, prev = [], GENESIS
    for i, body in enumerate(bodies, start=1):
        h = chain_hash(prev, body)
        events.append(StoredEvent(i, body, prev, h, signer.sign(h)))
        prev = h
    return events


BODIES = [
    {"case": 1, "action": "report", "actor": 7, "at": datetime(2026, 1, 1, tzinfo=UTC)},
    {"case": 1, "action": "assign", "actor": 0, "to": "610827-x"},
    {"case": 1, "action": "accept", "actor": 9, "note": "我去看看"},
]


def test_canonical_json_ignores_key_order_and_keeps_chinese():
    assert canonical({"b": 1, "a": "村"}) == canonical({"a": "村", "b": 1}) == '{"a":"村","b":1}'.encode()


def test_an_untouched_chain_verifies():
    signer = Signer.from_seed(SEED)
    assert verify(build(BODIES, signer), signer.public_key) == (True, None)


def test_a_changed_body_is_named():
    signer = Signer.from_seed(SEED)
    events = build(BODIES, signer)
    forged = StoredEvent(2, {**events[1].body, "actor": 8}, events[1].prev_hash, events[1].hash, events[1].signature)
    assert verify([events[0], forged, events[2]], signer.public_key) == (False, 2)


def test_a_rehashed_forgery_fails_on_the_signature():
    signer, other = Signer.from_seed(SEED), Signer.from_seed(base64.b64encode(b"x" * 32).decode())
    events = build(BODIES, signer)
    rewritten = build([BODIES[0], {**BODIES[1], "actor": 8}, BODIES[2]], other)
    assert verify(rewritten, signer.public_key) == (False, 1)
    assert verify(events[:1] + events[2:], signer.public_key) == (False, 3)  # a removed step
