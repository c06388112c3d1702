import base64
import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from grid.cases.ledger import (
    GENESIS,
    SEAL_ALL_COLUMNS,
    SEAL_BODY_ONLY,
    Event,
    Signer,
    StoredEvent,
    canonical,
    canonical_json,
    canonical_time,
    chain_hash,
    event_hash,
    key_id_of,
    seal_bytes,
    verify,
)

SEED = base64.b64encode(bytes(range(32))).decode()
SIGNER = Signer.from_seed(SEED)
OTHER = Signer.from_seed(base64.b64encode(b"x" * 32).decode())
KEYS = {SIGNER.key_id: SIGNER.public_key}
T = datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)


def event(seq, signer=SIGNER, **kw):
    fields = dict(case_id=5, seq=seq, action="accept", actor_person_id=7, from_state="assigned", to_state="accepted",
                  note="我去看看", attachment_hashes=[], body={}, created_at=T + timedelta(minutes=seq),
                  key_id=signer.key_id)  # fmt: skip
    return Event(**(fields | kw))


def chain(events, signer=SIGNER, start_id=1):
    stored, prev = [], GENESIS
    for i, e in enumerate(events, start=start_id):
        digest, signature = signer.seal(e, prev)
        stored.append(StoredEvent(i, SEAL_ALL_COLUMNS, e, prev, digest, signature))
        prev = digest
    return stored


def test_canonical_json_ignores_key_order_and_keeps_chinese():
    assert canonical({"b": 1, "a": "村"}) == canonical({"a": "村", "b": 1}) == '{"a":"村","b":1}'.encode()
    assert canonical_json({"b": 1, "a": "村"}) == '{"a":"村","b":1}'.encode()


def test_the_seal_1_form_is_kept_byte_for_byte():
    """Events and report fingerprints stored before 0108 were hashed with it."""
    assert canonical({"h": 24.0, "at": datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))}) == (
        b'{"at":"2026-01-01T08:00:00+08:00","h":24.0}')  # fmt: skip


def test_canonical_numbers_survive_a_jsonb_round_trip():
    # jsonb gives integral values back without a fraction, and has no negative zero.
    assert canonical_json([24.0, -0.0, 1e20, 0.1, 1e-05, 3]) == b"[24,0,100000000000000000000,0.1,1e-05,3]"
    assert canonical_json({"b": "\n\"", "a": datetime(2026, 1, 1, tzinfo=UTC)}) == (
        b'{"a":"2026-01-01T00:00:00.000000Z","b":"\\n\\""}')  # fmt: skip
    with pytest.raises(ValueError):
        canonical_json(float("nan"))
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


