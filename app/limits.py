"""What is refused at the door, before any routing, login or body reading.

A pure ASGI middleware, outermost but for error handling (it costs a request nothing
measurable, where a FastAPI dependency on every route would cost a little each time):

- a body larger than its route allows: a declared Content-Length over the limit is
  answered 413 at once and the body is never read (the server's memory does not grow by
  it); a body without one (chunked) is counted as it arrives and refused as soon as it
  passes the limit;
- a NUL character in the path or a query parameter (PostgreSQL text cannot hold one):
  422, rather than a failure deep inside;
- a JSON or urlencoded form body holding a string PostgreSQL cannot store (a NUL, a
  lone surrogate): read whole (it is small: `json_max_bytes` at most), checked once
  (app.inputs), and answered 422 naming the field, before any route sees it.

Uploads have limits of their own (a photo, a boundary or roster file); every other
body, JSON or form, gets `json_max_bytes` (256 KiB by default).
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.inputs import body_text_problems, where_zh
from app.settings import Settings

# Room for the multipart envelope around an uploaded file.
MULTIPART_OVERHEAD = 64 * 1024
# A photo, or the scan of a signed mediation agreement.
_ATTACHMENT = re.compile(r"^/api/v1/(reports/[^/]+/attachments|cases/[^/]+/agreement/signed)$")
_IMPORTS = ("/api/v1/grid/imports", "/api/v1/roster/imports")


def _text_body(content_type: bytes) -> bool:
    """A body whose strings are checked at the door: JSON (FastAPI reads a body without a
    content type, or of any application/...+json, as JSON too) and urlencoded forms.
    Multipart uploads carry files, not text fields that reach the database."""
    media = content_type.partition(b";")[0].strip()
    return (media in (b"", b"application/json", b"application/x-www-form-urlencoded")
            or (media.startswith(b"application/") and media.endswith(b"+json")))  # fmt: skip


def body_limit(settings: Settings, path: str) -> tuple[int, str]:
    """The most bytes a request body to `path` may have, and the setting that says so."""
    if _ATTACHMENT.match(path):
        return settings.attachment_max_bytes + MULTIPART_OVERHEAD, "WUZHANG_ATTACHMENT_MAX_BYTES"
    if path in _IMPORTS:
        return settings.import_max_bytes + MULTIPART_OVERHEAD, "WUZHANG_IMPORT_MAX_BYTES"
    return settings.json_max_bytes, "WUZHANG_JSON_MAX_BYTES"


def _message(limit: int, setting: str) -> str:
    size = f"{limit / 2**20:.1f} MB" if limit >= 2**20 else f"{limit / 2**10:.0f} KB"
    return f"提交的内容太大：最多 {size}（{limit:,} 字节，{setting}）；请减少内容或压缩文件后重试"


NUL_MESSAGE = "网址或查询参数含有 NUL 字符（\\x00），请删除后重试"


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = body_limit(self.settings, scope["path"])
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        has_body = declared not in (None, b"0") or any(k == b"transfer-encoding" for k, _ in scope["headers"])
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            await _answer(send, 422, "invalid_input", NUL_MESSAGE, {}, close=has_body)
            return
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _answer(send, 413, "payload_too_large", _message(limit, setting), {"limit": limit})
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the body read: FastAPI passes HTTPException on, and the
                    # app's error handler answers 413 in the one error shape.
                    raise HTTPException(413, _message(limit, setting))
            return message

        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"").lower()
        if not has_body or not _text_body(content_type):
            await self.app(scope, counting_receive, send)
            return
        try:
            body = await _read_body(counting_receive)
        except HTTPException:
            await _answer(send, 413, "payload_too_large", _message(limit, setting), {"limit": limit})
            return
        if body is None:  # the client went away before its body was complete
            return
        problems = body_text_problems(content_type.decode("latin-1") or "application/json", body)
        if problems:
            message = "；".join(
                f"{where_zh('body', [p['field']] if p['field'] else [])}：{p['problem']}" for p in problems[:5]
            )
            await _answer(send, 422, "invalid_request", message, {"errors": problems}, close=False)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, handed to the app as one message; then the real channel
    (which tells the app when the client disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, status: int, code: str, message: str, details: dict[str, Any], *,
                  close: bool = True) -> None:  # fmt: skip
    """An error in the one shape, sent before the app has seen the request. `close` when
    the body was not read: the connection cannot carry another request after it."""
    body = json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
