"""Hostile input against a real server (issue 11, findings 3 and 10): the connection
survives a refused request, simultaneous creates of one phone are one 201 and 409s, and
huge bodies are refused before they are read, with or without a login."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import httpx
import pytest

from app.settings import libpq_url
from grid.db import connect, fetch_value
from tests.e2e.test_request_path import bearer, committed_user, vm_rss_kib
from tests.servers import server

pytestmark = pytest.mark.slow


def _read_response(s: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response with a Content-Length: its head and its body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"the server closed the connection (after {data[:80]!r})")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-body")
        body += chunk
    return head, body


def _request(method: str, path: str, token: str, body: bytes = b"") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip


async def test_after_a_refused_request_the_same_connection_serves_the_next(fresh_database):
    token = await committed_user(fresh_database, role="admin", phone="19800000011")
    bad = json.dumps({"phone": "13700000002", "name": "王\x00五"}).encode()
    with server(fresh_database) as srv, socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        # Before, this one was a 500: the server dropped the connection after it, and the
        # client's next request on it was reset.
        s.sendall(_request("POST", "/api/v1/admin/users", token, bad))
        head, body = await asyncio.to_thread(_read_response, s)
        assert head.startswith(b"HTTP/1.1 422"), head
        assert b"connection: close" not in head.lower()
        assert "字段“name”" in json.loads(body)["error"]["message"]
        s.sendall(_request("GET", "/api/v1/admin/users?limit=5", token))
        head, body = await asyncio.to_thread(_read_response, s)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert json.loads(body)["items"]


async def test_eight_simultaneous_creates_of_one_phone_are_one_201_and_seven_409(fresh_database):
    token = await committed_user(fresh_database, role="admin", phone="19800000012")
    body = {"phone": "13700000003", "name": "赵六", "password": "a-long-enough-password"}
    with server(fresh_database) as srv:
        async with httpx.AsyncClient(base_url=srv.base, headers=bearer(token), timeout=30) as client:
            answers = await asyncio.gather(*[client.post("/api/v1/admin/users", json=body) for _ in range(8)])
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * 7, [r.text for r in answers]
    assert all(r.json()["error"]["message"] for r in answers if r.status_code == 409)
    async with await connect(libpq_url(fresh_database)) as conn:
        assert await fetch_value(conn, "SELECT count(*) FROM user_account WHERE phone = '13700000003'") == 1


def _stream_until_answered(port: int, headers: dict[str, str], total: int, chunked: bool) -> tuple[int, bytes]:
    """Send up to `total` body bytes; stop as soon as the server answers or closes.
    Returns the bytes sent and the answer."""
    head = "POST /api/v1/reports HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    piece = b"x" * (1 << 20)
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall((head + "\r\n").encode())
        s.setblocking(False)
        with contextlib.suppress(OSError):
            while sent < total:
                with contextlib.suppress(BlockingIOError):
                    answer += s.recv(65536)
                    if answer:
                        break
                data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
                try:
                    sent += s.send(data)
                except BlockingIOError:
                    time.sleep(0.01)
        s.setblocking(True)
        s.settimeout(10)
        with contextlib.suppress(OSError):
            while b"}}" not in answer and (data := s.recv(65536)):
                answer += data
    return sent, answer


async def test_a_300_mb_body_without_a_token_and_50_mb_with_one_are_refused_unread(fresh_database):
    token = await committed_user(fresh_database, role="leader", phone="19800000013")
    mb = 1 << 20
    with server(fresh_database) as srv:
        before = vm_rss_kib(srv.process.pid)
        for headers, total, chunked in (
            ({"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, 300 * mb, True),
            ({"Content-Type": "application/json", "Content-Length": str(300 * mb)}, 300 * mb, False),
            ({"Content-Type": "application/json", "Content-Length": str(50 * mb)} | bearer(token), 50 * mb, False),
            ({"Content-Type": "application/json", "Transfer-Encoding": "chunked"} | bearer(token), 50 * mb, True),
        ):
            sent, answer = await asyncio.to_thread(_stream_until_answered, srv.port, headers, total, chunked)
            assert answer.startswith(b"HTTP/1.1 413"), (headers, answer[:200])
            assert b"WUZHANG_JSON_MAX_BYTES" in answer
            # The answer came long before the upload could have finished.
            assert sent < total // 4, f"{sent // mb} MiB of {total // mb} sent before the answer"
        grown = vm_rss_kib(srv.process.pid) - before
        assert grown < 8 * 1024, f"the server grew by {grown // 1024} MiB"