def test_canonical_time_is_utc_with_microseconds_whatever_the_zone():
    shanghai = timezone(timedelta(hours=8))
    assert canonical_time(datetime(2026, 3, 1, 17, 0, tzinfo=shanghai)) == "2026-03-01T09:00:00.000000Z"
    assert canonical_time(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000000Z"
    with pytest.raises(ValueError):
        canonical_time(datetime(2026, 3, 1))


def test_the_sealed_bytes_of_a_known_event_do_not_change():
    """A change of the canonical form breaks every stored seal: it must be deliberate."""
    e = event(1, action="report", from_state=None, to_state="reported", attachment_hashes=["ab" * 32],
              body={"severity": 2, "lon": 110.07437, "flags": []})  # fmt: skip
    assert SIGNER.key_id == key_id_of(SIGNER.public_key) == "56475aa75463474c"
    expected = (
        b"wuzhang-ledger/2\n"
        b'{"action":"report","actor_person_id":7,"attachment_hashes":["' + b"ab" * 32 + b'"],'
        b'"body":{"flags":[],"lon":110.07437,"severity":2},"case_id":5,"created_at":"2026-03-01T09:01:00.123456Z",'
        b'"from_state":null,"key_id":"56475aa75463474c","note":"' + "我去看看".encode() + b'",'
        b'"prev_hash":"' + GENESIS.encode() + b'","seal":2,"seq":1,"to_state":"reported"}'
    )
    assert seal_bytes(e, GENESIS) == expected
    assert event_hash(e, GENESIS) == hashlib.sha256(expected).hexdigest()


def test_an_untouched_chain_verifies_and_names_its_key():
    verdict = verify(chain([event(1), event(2), event(3)]), KEYS)
    assert (verdict.valid, verdict.events, verdict.sealed_body_only, verdict.key_ids) == (True, 3, 0, (SIGNER.key_id,))


@pytest.mark.parametrize(
    "change",
    [
        {"case_id": 6}, {"seq": 9}, {"action": "close"}, {"actor_person_id": 9704}, {"actor_person_id": None},
        {"from_state": "accepted"}, {"to_state": "closed"}, {"note": "TAMPERED"}, {"note": None},
        {"attachment_hashes": ["deadbeef"]}, {"body": {"x": 1}}, {"created_at": T + timedelta(minutes=2, microseconds=1)},
        {"key_id": OTHER.key_id},
    ],
    ids=lambda c: next(iter(c)),
)  # fmt: skip
def test_a_changed_column_is_named(change):
    events = chain([event(1), event(2), event(3)])
    forged = dataclasses.replace(events[1], event=dataclasses.replace(events[1].event, **change))
    verdict = verify([events[0], forged, events[2]], KEYS | {OTHER.key_id: OTHER.public_key})
    assert (verdict.valid, verdict.first_bad_event, verdict.first_bad_seq, verdict.problem) == (
        False, 2, forged.event.seq, "hash_mismatch")  # fmt: skip


def test_a_rehashed_forgery_fails_on_the_signature_and_a_removed_step_breaks_the_chain():
    events = chain([event(1), event(2), event(3)])
    forged = event(2, note="改过")  # re-hashed, and signed by another key in our key's name
    digest = event_hash(forged, events[0].hash)
    rewritten = [events[0], StoredEvent(2, SEAL_ALL_COLUMNS, forged, events[0].hash, digest, OTHER.sign(digest))]
    verdict = verify(rewritten, KEYS)
    assert (verdict.first_bad_event, verdict.problem) == (2, "bad_signature")
    verdict = verify(events[:1] + events[2:], KEYS)
    assert (verdict.first_bad_event, verdict.problem) == (3, "chain_broken")


def test_each_event_verifies_against_the_key_that_signed_it():
    """Sign with A, rotate, sign with B: both verify while A's public key is kept; without
    it the first event A signed is named."""
    a, b = SIGNER, OTHER
    first = chain([event(1, a), event(2, a)], signer=a)
    digest, signature = b.seal(event(3, b), first[-1].hash)
    events = [*first, StoredEvent(3, SEAL_ALL_COLUMNS, event(3, b), first[-1].hash, digest, signature)]
    both = {a.key_id: a.public_key, b.key_id: b.public_key}
    assert verify(events, both).valid and verify(events, both).key_ids == (a.key_id, b.key_id)
    verdict = verify(events, {b.key_id: b.public_key})
    assert (verdict.valid, verdict.first_bad_event, verdict.problem) == (False, 1, "unknown_key")


def _body_only(seq, prev):
    """An event as written before migration 0108: the body holds a copy of every column."""
    e = event(seq, key_id=None)
    body = {"case_id": e.case_id, "seq": seq, "actor_person_id": e.actor_person_id, "action": e.action,
            "from_state": e.from_state, "to_state": e.to_state, "note": e.note, "attachment_hashes": [],
            "at": e.created_at.isoformat(), "deadline_no": 1}  # fmt: skip
    e = dataclasses.replace(e, body=body)
    digest = chain_hash(prev, body)
    return StoredEvent(seq, SEAL_BODY_ONLY, e, prev, digest, SIGNER.sign(digest))


def test_events_sealed_over_the_body_only_are_counted_and_their_columns_checked_against_the_body():
    old = [_body_only(1, GENESIS)]
    old.append(_body_only(2, old[0].hash))
    digest, signature = SIGNER.seal(event(3), old[-1].hash)
    events = [*old, StoredEvent(3, SEAL_ALL_COLUMNS, event(3), old[-1].hash, digest, signature)]
    verdict = verify(events, KEYS)
    assert (verdict.valid, verdict.sealed_body_only) == (True, 2)
    for change in ({"note": "TAMPERED"}, {"action": "close"}, {"created_at": T}, {"key_id": SIGNER.key_id}):
        forged = dataclasses.replace(old[1], event=dataclasses.replace(old[1].event, **change))
        verdict = verify([old[0], forged, events[2]], KEYS)
        assert (verdict.first_bad_event, verdict.problem) == (2, "columns_differ_from_body"), change


def test_a_sealed_event_cannot_pass_for_a_body_only_one():
    """Seal 1 checks fewer columns; an event relabelled seal 1, its body set to the object
    its seal-2 hash covers, must still fail (the seal-2 preimage has a prefix)."""
    import json

    events = chain([event(1), event(2)])
    target = events[1]
    sealed = json.loads(seal_bytes(target.event, target.prev_hash).removeprefix(b"wuzhang-ledger/2\n"))
    forged_event = dataclasses.replace(target.event, body=sealed, note="TAMPERED", key_id=None)
    forged = dataclasses.replace(target, seal=SEAL_BODY_ONLY, event=forged_event)
    verdict = verify([events[0], forged], KEYS)
    assert (verdict.first_bad_event, verdict.problem) == (2, "hash_mismatch")
