"""Logging in, rotating, logging out, disabling; the throttle; audit; and no secrets in logs."""

import logging
import statistics
import time
from contextlib import asynccontextmanager

import psycopg
import pytest

from app.main import create_app
from app.settings import Settings
from grid.db import fetch_all, fetch_one, fetch_value
from tests.conftest import PASSWORD, SharedConnection, asgi_client, current_chief_phone

TOKEN = "/api/v1/auth/token"


async def login(client, phone, password=PASSWORD):
    return await client.post(TOKEN, data={"username": phone, "password": password})


async def test_a_chief_logs_in_and_me_shows_the_post_roles_and_scope(client, make_account, demo_nodes):
    chief = await make_account("chief")
    me = await client.get("/api/v1/me", headers=chief.headers)
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["roles"] == ["chief"] and body["phone"] == chief.phone
    assert [p["node"]["code"] for p in body["posts"]] == [demo_nodes.village]
    assert body["posts"][0]["role"] == "chief" and body["posts"][0]["node"]["level"] == "village"
    assert [(s["role"], s["node"]["code"]) for s in body["scopes"]] == [("chief", demo_nodes.village)]


async def test_a_mediator_has_a_tier_and_grants_add_up(client, make_account, demo_nodes):
    mediator = await make_account("mediator_township_hall")
    r = await client.post(f"/api/v1/admin/users/{mediator.user_id}/grants", headers=(await make_account("admin")).headers,
                    json=[{"role": "leader", "node_code": demo_nodes.county}])  # fmt: skip
    assert r.status_code == 204, r.text
    body = (await client.get("/api/v1/me", headers=mediator.headers)).json()
    assert body["roles"] == ["leader", "mediator"]
    assert {(s["role"], s["tier"], s["node"]["code"]) for s in body["scopes"]} == {
        ("mediator", "township_hall", demo_nodes.township), ("leader", None, demo_nodes.county)}  # fmt: skip


async def test_unknown_phone_and_wrong_password_get_the_same_answer(client, make_account):
    account = await make_account("dispatcher")
    wrong = await login(client, account.phone, "not-the-password")
    unknown = await login(client, "19600000001", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == "Bearer"
    ok = await login(client, account.phone)
    assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"


async def test_every_api_route_needs_a_token_and_a_bad_token_is_401(client):
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"}):
        r = await client.get("/api/v1/grid/nodes/610827", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated", r.text


async def test_refresh_rotates_and_reusing_a_spent_token_revokes_the_family(client, db, make_account):
    account = await make_account("leader")
    first = account.refresh_token
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    second = r.json()["refresh_token"]
    assert second != first and (await client.get("/api/v1/me", headers={
        "Authorization": f"Bearer {r.json()['access_token']}"})).status_code == 200  # fmt: skip
    # Somebody replays the spent token: both it and the token rotated from it die.
    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert replay.status_code == 401 and "已经用过一次" in replay.json()["error"]["message"]
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": second})).status_code == 401
    revoked = await fetch_one(db, "SELECT count(*) FILTER (WHERE revoked_at IS NOT NULL) AS revoked, count(*) AS total"
                                  " FROM refresh_token WHERE user_id = %(u)s", {"u": account.user_id})  # fmt: skip
    assert revoked["revoked"] == revoked["total"] == 2
    action = await fetch_value(db, "SELECT action FROM audit_log WHERE actor_user_id = %(u)s ORDER BY id DESC LIMIT 1",
                               {"u": account.user_id})  # fmt: skip
    assert action == "auth.refresh_reused"
    # A new login is a new family and works.
    assert (await login(client, account.phone)).status_code == 200


async def test_logout_ends_the_login(client, make_account):
    account = await make_account("dispatcher")
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": account.refresh_token})).status_code == 204
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})).status_code == 401


async def test_a_disabled_users_access_token_stops_working_at_once(client, make_account):
    user, admin = await make_account("dispatcher"), await make_account("admin")
    assert (await client.get("/api/v1/me", headers=user.headers)).status_code == 200
    assert (await client.post(f"/api/v1/admin/users/{user.user_id}/disable", headers=admin.headers)).status_code == 204
    r = await client.get("/api/v1/me", headers=user.headers)  # the same, unexpired token
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})).status_code == 401
    assert (await login(client, user.phone)).json() == (await login(client, "19600000002")).json()  # no hint it exists
    assert (await client.post(f"/api/v1/admin/users/{user.user_id}/enable", headers=admin.headers)).status_code == 204
    assert (await login(client, user.phone)).status_code == 200


