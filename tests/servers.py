"""Real server processes for tests: `wuzhang serve` on a free port, against a database of the test's own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from tests.conftest import TEST_JWT_SECRET, app_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def wait_ready(base: str, *, timeout_s: float = 60, listening: bool = True) -> None:
    """Until /readyz answers 200 (and, with `listening`, the process hears NOTIFY)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base}/readyz", timeout=2)
            last = r.text
            if r.status_code == 200 and (not listening or r.json().get("listening")):
                return
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise AssertionError(f"{base} did not become ready: {last}")


@contextmanager
def server(database_url: str, *, workers: int = 1, env: dict[str, str] | None = None,
           wait: bool = True) -> Iterator[Server]:  # fmt: skip
    """`wuzhang serve --no-with-worker` in a subprocess; stopped (TERM, then KILL) at the end."""
    port = free_port()
    # The service connects as its own role, as in production (tests/conftest.py, app_url).
    environ = {**os.environ, "DATABASE_URL": app_url(database_url), "WUZHANG_JWT_SECRET": TEST_JWT_SECRET,
               "WUZHANG_ARGON2_TIME_COST": "1", "WUZHANG_ARGON2_MEMORY_KIB": "8", **(env or {})}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--no-with-worker", "--workers", str(workers), "--port", str(port)],
        env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    srv = Server(process, port)
    try:
        if wait:
            wait_ready(srv.base)
        yield srv
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
