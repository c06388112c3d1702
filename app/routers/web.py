"""The dispatcher's web page at /map, and the static files it needs, all served here.

The page must work on an intranet with no internet (ARCHITECTURE.md, decision 6): the
MapLibre GL JS bundle comes from node_modules (installed by `scripts/dev.sh web`) and is
served under /static/vendor/maplibre-gl/, never from a CDN.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.settings import PROJECT_ROOT

STATIC = PROJECT_ROOT / "app" / "static"
MAPLIBRE_DIST = PROJECT_ROOT / "node_modules" / "maplibre-gl" / "dist"

router = APIRouter(tags=["web"])


@router.get("/map", include_in_schema=False)
async def map_page() -> FileResponse:
    return FileResponse(STATIC / "map" / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/map/", include_in_schema=False)
async def map_slash() -> RedirectResponse:
    return RedirectResponse("/map")


@router.get("/map/config.json", include_in_schema=False)
async def map_config(request: Request) -> JSONResponse:
    """What the page needs before login: the optional base map (none by default), and
    the county's time zone, in which the page shows every time."""
    s = request.app.state.settings
    return JSONResponse({"basemap_url": s.map_basemap_url or None, "basemap_attribution": s.map_basemap_attribution,
                         "county_name": s.county_name, "time_zone": s.time_zone})  # fmt: skip


@router.get("/map/glyphs/{fontstack}/{glyph_range}.pbf", include_in_schema=False)
async def glyphs(fontstack: str, glyph_range: str) -> Response:
    """An empty glyph set. MapLibre needs a glyphs URL to draw labels at all; with none
    from here, it draws the Chinese names with the browser's own fonts
    (localIdeographFontFamily), and no font server outside is ever asked."""
    return Response(b"", media_type="application/x-protobuf", headers={"Cache-Control": "public, max-age=86400"})


def mount_static(app: FastAPI) -> None:
    # check_dir=False: the API still starts before `npm ci` has run; the page then says so.
    app.mount("/static/vendor/maplibre-gl", StaticFiles(directory=MAPLIBRE_DIST, check_dir=False), name="maplibre")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