@asynccontextmanager
async def app_at(db, settings, **overrides):
    """The app on the test's connection, and a way to reach it from any address:
    `async with at("203.0.113.7") as c` is a client whose peer address is that."""
    app = create_app(settings.model_copy(update=overrides))
    app.state.db = SharedConnection(db)

    def at(peer):
        return asgi_client(app, peer=peer)

    yield at


async def expire_locks(db, kind):
    await db.execute("UPDATE login_throttle SET locked_until = NULL WHERE kind = %(k)s", {"k": kind})


async def test_a_lockout_is_per_phone_and_address_so_the_owner_still_gets_in_from_elsewhere(db, settings, make_account):
    account = await make_account("dispatcher")
    async with app_at(db, settings) as at, at("203.0.113.7") as attacker, at("198.51.100.20") as owner:
        for _ in range(5):
            assert (await login(attacker, account.phone, "wrong-password")).status_code == 401
        locked = await login(attacker, account.phone)  # from that address even the right password waits
        assert locked.status_code == 429 and locked.json()["error"]["code"] == "too_many_attempts"
        assert 55 <= int(locked.headers["retry-after"]) <= 61
        assert "秒后再试" in locked.json()["error"]["message"]
        for _ in range(20):  # hammering on while locked changes nothing for anyone else
            assert (await login(attacker, account.phone, "wrong-password")).status_code == 429
        assert (await login(owner, account.phone)).status_code == 200  # the right password, elsewhere
        # The attacker's lock runs out; one more failure there locks for twice as long.
        await expire_locks(db, "pair")
        assert (await login(attacker, account.phone, "wrong-password")).status_code == 401
        again = await login(attacker, account.phone)
        assert again.status_code == 429 and 115 <= int(again.headers["retry-after"]) <= 121
        # An unknown phone is locked just the same: the lock says nothing about accounts.
        for _ in range(5):
            await login(attacker, "19600000003", "x")
        assert (await login(attacker, "19600000003", "x")).status_code == 429
    # Nothing of what was typed is stored in clear.
    stored = " ".join(r["key_hash"] for r in await fetch_all(db, "SELECT key_hash FROM login_throttle"))
    assert account.phone not in stored and "19600000003" not in stored and "203.0.113.7" not in stored


async def test_one_persons_typos_do_not_lock_out_a_colleague_behind_the_same_address(db, settings, make_account):
    typist, colleague = await make_account("dispatcher"), await make_account("dispatcher")
    async with app_at(db, settings) as at, at("203.0.113.8") as office:  # a township office behind one NAT
        codes = [(await login(office, typist.phone, f"wrong-{i}")).status_code for i in range(30)]
        assert codes == [401] * 5 + [429] * 25  # the typist stops at their own lock, and only they do
        assert (await login(office, colleague.phone)).status_code == 200


async def test_an_address_that_sprays_many_phones_is_limited_and_its_count_leaks_away(db, settings, make_account):
    colleague = await make_account("dispatcher")
    async with app_at(db, settings) as at, at("203.0.113.9") as sprayer:
        for i in range(settings.login_max_failures_ip):
            assert (await login(sprayer, f"1950000{i:04d}", "x")).status_code == 401
        r = await login(sprayer, colleague.phone)
        assert r.status_code == 429 and 35 <= int(r.headers["retry-after"]) <= 37  # one more every 36 s
        # An hour without failures: the count has leaked away, not only the lock.
        await db.execute("UPDATE login_throttle SET locked_until = NULL, last_failed_at = now() - interval '1 hour'"
                         " WHERE kind = 'ip'")  # fmt: skip
        assert (await login(sprayer, "19500009999", "x")).status_code == 401
        count = await fetch_value(db, "SELECT failures FROM login_throttle WHERE kind = 'ip'")
        assert count == 1
        assert (await login(sprayer, colleague.phone)).status_code == 200


