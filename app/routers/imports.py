"""Admin: boundary and roster imports and exports over HTTP (the same use cases as the CLI).

For the county IT administrator only (`AdminDep`); every import and export is on the
audit log. An import runs on a connection of its own, not one of the pool's (it can
take a minute on a large county), and file reading and writing happen in threads, so
the server keeps answering everyone else meanwhile.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from app import schemas
from app.accounts import service as accounts
from app.accounts.scope import Principal
from app.deps import AdminDep, SessionDep, SettingsDep
from geo.exceptions import UnsupportedFormat
from geo.importer import SUFFIXES, parse_field_map, read_boundaries
from grid import service
from grid.db import Conn
from grid.exceptions import ImportRefused
from grid.imports import import_boundaries
from grid.roster import export_roster, import_roster, read_roster, write_error_workbook

router = APIRouter(prefix="/api/v1/grid", tags=["admin: boundaries"])

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.ErrorOut, "description": "no such node"},
    413: {"model": schemas.ErrorOut, "description": "the file is larger than WUZHANG_IMPORT_MAX_BYTES"},
    415: {"model": schemas.ErrorOut, "description": "not GeoJSON, GeoPackage or a zipped Shapefile"},
    422: {"model": schemas.ErrorOut, "description": "the file has errors: details.report lists them; nothing written"},
    503: {"model": schemas.ErrorOut, "description": "the database is unreachable; see Retry-After"},
}
CHUNK = 1 << 20
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _save_upload(upload: UploadFile, path: Path, limit: int) -> None:
    """Copy the upload to `path`, refusing it past `limit` bytes (WUZHANG_IMPORT_MAX_BYTES). In a thread."""
    name = Path(upload.filename or "upload").name
    size = 0
    upload.file.seek(0)
    with path.open("wb") as out:
        while chunk := upload.file.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise HTTPException(
                    413, f"{name} 太大：最多 {limit:,} 字节（WUZHANG_IMPORT_MAX_BYTES），请拆分后再导入"
                )
            out.write(chunk)


def _boundary_path(upload: UploadFile, folder: Path) -> Path:
    name = Path(upload.filename or "upload").name
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES or suffix == ".shp":
        raise UnsupportedFormat(
            f"{name}：不支持这种文件格式；请上传 .geojson、.json、.gpkg，或把 Shapefile 打包成 .zip"
            "（含 .shp、.shx、.dbf 和 .prj）",
            file=name,
        )
    return folder / f"upload{suffix}"


async def _audit(conn: Conn, caller: Principal, action: str, target: str | None,
                 details: dict[str, Any] | None = None) -> None:  # fmt: skip
    """Every admin action is on the audit log."""
    await accounts.record(conn=conn, county_code=caller.county_code, actor_user_id=caller.user_id, action=action,
                          target=target, ip=caller.ip, details=details)  # fmt: skip


@router.post("/imports", responses=ERRORS)
async def create_import(
    request: Request,
    caller: AdminDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="GeoJSON, GeoPackage, or a Shapefile zipped with its .prj")],
    dry_run: Annotated[bool, Form(description="validate and count, write nothing")] = False,
    make_valid: Annotated[bool, Form(description="repair invalid polygons with ST_MakeValid")] = False,
    retire_missing: Annotated[bool, Form(description="retire stored nodes of the file's subtrees it lacks")] = False,
    from_gcj02: Annotated[bool, Form(description="the file's coordinates are GCJ-02 (AMap, Tencent)")] = False,
    tolerance_m: Annotated[float, Form(gt=0, le=1000, description="metres")] = 1.0,
    field_map: Annotated[list[str] | None, Form(alias="map", description="SOURCE=TARGET field renames")] = None,
) -> dict[str, Any]:
    """Import a boundary file: the report of `wuzhang grid import`, as JSON.

    With any error the answer is 422 `import_refused`, the report is in
    `error.details.report`, and nothing is written.
    """
    folder = Path(tempfile.mkdtemp(prefix="wuzhang-import-"))
    try:
        path = _boundary_path(file, folder)
        await asyncio.to_thread(_save_upload, file, path, settings.import_max_bytes)
        t0 = time.perf_counter()
        boundary = await asyncio.to_thread(read_boundaries, path, field_map=parse_field_map(field_map),
                                           from_gcj02=from_gcj02, name=Path(file.filename or "upload").name)  # fmt: skip
        read_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    source = Path(file.filename or "upload").name
    async with request.app.state.db.dedicated() as conn, conn.transaction() as tx:
        report = await import_boundaries(
            conn=conn, county_code=caller.county_code, records=boundary.records, source=source, crs=boundary.crs,
            tolerance_m=tolerance_m, make_valid=make_valid, retire_missing=retire_missing, dry_run=dry_run,
        )  # fmt: skip
        report.timings = {"reading": read_s, **report.timings}
        if not report.ok:
            raise psycopg.Rollback(tx)  # nothing written; the report says why
        await _audit(conn, caller, "admin.grid_import", report.source, {"dry_run": dry_run, "written": not dry_run})
    if not report.ok:
        raise ImportRefused(
            f"{report.source}：有 {len(report.errors)} 处错误，未写入任何数据；第一处：{report.errors[0].message}",
            report=report.to_dict(),
        )
    return report.to_dict()


@router.get("/nodes/{code}/export", responses={**ERRORS, 200: {"content": {
    "application/geopackage+sqlite3": {}, "application/geo+json": {}}}}, response_class=Response)  # fmt: skip
async def export_subtree(
    code: str,
    caller: AdminDep,
    conn: SessionDep,
    format: Annotated[str, Query(pattern="^(gpkg|geojson)$", description="gpkg or geojson")] = "geojson",
) -> Response:
    """Download the live subtree under `code` (WGS-84, full precision)."""
    await service.node_brief(conn=conn, code=code, counties=(caller.county_code,))
    await _audit(conn, caller, "admin.grid_export", code, {"format": format})
    if format == "gpkg":
        folder = Path(tempfile.mkdtemp(prefix="wuzhang-export-"))
        path = folder / f"{code}.gpkg"
        await service.export_gpkg(conn=conn, code=code, path=path)
        return FileResponse(
            path, media_type="application/geopackage+sqlite3", filename=f"{code}.gpkg",
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )  # fmt: skip
    buffer = io.StringIO()
    await service.export_geojson(conn=conn, code=code, out=buffer)
    return Response(buffer.getvalue().encode(), media_type="application/geo+json",
                    headers={"Content-Disposition": f'attachment; filename="{code}.geojson"'})  # fmt: skip


roster_router = APIRouter(prefix="/api/v1/roster", tags=["admin: roster"])


@roster_router.post("/imports", responses={**ERRORS, 200: {"content": {"application/json": {}, XLSX: {}}}})
async def create_roster_import(
    request: Request,
    caller: AdminDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description=".xlsx or .csv: node_code, role, name, phone, start_date")],
    strict: Annotated[bool, Form(description="import nothing if any row is bad")] = False,
    dry_run: Annotated[bool, Form(description="check and count, write nothing")] = False,
    errors: Annotated[
        str, Form(pattern="^(json|xlsx)$", description="json report, or the rows as .xlsx with an error column")
    ] = "json",
) -> Any:
    """Import posts. Good rows are imported and bad ones reported by row number, unless
    `strict` (then a bad row means 422 and nothing written). A new chief is a handover."""
    name = Path(file.filename or "roster").name
    suffix = Path(name).suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise UnsupportedFormat(f"{name}：名册应为 .xlsx 或 .csv 文件", file=name)
    folder = Path(tempfile.mkdtemp(prefix="wuzhang-roster-"))
    try:
        path = folder / f"roster{suffix}"
        await asyncio.to_thread(_save_upload, file, path, settings.import_max_bytes)
        rows = await asyncio.to_thread(read_roster, path, name=name, max_rows=settings.import_max_rows)
        async with request.app.state.db.dedicated() as conn:
            report = await import_roster(conn=conn, county_code=caller.county_code, rows=rows, source=name,
                                         strict=strict, dry_run=dry_run)  # fmt: skip
            await _audit(conn, caller, "admin.roster_import", name, {"strict": strict, "dry_run": dry_run})
        if errors == "xlsx":
            book = folder / "errors.xlsx"
            await asyncio.to_thread(write_error_workbook, rows, report.errors, book)
            return Response(book.read_bytes(), media_type=XLSX, headers={
                "Content-Disposition": f'attachment; filename="{Path(name).stem}-errors.xlsx"',
                "X-Roster-Errors": str(len(report.errors))})  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if strict and report.errors:
        raise ImportRefused(
            f"{name}：有 {len(report.errors)} 行有错，按严格模式未导入任何一行；请改正后重新导入",
            report=report.to_dict(),
        )
    return report.to_dict()


@roster_router.get("/export", responses={**ERRORS, 200: {"content": {XLSX: {}}}}, response_class=Response)
async def export_roster_xlsx(
    caller: AdminDep,
    conn: SessionDep,
    code: Annotated[str, Query(description="root of the subtree")],
) -> Response:
    """The current posts under `code` as .xlsx, in the columns the roster import reads."""
    folder = Path(tempfile.mkdtemp(prefix="wuzhang-roster-"))
    path = folder / f"{code}-roster.xlsx"
    try:
        await export_roster(conn=conn, code=code, path=path, counties=(caller.county_code,))
        await _audit(conn, caller, "admin.roster_export", code)  # names and phones leave the system: on the record
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(path, filename=path.name, media_type=XLSX,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))  # fmt: skip
