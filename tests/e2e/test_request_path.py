"""The request path with real server processes, each against a database of the test's own:
caches invalidated across processes by LISTEN/NOTIFY, an inbox stream woken by a commit
elsewhere, a burst with no pool timeout, a
database outage answered 503 and recovered from, and bodies refused before they are read."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from app.accounts import security, service
from app.settings import libpq_url, sqlalchemy_url
from geo import demo
from grid.db import connect, fetch_value
from tests.conftest import PASSWORD, current_chief_phone, settings_for_tests
from tests.servers import free_port, server, wait_ready

pytestmark = pytest.mark.slow


async def committed_user(url: str, *, role: str | None, phone: str, node_code: str = demo.COUNTY_CODE) -> str:
    """A user committed in the database at `url`; returns an access token for them."""
    settings = settings_for_tests(url)
    grants = [service.GrantIn(role=role, node_code=node_code)] if role else []
    async with await connect(libpq_url(url)) as conn:
        user_id, _ = await service.create_user(conn=conn, settings=settings, county_code=demo.COUNTY_CODE,
                                               phone=phone, name="测试", password=PASSWORD, grants=grants, actor=None,
                                               ip=None)  # fmt: skip
    return security.issue_access_token(settings=settings, user_id=user_id)[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_user_disabled_through_one_process_is_refused_by_another(fresh_database, demo_nodes):
    admin = await committed_user(fresh_database, role="admin", phone="19800000001")
    user = await committed_user(fresh_database, role="dispatcher", phone="19800000002", node_code=demo_nodes.township)
    with server(fresh_database) as a, server(fresh_database) as b:
        async with httpx.AsyncClient(timeout=10) as http:
            me = await http.get(f"{b.base}/api/v1/me", headers=bearer(user))
            assert me.status_code == 200
            user_id = me.json()["user_id"]
            # Proof that B answers from its cache: a change written with triggers off (so no
            # NOTIFY) goes unseen by B, which still accepts the token of a disabled user.
            async with await connect(libpq_url(fresh_database)) as conn:
                await conn.execute("SET session_replication_role = replica")
                await conn.execute("UPDATE user_account SET disabled_at = now() WHERE id = %(u)s", {"u": user_id})
            assert (await http.get(f"{b.base}/api/v1/me", headers=bearer(user))).status_code == 200
            async with await connect(libpq_url(fresh_database)) as conn:
                await conn.execute("SET session_replication_role = replica")
                await conn.execute("UPDATE user_account SET disabled_at = NULL WHERE id = %(u)s", {"u": user_id})
            # Disabled the proper way, through process A: B refuses the same token.
            r = await http.post(f"{a.base}/api/v1/admin/users/{user_id}/disable", headers=bearer(admin))
            assert r.status_code == 204
            t0 = time.monotonic()
            while (status := (await http.get(f"{b.base}/api/v1/me", headers=bearer(user))).status_code) == 200:
                assert time.monotonic() - t0 < 10, "process B still accepts a disabled user's token"
                await asyncio.sleep(0.02)
            assert status == 401
            print(f"refused by the other process after {1000 * (time.monotonic() - t0):.0f} ms")
            # A password reset through A ends the login in B as well (the token predates it).
            other = await committed_user(fresh_database, role="leader", phone="19800000003")
            me = await http.get(f"{b.base}/api/v1/me", headers=bearer(other))
            assert me.status_code == 200
            await asyncio.sleep(1.1)  # tokens carry whole seconds: the reset must come in a later one
            r = await http.post(f"{a.base}/api/v1/admin/users/{me.json()['user_id']}/password", headers=bearer(admin),
                                json={})  # fmt: skip
            assert r.status_code == 200
            t0 = time.monotonic()
            while (await http.get(f"{b.base}/api/v1/me", headers=bearer(other))).status_code == 200:
                assert time.monotonic() - t0 < 10, "process B still accepts a token issued before a password reset"
                await asyncio.sleep(0.02)


async def test_an_open_inbox_stream_is_woken_by_a_notification_committed_elsewhere(fresh_database):
    """The stream looks by itself only every WUZHANG_INBOX_POLL_S (set far beyond the
    stream's life here): the event can only come from the commit's NOTIFY."""
    token = await committed_user(fresh_database, role="leader", phone="19800000009")
    async with await connect(libpq_url(fresh_database)) as conn:
        person_id = await fetch_value(conn, "SELECT person_id FROM user_account WHERE phone = '19800000009'")
    with server(fresh_database, workers=2, env={"WUZHANG_INBOX_POLL_S": "300"}) as srv:
        async with httpx.AsyncClient(timeout=30) as http:
            params = {"max_s": 20}
            async with http.stream("GET", f"{srv.base}/api/v1/me/inbox/stream", params=params,
                                   headers=bearer(token)) as r:  # fmt: skip
                assert r.status_code == 200
                lines = r.aiter_lines()
                assert await anext(lines) == ": inbox"  # the stream is open and has looked once
                async with await connect(libpq_url(fresh_database)) as conn:
                    await conn.execute(
                        "INSERT INTO notification (county_code, person_id, kind, title, body, dedupe_key, created_at)"
                        " VALUES ('610827', %(p)s, 'info', '新提醒', '醒', 'e2e:wake', now())",
                        {"p": person_id},
                    )
                seen = []
                async for line in lines:
                    seen.append(line)
                    if line.startswith("id: ") or line == ": bye":
                        break
    assert any(line.startswith("event: notification") for line in seen), seen
    assert '"title":"新提醒"' in "".join(seen)


async def test_300_simultaneous_requests_all_answer_2xx(fresh_database, loaded_county, demo_nodes):
    household = [n for n in loaded_county.nodes if n.level == "household"][500]
    chief = await committed_user(fresh_database, role=None, phone=current_chief_phone(loaded_county, household.code))
    leader = await committed_user(fresh_database, role="leader", phone="19800000004")
    p = household.geom.point_on_surface()
    # Two server processes with the default pool (10 connections each), as `make run` has.
    with server(fresh_database, workers=2) as srv:
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
        async with httpx.AsyncClient(base_url=srv.base, timeout=60, limits=limits) as http:
            report = {"lon": p.x, "lat": p.y, "category": "neighbours", "severity": 1, "description": "突发"}
            requests = []
            for i in range(300):
                if i % 3 == 0:
                    requests.append(http.get("/api/v1/grid/locate", params={"lon": p.x, "lat": p.y},
                                             headers=bearer(leader)))  # fmt: skip
                elif i % 3 == 1:
                    requests.append(http.post("/api/v1/reports", json=report, headers=bearer(chief) | {
                        "Idempotency-Key": f"00000000-0000-4000-8000-{i:012d}"}))  # fmt: skip
                else:
                    requests.append(http.get("/api/v1/me/tasks", headers=bearer(chief)))
            answers = await asyncio.gather(*requests)  # one burst, not a loop
    statuses = sorted({r.status_code for r in answers})
    assert all(200 <= r.status_code < 300 for r in answers), (
        statuses,
        [r.text for r in answers if r.status_code >= 300][:3],
    )
    async with await connect(libpq_url(fresh_database)) as conn:
        assert await fetch_value(conn, "SELECT count(*) FROM case_file") == 100


class Outage:
    """A TCP proxy between the server and PostgreSQL that the test can cut and mend."""

    def __init__(self, target_port: int) -> None:
        self.target_port, self.port = target_port, free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """The database goes away: no new connections, and every open one breaks."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._pipes):
            writer.transport.abort()
        self._pipes.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._pipes |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def outage_proxy(url: str) -> AsyncIterator[tuple[Outage, str]]:
    target = make_url(sqlalchemy_url(url))
    proxy = Outage(int(target.port or 5432))
    await proxy.start()
    try:
        yield proxy, target.set(port=proxy.port).render_as_string(hide_password=False)
    finally:
        with contextlib.suppress(Exception):
            await proxy.cut()


# Long enough for psycopg_pool's own reconnection to back off far (1, 2, 4, 8, 16 s:
# its next try would come about 15 s after the database is back).
OUTAGE_S = 16
# The service tries the database once a second (app.db.PROBE_INTERVAL_S); this leaves room
# for a loaded machine while staying well short of the pool's back-off.
RECOVERY_S = 8


async def test_a_database_outage_is_503_with_retry_after_and_the_service_recovers_alone(fresh_database):
    admin = await committed_user(fresh_database, role="admin", phone="19800000005")
    async with outage_proxy(fresh_database) as (proxy, proxied_url), httpx.AsyncClient(timeout=30) as http:
        with server(proxied_url, env={"WUZHANG_DB_POOL_TIMEOUT_S": "2"}, wait=False) as srv:
            await asyncio.to_thread(wait_ready, srv.base)
            assert (await http.get(f"{srv.base}/api/v1/me", headers=bearer(admin))).status_code == 200
            await proxy.cut()
            cut_at = time.monotonic()
            answers = 0
            while time.monotonic() - cut_at < OUTAGE_S:
                r = await http.get(f"{srv.base}/api/v1/grid/nodes/610827", headers=bearer(admin))
                assert r.status_code == 503, r.text
                assert int(r.headers["retry-after"]) > 0
                assert set(r.json()["error"]) == {"code", "message", "details"}
                # Unreachable, said at once: not "busy" after waiting out the pool's timeout.
                assert r.json()["error"]["code"] == "database_unavailable", r.text
                answers += 1
                await asyncio.sleep(0.5)
            assert answers > OUTAGE_S  # each answered well within the pool's 2 s timeout
            ready = await http.get(f"{srv.base}/readyz")
            assert ready.status_code == 503
            await proxy.start()  # the database is back; the API is not restarted
            back_at = time.monotonic()
            while (
                r := await http.get(f"{srv.base}/api/v1/grid/nodes/610827", headers=bearer(admin))
            ).status_code != 200:
                assert r.status_code == 503, r.text
                assert time.monotonic() - back_at < RECOVERY_S, "the service did not come back with its database"
                await asyncio.sleep(0.2)
            assert r.json()["id"] == "610827"
            # The listening connection comes back too, so the caches are trusted again.
            await asyncio.to_thread(wait_ready, srv.base, timeout_s=30)


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw_post(port: int, path: str, headers: dict[str, str], body_chunks: list[bytes]) -> bytes:
    """POST with exactly these headers and body bytes; the server's answer (it may answer early)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode())
        with contextlib.suppress(OSError):  # the server may close before the last chunk
            for chunk in body_chunks:
                s.sendall(chunk)
        answer = b""
        with contextlib.suppress(OSError):
            while data := s.recv(65536):
                answer += data
                if b"\r\n\r\n" in answer and answer.count(b"}") >= 3:
                    break
        return answer


async def test_a_10_mib_json_body_is_413_without_being_read(fresh_database):
    token = await committed_user(fresh_database, role="leader", phone="19800000006")
    ten_mib = 10 * 1024 * 1024
    with server(fresh_database) as srv:  # one process: uvicorn serves from the `serve` process itself
        before = vm_rss_kib(srv.process.pid)
        body = b'{"description": "' + b"x" * (ten_mib - 40) + b'"}'
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), "Idempotency-Key":
                   "00000000-0000-4000-8000-000000000001"} | bearer(token)  # fmt: skip
        answer = await asyncio.to_thread(raw_post, srv.port, "/api/v1/reports", headers,
                                         [body[i : i + 65536] for i in range(0, len(body), 65536)])  # fmt: skip
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b'"payload_too_large"' in answer and b"WUZHANG_JSON_MAX_BYTES" in answer
        # Without a token too: the size is checked before the login.
        anonymous = await asyncio.to_thread(raw_post, srv.port, "/api/v1/reports", {
            "Content-Type": "application/json", "Content-Length": str(300 * 1024 * 1024)}, [])  # fmt: skip
        assert anonymous.startswith(b"HTTP/1.1 413")
        # A chunked body (no Content-Length) is counted as it comes, and refused past the limit.
        chunk = b"x" * 65536
        chunked = await asyncio.to_thread(raw_post, srv.port, "/api/v1/reports", {
            "Content-Type": "application/json", "Transfer-Encoding": "chunked"} | bearer(token),
            [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 160 + [b"0\r\n\r\n"])  # fmt: skip
        assert chunked.startswith(b"HTTP/1.1 413"), chunked[:200]
        after = vm_rss_kib(srv.process.pid)
        assert after - before < 4 * 1024, f"the server grew by {(after - before) // 1024} MiB"