async def test_a_phone_attacked_from_many_addresses_slows_down_but_is_never_locked(db, settings, make_account):
    account = await make_account("dispatcher")
    async with app_at(db, settings) as at:
        for i in range(30):  # each from its own address, so no pair lock; each cool-down waited out
            await expire_locks(db, "phone")
            async with at(f"192.0.2.{i + 1}") as bot:
                assert (await login(bot, account.phone, "wrong-password")).status_code == 401
        async with at("198.51.100.30") as owner:
            r = await login(owner, account.phone)
            assert r.status_code == 429 and 30 <= int(r.headers["retry-after"]) <= 31  # 2^10 s, capped at 30
            await expire_locks(db, "phone")  # the cool-down is over
            assert (await login(owner, account.phone)).status_code == 200
        # The owner's login forgave the phone's failures: one more wrong try is no cool-down.
        async with at("192.0.2.200") as bot:
            assert (await login(bot, account.phone, "wrong-password")).status_code == 401
            assert (await login(bot, account.phone)).status_code == 200


async def test_a_forwarded_address_is_believed_only_from_a_trusted_proxy(db, settings, make_account):
    account = await make_account("dispatcher")

    async def failed_login_ips():
        rows = await fetch_all(db, "SELECT ip FROM audit_log WHERE action = 'auth.login_failed' ORDER BY id")
        return [str(r["ip"]) for r in rows]

    # Not trusted: a new X-Forwarded-For each time does not dodge the limit, nor reach the audit log.
    async with app_at(db, settings) as at, at("203.0.113.10") as spoofer:
        for i in range(5):
            r = await spoofer.post(TOKEN, data={"username": account.phone, "password": "wrong"},
                                   headers={"X-Forwarded-For": f"10.9.9.{i}"})  # fmt: skip
            assert r.status_code == 401
        r = await spoofer.post(TOKEN, data={"username": account.phone, "password": "wrong"},
                               headers={"X-Forwarded-For": "10.9.9.99"})  # fmt: skip
        assert r.status_code == 429
    assert await failed_login_ips() == ["203.0.113.10"] * 5
    # Trusted (WUZHANG_TRUSTED_PROXIES): the proxy's header names the client, for the limit and the log.
    async with app_at(db, settings, trusted_proxies=["10.0.0.0/8"]) as at, at("10.0.0.2") as proxy:
        for client_ip in ("198.51.100.41", "198.51.100.42"):
            r = await proxy.post(TOKEN, data={"username": account.phone, "password": "wrong"},
                                 headers={"X-Forwarded-For": f"1.2.3.4, {client_ip}"})  # fmt: skip
            assert r.status_code == 401
        assert (await failed_login_ips())[-2:] == ["198.51.100.41", "198.51.100.42"]
        r = await proxy.post(TOKEN, data={"username": account.phone, "password": PASSWORD},
                             headers={"X-Forwarded-For": "198.51.100.43"})  # fmt: skip
        assert r.status_code == 200


def test_trusted_proxies_must_be_addresses_or_networks():
    with pytest.raises(ValueError, match="WUZHANG_TRUSTED_PROXIES"):
        Settings(WUZHANG_TRUSTED_PROXIES="10.0.0.0/8, proxy.example")
    assert Settings(WUZHANG_TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1").trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]


async def test_a_successful_login_resets_the_phones_count(client, make_account):
    account = await make_account("dispatcher")
    for _ in range(2):
        for _ in range(4):
            assert (await login(client, account.phone, "wrong-password")).status_code == 401
        assert (await login(client, account.phone)).status_code == 200


async def audit_rows(db, user_id, action):
    return await fetch_all(db, "SELECT target, ip, details, at FROM audit_log WHERE actor_user_id = %(u)s AND action = %(a)s",
                           {"u": user_id, "a": action})  # fmt: skip


async def test_reading_a_chiefs_phone_writes_an_audit_row(client, db, make_account, demo_nodes):
    chief = await make_account("chief")
    r = await client.get(f"/api/v1/grid/nodes/{demo_nodes.village}/posts", headers=chief.headers)
    assert any(p["phone"] for p in r.json()["current"])
    [row] = await audit_rows(db, chief.user_id, "read.chief_phone")
    assert row["target"] == f"node:{demo_nodes.village}" and row["ip"] == "testclient" and row["at"]
    shown = {p["person_id"] for p in r.json()["current"] + r.json()["past"] if p["phone"]}
    assert {p["person_id"] for p in row["details"]["phones"]} == shown
    # Out of scope the numbers are withheld, so nothing is audited.
    r = await client.get(f"/api/v1/grid/nodes/{demo_nodes.other_village}/posts", headers=chief.headers)
    assert r.status_code == 200 and all(p["phone"] is None for p in r.json()["current"])
    assert len(await audit_rows(db, chief.user_id, "read.chief_phone")) == 1
    # Locate is audited too, once per answer.
    lon, lat = demo_nodes.points[demo_nodes.household]
    await client.get("/api/v1/grid/locate", params={"lon": lon, "lat": lat}, headers=chief.headers)
    assert len(await audit_rows(db, chief.user_id, "read.chief_phone")) == 2


async def test_admins_read_the_audit_log_newest_first_a_page_at_a_time(client, make_account, demo_nodes):
    leader, admin = await make_account("leader"), await make_account("admin")
    for _ in range(5):
        await client.get(f"/api/v1/grid/nodes/{demo_nodes.village}/posts", headers=leader.headers)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "action": "read.chief_phone", "actor": leader.user_id}
        params |= {"cursor": cursor} if cursor else {}
        body = (await client.get("/api/v1/audit", params=params, headers=admin.headers)).json()
        seen += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and [s["id"] for s in seen] == sorted((s["id"] for s in seen), reverse=True)
    assert all(s["actor_phone"] == leader.phone and s["ip"] == "testclient" for s in seen)
    assert (await client.get("/api/v1/audit", headers=leader.headers)).status_code == 403


