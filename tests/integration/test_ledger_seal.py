"""The ledger sealed over every column (issue 11, finding 1), and key rotation (finding 14),
against a real PostGIS: what is hashed when an event is written is what verify reads back,
and changing any column a reader sees, as a database superuser, is named."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command

from app.accounts.service import ROOMS
from app.settings import PROJECT_ROOT, libpq_url
from grid.cases import service as cases
from grid.cases.ledger import Signer, canonical, chain_hash, public_key_b64
from grid.db import connect, fetch_all, fetch_one, fetch_value
from tests.conftest import alembic_config, migrate, settings_for_tests
from tests.integration.test_cases import T0, actor_for, household_report

SEED_A = base64.b64encode(b"a" * 32).decode()
A = Signer.from_seed(SEED_A)
SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture
async def db(database_url, loaded_county):
    """The test's rolled-back connection as the owner, not the app role: these tests play a
    database superuser who switches the trigger off inside the test's own transaction
    (the app role cannot; tests/integration/test_db_roles.py checks that)."""
    conn = await connect(libpq_url(database_url))
    try:
        async with conn.transaction(force_rollback=True):
            yield conn
    finally:
        await conn.close()


async def _report(conn, county, index, signer, now=T0):
    household, report = household_report(county, index)
    out = await cases.submit_report(conn=conn, actor=await actor_for(conn, household.code), key=uuid.uuid4(),
                                    report=report, now=now, signer=signer, rooms=ROOMS,
                                    county_code="610827")  # fmt: skip
    return out.case


async def _accept(conn, case, signer, now=T0 + timedelta(hours=1)):
    village = await actor_for(conn, case["handling_node_code"])
    return await cases.act(conn=conn, actor=village, case_id=case["id"], action="accept", fields={}, now=now,
                           signer=signer, rooms=ROOMS)  # fmt: skip


async def _tamper(conn, sql, params):
    """What a database superuser can do: switch the append-only trigger off, change a row,
    switch it on again."""
    await conn.execute("ALTER TABLE case_event DISABLE TRIGGER case_event_append_only")
    await conn.execute(sql, params)
    await conn.execute("ALTER TABLE case_event ENABLE TRIGGER case_event_append_only")


async def _event_id(conn, case_id, seq):
    return await fetch_value(conn, "SELECT id FROM case_event WHERE case_id = %(c)s AND seq = %(s)s",
                             {"c": case_id, "s": seq})  # fmt: skip


async def _other_person(conn, not_this):
    return await fetch_value(conn, "SELECT max(id) FROM person WHERE id <> %(p)s", {"p": not_this or 0})


# --- the issue's request, over HTTP --------------------------------------------------


async def test_the_issues_tampering_is_named_by_the_api(db, client, settings, make_account, loaded_county):
    """Issue 11, finding 1: note, actor, action and attachments of step 1 changed behind
    the trigger; /ledger shows the forged close, and /ledger/verify names the step."""
    leader = await make_account("leader")
    case = await _report(db, loaded_county, 500, settings.ledger_signer())
    target = await _event_id(db, case["id"], 1)
    ok = (await client.get(f"/api/v1/cases/{case['id']}/ledger/verify", headers=leader.headers)).json()
    assert ok["valid"] and ok["events"] == 2
    await _tamper(db, "UPDATE case_event SET note='TAMPERED', actor_person_id=%(p)s, action='close', "
                      "attachment_hashes='{deadbeef}' WHERE case_id=%(c)s AND seq=1",
                  {"c": case["id"], "p": await _other_person(db, case["reporter_person_id"])})  # fmt: skip
    shown = (await client.get(f"/api/v1/cases/{case['id']}/ledger", headers=leader.headers)).json()["events"]
    assert shown[0]["action"] == "close" and shown[0]["note"] == "TAMPERED"
    r = await client.get(f"/api/v1/cases/{case['id']}/ledger/verify", headers=leader.headers)
    assert r.status_code == 200
    verdict = r.json()
    assert (verdict["valid"], verdict["first_bad_event"], verdict["first_bad_seq"], verdict["problem"]) == (
        False, target, 1, "hash_mismatch")  # fmt: skip
    assert verdict["message"].startswith("台账校验未通过：第 1 步")


# Each column a reader of /ledger sees, and the seal's own columns: how to change it alone.
COLUMN_CHANGES = {
    "case_id": "case_id = %(other_case)s, seq = 3",  # moved onto another case's chain (seq must stay unique)
    "seq": "seq = seq + 10",
    "action": "action = 'close'",
    "actor_person_id": "actor_person_id = %(other_person)s",
    "from_state": "from_state = 'closed'",
    "to_state": "to_state = 'closed'",
    "note": "note = 'TAMPERED'",
    "attachment_hashes": "attachment_hashes = '{deadbeef}'",
    "body": """body = body || '{"agreement": "赔偿一万元"}'""",
    "created_at": "created_at = created_at + interval '1 microsecond'",
    "key_id": "key_id = 'ffffffffffffffff'",
    "seal": "seal = 1",
    "prev_hash": "prev_hash = repeat('0', 64)",
    "hash": "hash = repeat('a', 64)",
    "signature": "signature = (SELECT signature FROM case_event WHERE case_id = %(case)s AND seq = 1)",
}


@pytest.mark.parametrize("column", COLUMN_CHANGES)
async def test_each_column_changed_alone_is_named(column, db, client, settings, make_account, loaded_county):
    leader = await make_account("leader")
    signer = settings.ledger_signer()
    case = await _report(db, loaded_county, 501, signer)
    other = await _report(db, loaded_county, 502, signer)
    await _accept(db, case, signer)  # step 3, the one changed
    target = await _event_id(db, case["id"], 3)
    params = {"case": case["id"], "other_case": other["id"], "id": target,
              "other_person": await _other_person(db, await fetch_value(db, "SELECT actor_person_id FROM case_event "
                                                                            "WHERE id = %(i)s", {"i": target}))}  # fmt: skip
    await _tamper(db, f"UPDATE case_event SET {COLUMN_CHANGES[column]} WHERE id = %(id)s", params)
    # A moved event belongs to the chain it now claims.
    on = other["id"] if column == "case_id" else case["id"]
    verdict = (await client.get(f"/api/v1/cases/{on}/ledger/verify", headers=leader.headers)).json()
    assert (verdict["valid"], verdict["first_bad_event"]) == (False, target), verdict


# --- round trips -----------------------------------------------------------------------


async def test_what_is_hashed_is_what_is_read_back(db, loaded_county):
    """Times in another zone and to the microsecond, numbers jsonb rewrites, text with
    quotes, newlines and CJK: written, read back, recomputed, equal."""
    now = datetime(2026, 3, 1, 17, 0, 0, 123457, tzinfo=SHANGHAI)
    case = await _report(db, loaded_county, 503, A, now=now)
    w = cases._Writes.for_case(
        await fetch_one(db, "SELECT id, county_code, 0 AS deadline_no, 2 AS last_seq, "
                            "(SELECT hash FROM case_event WHERE case_id = %(c)s AND seq = 2) AS last_hash "
                            "FROM case_file WHERE id = %(c)s", {"c": case["id"]}), A)  # fmt: skip
    w.event(actor=None, action="deadline_warning", from_state="assigned", to_state="assigned",
            at=now + timedelta(microseconds=1), note='说"明"\n\t\\ 第二行 \u2028',
            attachment_hashes=[], extra={"hours": 24.0, "zero": -0.0, "big": 1e20, "tiny": 1e-05, "third": 1 / 3,
                                         "due": now, "nested": {"b": [1, None, True], "a": "村"}})  # fmt: skip
    await w.send(db, at=now)
    verdict = await cases.verify_ledger(conn=db, case_id=case["id"], keys={A.key_id: A.public_key})
    assert (verdict.valid, verdict.events, verdict.key_ids) == (True, 3, (A.key_id,)), verdict


# --- events written before migration 0108 ------------------------------------------------


async def test_events_from_before_0108_are_sealed_over_the_body_count_as_such_and_still_verify(
    fresh_database, loaded_county
):
    """The migration marks existing events seal 1. They keep verifying (hash over the body,
    columns checked against the body's copies), and verify says how many there are."""
    url = libpq_url(fresh_database)
    async with await connect(url) as conn:
        case = await _report(conn, loaded_county, 504, A)
        rows = await fetch_all(conn, "SELECT * FROM case_event WHERE case_id = %(c)s ORDER BY seq", {"c": case["id"]})
        async with conn.transaction():
            await _tamper(conn, "DELETE FROM case_event WHERE case_id = %(c)s", {"c": case["id"]})
    command.downgrade(alembic_config(fresh_database), "0108-1")  # back to before the seal columns
    async with await connect(url) as conn:
        prev = "0" * 64
        for r in rows:  # the same steps, written as the code before 0108 wrote them
            body = {"case_id": r["case_id"], "seq": r["seq"], "actor_person_id": r["actor_person_id"],
                    "action": r["action"], "from_state": r["from_state"], "to_state": r["to_state"],
                    "note": r["note"], "attachment_hashes": r["attachment_hashes"],
                    "at": r["created_at"].isoformat(), **r["body"]}  # fmt: skip
            digest = chain_hash(prev, body)
            await conn.execute(
                "INSERT INTO case_event (case_id, seq, actor_person_id, action, from_state, to_state, note, "
                "attachment_hashes, body, prev_hash, hash, signature, created_at) VALUES (%(case_id)s, %(seq)s, "
                "%(actor_person_id)s, %(action)s, %(from_state)s, %(to_state)s, %(note)s, %(attachment_hashes)s, "
                "%(body)s::jsonb, %(prev)s, %(hash)s, %(sig)s, %(created_at)s)",
                r | {"body": canonical(body).decode(), "prev": prev, "hash": digest, "sig": A.sign(digest)},
            )
            prev = digest
    migrate(fresh_database)
    async with await connect(url) as conn:
        await _accept(conn, case, A)  # a new step is sealed over every column, on the old chain
        seals = await fetch_all(conn, "SELECT seal, key_id FROM case_event WHERE case_id = %(c)s ORDER BY seq",
                                {"c": case["id"]})  # fmt: skip
        assert seals == [{"seal": 1, "key_id": None}, {"seal": 1, "key_id": None}, {"seal": 2, "key_id": A.key_id}]
        verdict = await cases.verify_ledger(conn=conn, case_id=case["id"], keys={A.key_id: A.public_key})
        assert (verdict.valid, verdict.events, verdict.sealed_body_only) == (True, 3, 2)
        code, stderr = await _cli(fresh_database, "ledger", "verify", f"--case={case['id']}", key=SEED_A)
        assert code == 0 and "2 events were written before migration 0108" in stderr, stderr
        async with conn.transaction():  # a seal-1 column no longer equals its copy in the body
            await _tamper(conn, "UPDATE case_event SET note = 'TAMPERED' WHERE case_id = %(c)s AND seq = 1",
                          {"c": case["id"]})  # fmt: skip
        verdict = await cases.verify_ledger(conn=conn, case_id=case["id"], keys={A.key_id: A.public_key})
        assert (verdict.first_bad_seq, verdict.problem) == (1, "columns_differ_from_body")


# --- the command line: verify after the issue's tampering, and key rotation ----------------


async def _cli(url, *args, key, keyring: Path | None = None):
    env = {**os.environ, "DATABASE_URL": url, "WUZHANG_LEDGER_KEY": key}
    if keyring is not None:
        env["WUZHANG_LEDGER_KEYRING"] = str(keyring)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "app.cli", *args, env=env, cwd=PROJECT_ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
    _, stderr = await proc.communicate()
    return proc.returncode, stderr.decode()


async def test_the_issues_tampering_makes_the_cli_exit_non_zero(fresh_database, loaded_county, tmp_path):
    url = libpq_url(fresh_database)
    async with await connect(url) as conn:
        case = await _report(conn, loaded_county, 505, A)
        target = await _event_id(conn, case["id"], 1)
    code, stderr = await _cli(fresh_database, "ledger", "verify", f"--case={case['id']}", key=SEED_A,
                              keyring=tmp_path / "none")  # fmt: skip
    assert code == 0, stderr
    async with await connect(url) as conn, conn.transaction():
        await _tamper(conn, "UPDATE case_event SET note='TAMPERED', actor_person_id=%(p)s, action='close', "
                            "attachment_hashes='{deadbeef}' WHERE case_id=%(c)s AND seq=1",
                      {"c": case["id"], "p": await _other_person(conn, case["reporter_person_id"])})  # fmt: skip
    code, stderr = await _cli(fresh_database, "ledger", "verify", f"--case={case['id']}", key=SEED_A,
                              keyring=tmp_path / "none")  # fmt: skip
    assert code == 1 and f"case {case['id']}: the ledger fails at event {target} (step 1)" in stderr, stderr


async def test_a_rotated_key_keeps_old_cases_valid_while_its_public_key_is_kept(
    fresh_database, loaded_county, tmp_path
):
    """Sign with key A, rotate, sign with key B on the same chain: valid. Remove A's public
    key from the keyring: invalid, naming the first event A signed."""
    url = libpq_url(fresh_database)
    keyring, seed_file = tmp_path / "keyring", tmp_path / "new-seed"
    async with await connect(url) as conn:
        case = await _report(conn, loaded_county, 506, A)
        first = await _event_id(conn, case["id"], 1)
    code, stderr = await _cli(fresh_database, "ledger", "rotate-key", key=SEED_A, keyring=keyring)
    assert code == 2 and "--seed-out" in stderr  # the new secret needs somewhere to go
    code, stderr = await _cli(fresh_database, "ledger", "rotate-key", f"--seed-out={seed_file}", key=SEED_A,
                              keyring=keyring)  # fmt: skip
    assert code == 0, stderr
    assert seed_file.stat().st_mode & 0o777 == 0o600
    seed_b = seed_file.read_text().strip()
    b = Signer.from_seed(seed_b)
    assert b.key_id != A.key_id and f"new key {b.key_id}" in stderr
    assert {line.split()[0] for line in keyring.read_text().splitlines()} == {
        public_key_b64(A.public_key), public_key_b64(b.public_key)}  # fmt: skip
    async with await connect(url) as conn:
        await _accept(conn, case, b)
        settings = settings_for_tests(fresh_database, WUZHANG_LEDGER_KEY=seed_b, WUZHANG_LEDGER_KEYRING=str(keyring))
        verdict = await cases.verify_ledger(conn=conn, case_id=case["id"], keys=settings.ledger_keys())
        assert (verdict.valid, verdict.key_ids) == (True, (A.key_id, b.key_id))
    code, stderr = await _cli(fresh_database, "ledger", "verify", f"--case={case['id']}", key=seed_b, keyring=keyring)
    assert code == 0, stderr
    keyring.write_text(f"{public_key_b64(b.public_key)}\n")  # A's public key lost
    code, stderr = await _cli(fresh_database, "ledger", "verify", f"--case={case['id']}", key=seed_b, keyring=keyring)
    assert code == 1 and f"fails at event {first} (step 1): unknown_key" in stderr, stderr
