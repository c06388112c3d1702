"""The dispatcher's web page at /map, and the static files it needs, all served here.

The page must work on an intranet with no internet (ARCHITECTURE.md, decision 6): the
MapLibre GL JS bundle comes from node_modules (installed by `scripts/dev.sh web`) and is
served under /static/vendor/maplibre-gl/, never from a CDN. So are the labels' glyphs.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.errors import error_body
from app.settings import PROJECT_ROOT

STATIC = PROJECT_ROOT / "app" / "static"
MAPLIBRE_DIST = PROJECT_ROOT / "node_modules" / "maplibre-gl" / "dist"
# Label glyphs (SDF PBFs), built from Debian's DejaVu Sans by `scripts/dev.sh web`.
GLYPHS = PROJECT_ROOT / ".web" / "glyphs"
# The one font stack the map's style names (text-font in map.js).
FONTSTACKS = frozenset({"DejaVu Sans Book"})
GLYPH_RANGE = re.compile(r"(\d{1,5})-(\d{1,5})")

router = APIRouter(tags=["web"])


@router.get("/map", include_in_schema=False)
async def map_page() -> FileResponse:
    return FileResponse(STATIC / "map" / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/map/", include_in_schema=False)
async def map_slash() -> RedirectResponse:
    return RedirectResponse("/map")


@router.get("/map/config.json", include_in_schema=False)
async def map_config(request: Request) -> JSONResponse:
    """What the page needs before login: the optional base map (none by default)."""
    s = request.app.state.settings
    return JSONResponse({"basemap_url": s.map_basemap_url or None, "basemap_attribution": s.map_basemap_attribution,
                         "county_name": s.county_name})  # fmt: skip


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
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