async def test_the_audit_log_refuses_updates_and_deletes(db, make_account):
    await make_account("leader")  # a login writes a row
    for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        # The app's role is refused by its grants (migration 0112); one role alone, by the trigger.
        with pytest.raises(psycopg.Error, match=r"permission denied|append-only"):
            async with db.transaction():
                await db.execute(sql)


async def test_admin_creates_a_user_whose_password_is_shown_once_and_stored_hashed(
    client, db, make_account, demo_nodes
):
    admin = await make_account("admin")
    r = await client.post("/api/v1/admin/users", headers=admin.headers, json={
        "phone": "19700000001", "name": "王调解", "grants": [
            {"role": "mediator", "tier": "village_house", "node_code": demo_nodes.village}]})  # fmt: skip
    assert r.status_code == 201, r.text
    initial = r.json()["initial_password"]
    assert len(initial) >= 16
    stored = await fetch_value(db, "SELECT password_hash FROM user_account WHERE phone = '19700000001'")
    assert stored.startswith("$argon2id$") and initial not in stored
    assert (await login(client, "19700000001", initial)).status_code == 200
    [row] = await audit_rows(db, admin.user_id, "admin.user_create")
    assert row["target"] == f"user:{r.json()['id']}" and "password" not in str(row["details"])
    detail = (await client.get(f"/api/v1/admin/users/{r.json()['id']}", headers=admin.headers)).json()
    assert detail["roles"] == ["mediator"] and detail["scopes"][0]["tier"] == "village_house"


async def test_admin_resets_a_password_and_every_login_of_the_user_ends(client, db, make_account):
    user, admin = await make_account("dispatcher"), await make_account("admin")
    r = await client.post(f"/api/v1/admin/users/{user.user_id}/password", headers=admin.headers, json={})
    new = r.json()["password"]
    assert r.status_code == 200 and new
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})).status_code == 401
    assert (await login(client, user.phone)).status_code == 401
    assert (await login(client, user.phone, new)).status_code == 200
    assert len(await audit_rows(db, admin.user_id, "admin.password_reset")) == 1


async def test_admin_input_is_checked(client, make_account, demo_nodes):
    admin = await make_account("admin")
    dup = await make_account("dispatcher")

    async def create(**body):
        return await client.post("/api/v1/admin/users", headers=admin.headers, json={"name": "某人", **body})

    r = await create(phone="19700000002", grants=[{"role": "dispatcher", "node_code": demo_nodes.village}])
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_grant"
    assert "township" in r.json()["error"]["message"]
    r = await create(phone="19700000002", grants=[{"role": "dispatcher", "node_code": "NOPE"}])
    assert r.status_code == 404 and r.json()["error"]["code"] == "node_not_found"
    assert (await create(phone=dup.phone)).status_code == 409
    assert (await create(phone="12345")).status_code == 422
    assert (await client.post("/api/v1/admin/users/999999/disable", headers=admin.headers)).status_code == 404


async def test_a_chief_of_an_existing_post_gets_linked_to_that_person(
    client, db, make_account, loaded_county, demo_nodes
):
    chief = await make_account("chief", node_code=demo_nodes.household)
    person = await fetch_value(db, "SELECT p.phone FROM user_account u JOIN person p ON p.id = u.person_id WHERE u.id = %(u)s",
                               {"u": chief.user_id})  # fmt: skip
    assert person == current_chief_phone(loaded_county, demo_nodes.household) == chief.phone


