"""Issue 11, finding 12: security headers on every answer, `no-store` on the API's JSON,
and /docs and /redoc built from this app's own files (no CDN, no Google fonts).

The browser side (the pages render under their CSP, with no request to any other host)
is in tests/e2e/test_map_page.py."""

from __future__ import annotations

import re

import pytest

from app.main import create_app
from tests.conftest import asgi_client, settings_for_tests

ALWAYS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


def _directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}


async def test_every_answer_carries_the_security_headers(api, demo_nodes):
    answers = {
        "json": await api.get(f"/api/v1/grid/nodes/{demo_nodes.village}"),
        "health": await api.get("/healthz"),
        "page": await api.get("/map"),
        "static": await api.get("/static/map/map.js"),
        "refused": await api.get("/api/v1/grid/nodes?parent=%00"),  # answered at the door
        "not found": await api.get("/no/such/page"),
        "not logged in": await api.get("/api/v1/cases", headers={"Authorization": ""}),
    }
    for name, r in answers.items():
        for header, value in ALWAYS.items():
            assert r.headers.get(header) == value, (name, header, r.headers)
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], name
    # Anything that is not one of our pages may not load or run anything at all.
    assert answers["json"].headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


async def test_api_json_is_not_stored_but_tiles_keep_their_own_caching(api, demo_nodes):
    for url in (f"/api/v1/grid/nodes/{demo_nodes.village}", "/api/v1/me", "/api/v1/cases"):
        r = await api.get(url)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store", (url, r.headers)
    refused = await api.get("/api/v1/cases", headers={"Authorization": "Bearer nonsense"})
    assert refused.status_code == 401 and refused.headers["cache-control"] == "no-store"
    tile = await api.get("/tiles/grid/10/824/396.mvt")
    assert tile.status_code in (200, 204) and tile.headers["cache-control"] == "private, no-cache", tile.headers
    assert "etag" in tile.headers


async def test_the_map_page_may_load_only_its_own_files(api):
    r = await api.get("/map")
    assert r.status_code == 200
    csp = _directives(r.headers["content-security-policy"])
    assert csp["default-src"] == ["'self'"] and csp["script-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"] and csp["frame-ancestors"] == ["'none'"]
    assert csp["worker-src"] == ["'self'", "blob:"]  # MapLibre's workers
    assert "'unsafe-inline'" not in csp["style-src"] and "'unsafe-eval'" not in csp["script-src"]


async def test_a_configured_base_map_is_the_one_other_host_the_map_may_ask(db):
    from tests.conftest import SharedConnection

    settings = settings_for_tests(
        "postgresql://unused/x", WUZHANG_MAP_BASEMAP_URL="https://tiles.example.cn/{z}/{x}/{y}.png"
    )
    app = create_app(settings)
    app.state.db = SharedConnection(db)
    async with asgi_client(app) as c:
        csp = _directives((await c.get("/map")).headers["content-security-policy"])
    assert csp["connect-src"] == ["'self'", "https://tiles.example.cn"]
    assert csp["img-src"] == ["'self'", "data:", "blob:", "https://tiles.example.cn"]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_pages_reference_no_outside_host(api, path):
    r = await api.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.findall(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html), html  # every URL is the app's own
    assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(ref.startswith("/") for ref in refs), refs
    for ref in refs:  # and each file is really there
        asset = await api.get(ref)
        assert asset.status_code == 200 and len(asset.content) > 500, (ref, asset.status_code)
    csp = _directives(r.headers["content-security-policy"])
    assert csp["default-src"] == ["'self'"] and csp["connect-src"] == ["'self'"]
    assert all(s == "'self'" or s.startswith("'sha256-") for s in csp["script-src"]), csp["script-src"]
    assert (await api.get("/docs/oauth2-redirect")).status_code == 404  # the password flow needs none
