"""The dispatcher's web page at /map, the leaders' dashboard at /dashboard and their desk at
/leader, the API's pages /docs and /redoc, and the static files they need, all served here.

The pages must work on an intranet with no internet: MapLibre GL JS, Apache ECharts,
Swagger UI and Redoc come from node_modules (installed by `scripts/dev.sh web`) and are served under
/static/vendor/, never from a CDN; so are the map labels' glyphs. Each page sends a
Content-Security-Policy that lets it load only this app's files (app/headers.py).
"""

from __future__ import annotations

import re

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.errors import error_body
from app.headers import inline_script_hashes, origin_of, page_csp
from app.settings import PROJECT_ROOT

STATIC = PROJECT_ROOT / "app" / "static"
NODE_MODULES = PROJECT_ROOT / "node_modules"
MAPLIBRE_DIST = NODE_MODULES / "maplibre-gl" / "dist"
ECHARTS_DIST = NODE_MODULES / "echarts" / "dist"
SWAGGER_DIST = NODE_MODULES / "swagger-ui-dist"
REDOC_DIST = NODE_MODULES / "redoc" / "bundles"
FAVICON = "/static/vendor/swagger-ui/favicon-32x32.png"
# Label glyphs (SDF PBFs), built from Debian's DejaVu Sans by `scripts/dev.sh web`.
GLYPHS = PROJECT_ROOT / ".web" / "glyphs"
# The one font stack the map's style names (text-font in map.js).
FONTSTACKS = frozenset({"DejaVu Sans Book"})
GLYPH_RANGE = re.compile(r"(\d{1,5})-(\d{1,5})")

router = APIRouter(tags=["web"])


@router.get("/map", include_in_schema=False)
async def map_page(request: Request) -> FileResponse:
    # MapLibre draws in web workers it makes from blob: URLs, and decodes tiles to blob:
    # and data: images; a configured base map is the one outside host the page may ask.
    basemap = origin_of(request.app.state.settings.map_basemap_url)
    outside = [basemap] if basemap else []
    csp = page_csp(images=outside, connect=outside, workers=True)
    return FileResponse(STATIC / "map" / "index.html",
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": csp})  # fmt: skip


@router.get("/dashboard", include_in_schema=False)
async def dashboard_page() -> FileResponse:
    # ECharts draws on a canvas with the page's own script: no worker, no eval, no outside host.
    return FileResponse(STATIC / "dashboard" / "index.html",
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": page_csp()})  # fmt: skip


@router.get("/dashboard/", include_in_schema=False)
async def dashboard_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard")


@router.get("/leader", include_in_schema=False)
async def leader_page() -> FileResponse:
    # 领导工作台: its own script and styles, nothing else (no library, no outside host).
    return FileResponse(STATIC / "leader" / "index.html",
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": page_csp()})  # fmt: skip


@router.get("/leader/", include_in_schema=False)
async def leader_slash() -> RedirectResponse:
    return RedirectResponse("/leader")


def _page(html: HTMLResponse, csp: str) -> HTMLResponse:
    return HTMLResponse(
        bytes(html.body).decode(), headers={"Cache-Control": "no-cache", "Content-Security-Policy": csp}
    )


@router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request) -> HTMLResponse:
    html = get_swagger_ui_html(
        openapi_url=request.app.openapi_url, title=f"{request.app.title} - Swagger UI",
        swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css", swagger_favicon_url=FAVICON,
        oauth2_redirect_url=None,  # the password flow needs no redirect page
    )  # fmt: skip
    # The page's one inline script (SwaggerUIBundle({...})) runs by its hash, no other;
    # Swagger UI sets inline styles of its own.
    scripts = inline_script_hashes(bytes(html.body).decode())
    return _page(html, page_csp(scripts=scripts, inline_styles=True))


@router.get("/redoc", include_in_schema=False)
async def redoc(request: Request) -> HTMLResponse:
    html = get_redoc_html(
        openapi_url=request.app.openapi_url, title=f"{request.app.title} - ReDoc",
        redoc_js_url="/static/vendor/redoc/redoc.standalone.js", redoc_favicon_url=FAVICON, with_google_fonts=False,
    )  # fmt: skip
    # Redoc writes its styles into <style> elements (styled-components) and searches in a
    # web worker it makes from a blob: URL.
    return _page(html, page_csp(inline_styles=True, workers=True))


@router.get("/map/", include_in_schema=False)
async def map_slash() -> RedirectResponse:
    return RedirectResponse("/map")


@router.get("/map/config.json", include_in_schema=False)
async def map_config(request: Request) -> JSONResponse:
    """What the pages (/map, /dashboard) need before login: the optional base map, and
    the county's time zone, in which the page shows every time."""
    s = request.app.state.settings
    return JSONResponse({"basemap_url": s.map_basemap_url or None, "basemap_attribution": s.map_basemap_attribution,
                         "county_name": s.county_name, "time_zone": s.time_zone})  # fmt: skip


@router.get("/map/fonts/{fontstack}/{glyph_range}.pbf", include_in_schema=False)
async def glyphs(fontstack: str, glyph_range: str) -> Response:
    """One range of 256 glyphs for the map's labels: Latin letters, digits and the like.
    Chinese is never asked for here: MapLibre draws it with the browser's own fonts
    (localIdeographFontFamily)."""
    m = GLYPH_RANGE.fullmatch(glyph_range)
    start, end = (int(m[1]), int(m[2])) if m else (-1, -1)
    path = GLYPHS / fontstack / f"{start}-{end}.pbf"
    if fontstack not in FONTSTACKS or start % 256 or end != start + 255 or end > 65535 or not path.is_file():
        # MapLibre then draws these characters with a browser font: labels stay whole.
        message = f"没有字形文件 {fontstack}/{glyph_range}.pbf（地图字形由 scripts/dev.sh web 生成）"
        return JSONResponse(error_body("glyphs_not_found", message), status_code=404)
    return FileResponse(path, media_type="application/x-protobuf", headers={"Cache-Control": "public, max-age=86400"})


def mount_static(app: FastAPI) -> None:
    # check_dir=False: the API still starts before `npm ci` has run; the page then says so.
    app.mount("/static/vendor/maplibre-gl", StaticFiles(directory=MAPLIBRE_DIST, check_dir=False), name="maplibre")
    app.mount("/static/vendor/echarts", StaticFiles(directory=ECHARTS_DIST, check_dir=False), name="echarts")
    app.mount("/static/vendor/swagger-ui", StaticFiles(directory=SWAGGER_DIST, check_dir=False), name="swagger-ui")
    app.mount("/static/vendor/redoc", StaticFiles(directory=REDOC_DIST, check_dir=False), name="redoc")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
