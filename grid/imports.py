"""Use cases: import boundaries from a file, and check what is stored.

Keyword-only, the connection first. One import is one transaction, which the caller
opens and commits: the file is staged in a temporary table, every check runs on it,
and nodes are written only when no check found an error. A dry run writes inside a
savepoint and rolls it back, so its counts are the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Protocol

import psycopg

from grid.db import Conn
from grid.levels import LEVEL_CODES, chain_of_level, child_error, level_name
from grid.repository import staging
from grid.validation import Problem, Report

Step = Callable[[str], None]


class BoundaryLike(Protocol):
    """One feature of a boundary file (geo.importer.BoundaryRecord); read-only is enough."""

    @property
    def row(self) -> int: ...
    @property
    def code(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def level(self) -> str | None: ...
    @property
    def chain(self) -> str | None: ...
    @property
    def parent_code(self) -> str | None: ...
    @property
    def floor_from(self) -> int | None: ...
    @property
    def floor_to(self) -> int | None: ...
    @property
    def wkb(self) -> bytes | None: ...


async def import_boundaries(
    *,
    conn: Conn,
    county_code: str,
    records: Iterable[BoundaryLike],
    source: str,
    crs: str = "EPSG:4326",
    tolerance_m: float = 1.0,
    make_valid: bool = False,
    retire_missing: bool = False,
    dry_run: bool = False,
    on_step: Step | None = None,
) -> Report:
    """Validate a file's nodes and upsert them by code; write nothing if any check fails."""
    step = on_step or (lambda _name: None)
    report = Report(source=source, crs=crs, tolerance_m=tolerance_m, dry_run=dry_run)
    t0 = time.perf_counter()
    step("staging")
    await staging.stage_create(conn)
    rows = [(r.row, r.code, r.name, r.level, r.chain, r.parent_code, r.floor_from, r.floor_to, r.wkb) for r in records]
    report.features = len(rows)
    await staging.stage_copy(conn, rows=rows)
    await staging.stage_prepare(conn)
    report.timings["staging"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    await _validate(conn, report, make_valid=make_valid, step=step)
    for r in await staging.check_county(conn, county_code=county_code):
        report.add(Problem(
            "other_county", "error", r["code"],
            f"{r['code']} 属于另一个县（{r['other']}），不能导入到本县（{county_code}）：每个县只能导入自己的网格",
            row=r["row"],
        ))  # fmt: skip
    missing = await staging.missing_from_stage(conn)
    for m in missing:
        report.add(Problem(
            "missing_from_file", "warning", m["code"],
            f"{m['code']}（{level_name(m['level'])}）已在库中、属于本文件的范围，但文件里没有它；"
            + ("已将它撤销" if retire_missing else "已保留（如要撤销，导入时加 --retire-missing）"),
            lon=m["lon"], lat=m["lat"],
        ))  # fmt: skip
    report.timings["validation"] = time.perf_counter() - t0
    if not report.ok:
        return report

    t0 = time.perf_counter()
    step("writing")
    try:
        # A dry run writes too, inside a savepoint rolled back at its end: real counts.
        async with conn.transaction(force_rollback=dry_run):
            report.inserted, report.updated = await staging.upsert_from_stage(conn, county_code=county_code)
            if retire_missing and missing:
                report.retired = await staging.retire_nodes(conn, ids=[m["id"] for m in missing])
    except psycopg.DatabaseError as exc:
        # The database's own rules (triggers, constraints) caught what the checks did not.
        message = (exc.diag.message_primary or str(exc)).strip()
        report.add(Problem("database", "error", None, f"数据库拒绝了写入，未写入任何数据（{message}）"))
        report.inserted = report.updated = report.retired = 0
        return report
    report.unchanged = report.features - report.inserted - report.updated
    report.written = not dry_run
    report.timings["writing"] = time.perf_counter() - t0
    return report


async def check_stored(
    *, conn: Conn, code: str | None = None, tolerance_m: float = 1.0, on_step: Step | None = None
) -> Report:
    """The import's checks on the live nodes under `code` (the whole grid when None)."""
    step = on_step or (lambda _name: None)
    report = Report(source=f"库中 {code} 以下的节点" if code else "库中全部节点", kind="check", tolerance_m=tolerance_m)
    t0 = time.perf_counter()
    step("staging")
    await staging.stage_create(conn)
    report.features = await staging.stage_from_stored(conn, code=code)
    await staging.stage_prepare(conn)
    report.timings["staging"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    await _validate(conn, report, make_valid=False, step=step, stored=True)
    report.timings["validation"] = time.perf_counter() - t0
    return report


VALIDATION_STEPS = ("fields", "validity", "hierarchy", "outside_parent", "sibling_overlap", "gaps")


async def _validate(conn: Conn, report: Report, *, make_valid: bool, step: Step, stored: bool = False) -> None:
    add = report.add
    row_of = lambda r: r  # noqa: E731 - staging row; dropped at the end for stored nodes
    step("fields")
    for f in await staging.check_fields(conn, level_codes=LEVEL_CODES):
        add(_field_problem(f, row_of(f["row"])))

    step("validity")
    invalid = await staging.check_validity(conn)
    repaired = {}
    if make_valid and invalid:
        repaired = {r["row"]: r for r in await staging.make_valid(conn, rows=[i["row"] for i in invalid])}
    for i in invalid:
        fix = repaired.get(i["row"])
        where = f"，位置约 ({i['lon']:.6f}, {i['lat']:.6f})" if i["lon"] is not None else ""
        if fix is None or fix["empty_after"]:
            add(Problem(
                "invalid_geometry", "error", i["code"],
                f"{i['code']}：边界多边形无效（{i['reason']}）{where}"
                + ("；自动修复后什么也不剩，请重画边界" if fix is not None else "；导入时加 --make-valid 可自动修复"),
                row=row_of(i["row"]), lon=i["lon"], lat=i["lat"], details={"reason": i["reason"]},
            ))  # fmt: skip
        else:
            add(Problem(
                "repaired_geometry", "warning", i["code"],
                f"{i['code']}：边界已自动修复（{i['reason']}）{where}；现为 {fix['parts_after']} 块、"
                f"{fix['points_after']} 个顶点（原 {i['points_before']} 个），面积 {fix['area_m2']:,.1f} m²",
                row=row_of(i["row"]), lon=i["lon"], lat=i["lat"],
                details={"reason": i["reason"], "points_before": i["points_before"],
                         "points_after": fix["points_after"], "parts_after": fix["parts_after"],
                         "area_m2": fix["area_m2"]},
            ))  # fmt: skip
    await staging.stage_mark_usable(conn)

    step("hierarchy")
    for h in await staging.check_hierarchy(conn):
        if h["check"] == "unknown_parent":
            add(Problem(
                "unknown_parent", "error", h["code"],
                f"{h['code']}：上级“{h['parent_code']}”既不在文件里，也不在库中；请先导入上级",
                row=row_of(h["row"]), details={"parent_code": h["parent_code"]},
            ))  # fmt: skip
            continue
        why = child_error(
            parent_level=h["parent_level"], parent_chain=h["parent_chain"],
            child_level=h["level"], child_chain=h["declared_chain"] or _own_chain(h["level"]),
        ) or f"{level_name(h['level'])}不能放在{level_name(h['parent_level'])}下面"  # fmt: skip
        if h["level"] not in LEVEL_CODES:
            continue  # already reported as unknown_level
        add(Problem(
            "hierarchy", "error", h["code"], f"{h['code']}（上级：{h['parent_code'] or '无'}）：{why}",
            row=row_of(h["row"]), details={"parent_code": h["parent_code"], "level": h["level"]},
        ))  # fmt: skip

    tol = report.tolerance_m
    step("outside_parent")
    for o in await staging.check_outside_parent(conn, tolerance_m=tol):
        add(Problem(
            "outside_parent", "error", o["code"],
            f"{o['code']} 超出上级 {o['parent_code']} 的边界 {o['dist_m']:.1f} 米"
            f"（超出面积 {o['area_m2']:,.1f} m²，最远处在 {o['lon']:.6f}, {o['lat']:.6f}）；请修正边界",
            row=row_of(o["row"]), lon=o["lon"], lat=o["lat"],
            details={"parent_code": o["parent_code"], "distance_m": o["dist_m"], "area_m2": o["area_m2"]},
        ))  # fmt: skip

    step("sibling_overlap")
    overlaps = await staging.check_sibling_overlap(conn, tolerance_m=tol)
    for s in overlaps:
        add(Problem(
            "sibling_overlap", "error", s["code_a"] if s["row_a"] is not None else s["code_b"],
            f"{s['code_a']} 与 {s['code_b']}（上级 {s['parent_code']}）重叠 {s['area_m2']:,.1f} m²，"
            f"最宽 {s['thickness_m']:.1f} 米，位置约 ({s['lon']:.6f}, {s['lat']:.6f})；请修正边界",
            row=row_of(s["row_a"] if s["row_a"] is not None else s["row_b"]), lon=s["lon"], lat=s["lat"],
            details={"codes": [s["code_a"], s["code_b"]], "area_m2": s["area_m2"], "width_m": s["thickness_m"]},
        ))  # fmt: skip

    step("gaps")
    for g in await staging.check_gaps(conn, tolerance_m=tol, also=sorted({s["parent_code"] for s in overlaps})):
        add(Problem(
            "gap", "warning", g["code"],
            f"{g['code']}：下级没有覆盖它的 {g['share']:.2%}（{g['area_m2']:,.1f} m²，"
            f"最宽 {g['thickness_m']:.1f} 米），例如 ({g['lon']:.6f}, {g['lat']:.6f}) 一带",
            row=row_of(g["row"]), lon=g["lon"], lat=g["lat"],
            details={"share": g["share"], "area_m2": g["area_m2"], "width_m": g["thickness_m"]},
        ))  # fmt: skip

    # Every problem gets a place to look at: the feature's own point when a check gave none.
    unplaced = [p.row for p in report.problems if p.lon is None and p.row is not None]
    points = await staging.stage_points(conn, rows=unplaced) if unplaced else {}
    report.problems = [
        replace(p, lon=points.get(p.row, (None, None))[0], lat=points.get(p.row, (None, None))[1])
        if p.lon is None and p.row is not None else p
        for p in report.problems
    ]  # fmt: skip
    if stored:  # stored nodes have no file row
        report.problems = [replace(p, row=None) for p in report.problems]


def _own_chain(level: str | None) -> str | None:
    return chain_of_level(level) if level in LEVEL_CODES else None


def _field_problem(f: dict, row: int | None) -> Problem:
    check, code = f["check"], f["code"]
    who = code or f"第 {f['row']} 个要素"
    what = f["what"] or ""
    if check == "missing_field":
        message = f"{who}：缺少 {what}"
    elif check == "unknown_level":
        message = f"{who}：不认识的层级“{what}”；可选：{'、'.join(LEVEL_CODES)}"
    elif check == "code_too_long":
        message = f"编码“{code}”有 {what} 个字符，最多 64 个"
    elif check == "duplicate_code":
        message = f"编码“{code}”出现了 {len(f['rows'] or [])} 次（第 {f['rows']} 个要素），编码不能重复"
    elif check == "floor_range" and what == "floor":
        message = f"{who}：楼层须填写起止层（floor_from 不大于 floor_to）"
    elif check == "floor_range":
        message = f"{who}：只有楼层填 floor_from/floor_to"
    else:
        message = f"{who}：须是多边形边界，文件里是 {what}"
    details = {"rows": f["rows"]} if f["rows"] else {}
    return Problem(check, "error", code, message, row=row, details=details)
