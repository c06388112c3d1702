"""A fake FCM HTTP v1 server on 127.0.0.1, so the real firebase-admin code path runs offline.

It serves the OAuth token endpoint (`POST /token`, thread-safe: the library refreshes
without a lock) and `POST /v1/projects/{p}/messages:send`. What a send answers is up to
`answer(token, n)`, where n counts that token's sends from 1; the default accepts.
Error bodies have the FCM v1 shape (`{"error": {"code", "message", "status", "details"}}`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PROJECT = "wuzhang-test"


@dataclass
class Answer:
    status: int = 200
    code: str | None = None  # the FcmError errorCode, or a status for INVALID_ARGUMENT
    headers: dict[str, str] = field(default_factory=dict)
    token_field: bool = False  # INVALID_ARGUMENT: does a field violation name message.token?


OK = Answer()
STATUS_OF = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
             429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip


def error_body(a: Answer) -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    if a.code and a.code != "INVALID_ARGUMENT":
        details.append({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": a.code})
    if a.token_field:
        details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": "message.token",
                                             "description": "The registration token is not a valid FCM registration token"}]})  # fmt: skip
    return {"error": {"code": a.status, "message": f"fake {a.code}", "status": STATUS_OF.get(a.status, "UNKNOWN"),
                      "details": details}}  # fmt: skip


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # send_each opens up to 500 connections at once
    daemon_threads = True


_KEY: list[str] = []


def _private_key_pem() -> str:
    """One RSA key per test run: making one takes a while, and any key will do."""
    if not _KEY:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _KEY.append(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode())  # fmt: skip
    return _KEY[0]


class FakeFcm:
    def __init__(self, answer: Callable[[str, int], Answer] | None = None, delay_s: float = 0.0) -> None:
        self.answer = answer or (lambda token, n: OK)
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []  # every send received, accepted or not
        self.accepted: list[dict[str, Any]] = []
        self.token_requests = 0
        self._per_token: dict[str, int] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/token":
                    with fake.lock:
                        fake.token_requests += 1
                    self._reply(200, {"access_token": "fake-access-token", "expires_in": 3600, "token_type": "Bearer"})
                    return
                if not (self.path.startswith("/v1/projects/") and self.path.endswith("/messages:send")):
                    self._reply(404, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}})
                    return
                if self.headers.get("Authorization") != "Bearer fake-access-token":
                    self._reply(401, {"error": {"code": 401, "message": "no token", "status": "UNAUTHENTICATED"}})
                    return
                message = json.loads(raw)["message"]
                token = message.get("token", "")
                with fake.lock:
                    fake.messages.append(message)
                    n = fake._per_token[token] = fake._per_token.get(token, 0) + 1
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                a = fake.answer(token, n)
                if a.status == 200:
                    with fake.lock:
                        fake.accepted.append(message)
                    self._reply(200, {"name": f"projects/{PROJECT}/messages/{len(fake.accepted)}"})
                else:
                    self._reply(a.status, error_body(a), a.headers)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.send_url = self.url + "/v1/projects/{0}/messages:send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeFcm:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def service_account(self) -> dict[str, Any]:
        """A service account of our own making: an RSA key, and a token_uri on this server."""
        pem = _private_key_pem()
        return {"type": "service_account", "project_id": PROJECT, "private_key_id": "fake", "private_key": pem,
                "client_email": f"push@{PROJECT}.iam.gserviceaccount.com", "client_id": "1",
                "token_uri": self.url + "/token"}  # fmt: skip

    def write_service_account(self, path: Path) -> Path:
        path.write_text(json.dumps(self.service_account()))
        return path

    def notification_ids(self, accepted_only: bool = True) -> list[int]:
        with self.lock:
            source = self.accepted if accepted_only else self.messages
            return [int(m["data"]["notification_id"]) for m in source]
