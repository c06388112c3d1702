"""Security headers on every response, from one pure ASGI middleware.

- Every response: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
  `X-Frame-Options: DENY`, and a Content-Security-Policy that allows nothing
  (`default-src 'none'; frame-ancestors 'none'`) unless the route sent its own: the HTML
  pages (/map, /docs, /redoc) send one that lets them load their own files, and only those.
- Everything under /api/ is `Cache-Control: no-store` (most of it carries names and
  phone numbers, and a proxy or the browser's disk must not keep it), unless the route
  set its own Cache-Control, as the GeoJSON and tile routes do with ETags.

Headers a route set are kept as they are: the middleware only adds what is missing.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    # A JSON answer, a tile or a script needs no rights at all in a browser.
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
NO_STORE_PREFIX = "/api/"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope["path"].startswith(NO_STORE_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    if name not in headers:
                        headers[name] = value
                if no_store and "cache-control" not in headers:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def origin_of(url: str) -> str | None:
    """The scheme://host[:port] of a URL template, or None when it is not http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def inline_script_hashes(html: str) -> list[str]:
    """CSP sources ('sha256-...') for the inline <script> blocks of a page we generate, so
    the page's own bootstrap runs and no other inline script can."""
    bodies = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in bodies]


def page_csp(*, scripts: Iterable[str] = (), images: Iterable[str] = (), connect: Iterable[str] = (),
             workers: bool = False, inline_styles: bool = False) -> str:  # fmt: skip
    """The Content-Security-Policy of one of our HTML pages: its own origin only, plus
    what the page's library needs (named by the caller, each for a reason)."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *scripts],
        "style-src": ["'self'", *(["'unsafe-inline'"] if inline_styles else [])],
        "img-src": ["'self'", "data:", "blob:", *images],
        "connect-src": ["'self'", *connect],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    if workers:
        directives["worker-src"] = ["'self'", "blob:"]
        directives["child-src"] = ["'self'", "blob:"]
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())