async def test_no_token_or_password_ever_reaches_a_log(client, make_account, demo_nodes, caplog, capfd):
    caplog.set_level(logging.DEBUG)  # every logger, every level
    account = await make_account("leader")
    refreshed = (await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})).json()
    await client.get(f"/api/v1/grid/nodes/{demo_nodes.village}/posts", headers=account.headers)
    await login(client, account.phone, "a-wrong-password-123")
    await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})  # a reuse
    admin = await make_account("admin")
    reset = (
        await client.post(f"/api/v1/admin/users/{account.user_id}/password", headers=admin.headers, json={})
    ).json()
    await client.post("/api/v1/auth/logout", json={"refresh_token": refreshed["refresh_token"]})
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert caplog.records, "the test must actually capture log records"
    secrets = [PASSWORD, "a-wrong-password-123", reset["password"], account.access_token, account.refresh_token,
               refreshed["access_token"], refreshed["refresh_token"], admin.access_token]  # fmt: skip
    for secret in secrets:
        assert secret not in logged


WEAK = ["1111111111", "aaaaaaaaaa", "1234567890", "password123", "qwertyuiop", "wuzhang-demo", "abcdefghijkl"]


async def test_common_and_trivial_passwords_are_refused_wherever_a_password_is_set(client, db, make_account):
    admin, user = await make_account("admin"), await make_account("dispatcher")
    phone = "19700000005"
    for password in [*WEAK, phone]:  # the new user's own phone number too
        r = await client.post("/api/v1/admin/users", headers=admin.headers,
                              json={"phone": phone, "name": "某人", "password": password})  # fmt: skip
        assert r.status_code == 422, (password, r.text)
        error = r.json()["error"]
        assert error["code"] == "weak_password" and error["details"] == {"field": "password"}
        assert "密码" in error["message"], error["message"]
    assert await fetch_value(db, "SELECT count(*) FROM user_account WHERE phone = %(p)s", {"p": phone}) == 0
    r = await client.post("/api/v1/admin/users", headers=admin.headers,
                          json={"phone": phone, "name": "某人", "password": "1111111111"})  # fmt: skip
    assert "重复" in r.json()["error"]["message"]  # says why
    for password in [*WEAK, user.phone]:  # a reset, the user's phone included
        r = await client.post(f"/api/v1/admin/users/{user.user_id}/password", headers=admin.headers,
                              json={"password": password})  # fmt: skip
        assert r.status_code == 422 and r.json()["error"]["code"] == "weak_password", (password, r.text)
    assert (await login(client, user.phone)).status_code == 200  # the old password still works
    # A long passphrase is fine.
    r = await client.post(f"/api/v1/admin/users/{user.user_id}/password", headers=admin.headers,
                          json={"password": "窑洞 枣树 黄河 -- 米脂 2026 晚霞"})  # fmt: skip
    assert r.status_code == 200, r.text


async def test_login_time_does_not_tell_whether_a_phone_has_an_account(db, settings):
    """The one timed test: medians of 30 interleaved tries each, within 10%."""
    from app.accounts import service

    # Real argon2 work (tens of ms, the parameters both paths use), and limits out of the way.
    timed = settings.model_copy(update={
        "argon2_time_cost": 2, "argon2_memory_kib": 16384, "login_max_failures_pair": 10_000,
        "login_slow_after_failures_phone": 10_000, "login_max_failures_ip": 10_000,
    })  # fmt: skip
    phone = "19700000077"
    await service.create_user(conn=db, settings=timed, county_code="610827", phone=phone, name="计时",
                              password=PASSWORD, grants=[], actor=None, ip=None)  # fmt: skip
    app = create_app(timed)
    app.state.db = SharedConnection(db)
    known, unknown = [], []
    async with asgi_client(app) as c:
        for i in range(35):
            for target, times in ((phone, known), (f"1970001{i:04d}", unknown))[:: 1 if i % 2 else -1]:
                start = time.perf_counter()
                r = await login(c, target, "wrong-password-123")
                elapsed = time.perf_counter() - start
                assert r.status_code == 401, r.text
                if i >= 5:  # the first five of each warm up
                    times.append(elapsed)
    k, u = statistics.median(known), statistics.median(unknown)
    assert abs(k - u) / min(k, u) < 0.10, f"known {k * 1000:.1f} ms, unknown {u * 1000:.1f} ms"
