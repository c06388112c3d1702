"""The county's figures over HTTP: GET /api/v1/stats/<view>, as JSON or, with
`?format=csv|xlsx`, as a file with Chinese headers (docs/statistics.md).

Scoped by the caller: the figures count only cases placed in the subtrees of their data
scope (a township dispatcher: their township; county leaders and the county centre: the
county). An account without a data scope (an admin only) gets 403; a `township` outside
the scope is 404, the same as one that does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel

from app import schemas
from app.accounts.scope import Principal
from app.deps import CallerDep, SessionDep, SettingsDep
from app.settings import Settings
from grid.db import Conn
from grid.glossary import FIGURE_VIEWS
from grid.stats import leadership as leadership_figures
from grid.stats import service as stats
from grid.stats import tables
from grid.stats.definitions import SILENT_DAYS, Filters, Period, Ratio

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])
ERRORS: dict[int | str, dict[str, Any]] = {c: {"model": schemas.ErrorOut} for c in (401, 403, 404, 422, 503)}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS, 200: {"content": {"application/json": {}, "text/csv": {}, XLSX: {}}},
}  # fmt: skip

Format = Annotated[Literal["json", "csv", "xlsx"], Query(description="json (default), or a file: csv (UTF-8 with "
                                                                      "BOM) or xlsx, Chinese headers")]  # fmt: skip
From = Annotated[date | None, Query(alias="from", description="first county day, inclusive (default 1 January)")]
To = Annotated[date | None, Query(description="last county day, inclusive (default today)")]
Township = Annotated[str | None, Query(max_length=64, description="a township's code: only its figures")]
TierQ = Annotated[str | None, Query(max_length=32, description="the tier a case was first routed to")]
CategoryQ = Annotated[str | None, Query(max_length=32)]
Source = Annotated[str | None, Query(max_length=32, description="where a case came from (not yet available)")]


def _asked(caller: Principal, settings: Settings, *, start: date | None, end: date | None, township: str | None,
           tier: str | None, category: str | None, source: str | None, now: datetime) -> stats.Asked:  # fmt: skip
    filters = Filters(period=Period.of(start, end, now=now), tier=tier, category=category, source=source)
    return stats.Asked(scope_paths=stats.scope_paths([s.path for s in caller.scopes]), filters=filters,
                       township=township, exclusions=settings.stats_exclusions())  # fmt: skip


def _plain(value: Any) -> Any:
    """Ratios as {value, numerator, denominator}, for the response models."""
    if isinstance(value, Ratio):
        return {"value": value.value, "numerator": value.numerator, "denominator": value.denominator}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _answer(view: str, result: dict[str, Any], model: type[BaseModel], fmt: str) -> Any:
    if fmt == "json":
        return model.model_validate(_plain(result))
    table = tables.table(view, result)
    p = result["period_start"], result["period_end"]
    name = f"{FIGURE_VIEWS[view]}_{p[0]}_{p[1]}.{fmt}"
    disposition = f"attachment; filename=\"stats-{view}.{fmt}\"; filename*=UTF-8''{quote(name)}"
    if fmt == "csv":
        return Response(tables.to_csv(table), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": disposition})  # fmt: skip
    return Response(tables.to_xlsx(table), media_type=XLSX, headers={"Content-Disposition": disposition})


View = Callable[..., Awaitable[dict[str, Any]]]


async def _view(view: View, name: str, model: type[BaseModel], *, caller: Principal, conn: Conn, settings: Settings,
                fmt: str, start: date | None, end: date | None, township: str | None, tier: str | None,
                category: str | None, source: str | None, **extra: Any) -> Any:  # fmt: skip
    now = datetime.now(UTC)
    asked = _asked(caller, settings, start=start, end=end, township=township, tier=tier, category=category,
                   source=source, now=now)  # fmt: skip
    return _answer(name, await view(conn=conn, asked=asked, now=now, **extra), model, fmt)


@router.get("/summary", responses=RESPONSES, response_model=schemas.StatsSummary)
async def summary(caller: CallerDep, conn: SessionDep, settings: SettingsDep, start: From = None, to: To = None,
                  township: Township = None, tier: TierQ = None, category: CategoryQ = None, source: Source = None,
                  format: Format = "json") -> Any:  # fmt: skip
    """Every KPI of the period: received, concluded and the success rate (with its
    numerator, denominator and exclusions), where cases were settled, escalations,
    returns, reopens, lateness, speed and return-visit satisfaction."""
    return await _view(stats.summary, "summary", schemas.StatsSummary, caller=caller, conn=conn, settings=settings,
                       fmt=format, start=start, end=to, township=township, tier=tier, category=category,
                       source=source)  # fmt: skip


@router.get("/tiers", responses=RESPONSES, response_model=schemas.StatsTiers)
async def tiers(caller: CallerDep, conn: SessionDep, settings: SettingsDep, start: From = None, to: To = None,
                township: Township = None, tier: TierQ = None, category: CategoryQ = None, source: Source = None,
                format: Format = "json") -> Any:  # fmt: skip
    """The funnel, tier by tier, over the cases received in the period: how many reached
    each tier, were accepted, settled, failed, went up or were returned there, their missed
    deadlines, and the median hours to accept and to resolve."""
    return await _view(stats.tiers, "tiers", schemas.StatsTiers, caller=caller, conn=conn, settings=settings,
                       fmt=format, start=start, end=to, township=township, tier=tier, category=category,
                       source=source)  # fmt: skip


@router.get("/monthly", responses=RESPONSES, response_model=schemas.StatsMonthly)
async def monthly(caller: CallerDep, conn: SessionDep, settings: SettingsDep, start: From = None, to: To = None,
                  township: Township = None, tier: TierQ = None, category: CategoryQ = None, source: Source = None,
                  format: Format = "json") -> Any:  # fmt: skip
    """The KPIs month by month (the county's months)."""
    return await _view(stats.monthly, "monthly", schemas.StatsMonthly, caller=caller, conn=conn, settings=settings,
                       fmt=format, start=start, end=to, township=township, tier=tier, category=category,
                       source=source)  # fmt: skip


@router.get("/townships", responses=RESPONSES, response_model=schemas.StatsPlaces)
async def townships(caller: CallerDep, conn: SessionDep, settings: SettingsDep, start: From = None, to: To = None,
                    township: Township = None, tier: TierQ = None, category: CategoryQ = None, source: Source = None,
                    format: Format = "json") -> Any:  # fmt: skip
    """The league table: the KPIs per township in the caller's scope."""
    return await _view(stats.townships, "townships", schemas.StatsPlaces, caller=caller, conn=conn,
                       settings=settings, fmt=format, start=start, end=to, township=township, tier=tier,
                       category=category, source=source)  # fmt: skip


@router.get("/categories", responses=RESPONSES, response_model=schemas.StatsPlaces)
async def categories(caller: CallerDep, conn: SessionDep, settings: SettingsDep, start: From = None, to: To = None,
                     township: Township = None, tier: TierQ = None, category: CategoryQ = None, source: Source = None,
                     format: Format = "json") -> Any:  # fmt: skip
    """The KPIs per category of dispute."""
    return await _view(stats.categories, "categories", schemas.StatsPlaces, caller=caller, conn=conn,
                       settings=settings, fmt=format, start=start, end=to, township=township, tier=tier,
                       category=category, source=source)  # fmt: skip


@router.get("/nodes", responses=RESPONSES, response_model=schemas.StatsNodes)
async def nodes(caller: CallerDep, conn: SessionDep, settings: SettingsDep, start: From = None, to: To = None,
                township: Township = None, tier: TierQ = None, category: CategoryQ = None, source: Source = None,
                format: Format = "json",
                level: Annotated[str, Query(max_length=16, description="grid (default), village, group, ...")] = "grid",
                silent_days: Annotated[int, Query(ge=1, le=3660)] = SILENT_DAYS) -> Any:  # fmt: skip
    """Reports per node of a level (a grid by default) in the period, and the silent ones:
    no report in the `silent_days` (90) before the period's end."""
    return await _view(stats.nodes, "nodes", schemas.StatsNodes, caller=caller, conn=conn, settings=settings,
                       fmt=format, start=start, end=to, township=township, tier=tier, category=category,
                       source=source, level=level, silent_days=silent_days)  # fmt: skip


def leadership_scope(caller: Principal) -> tuple[str, ...]:
    """The leadership figures' subtrees: the caller's data scope, and the county for those
    who read these records county-wide already (/duty/visits, /backlog/batches, the task
    queue, /referrals/summary): discipline inspection and the departments' staff."""
    county = [g.path for g in caller.grants if g.role in ("supervisor", "department_staff")]
    return stats.scope_paths([*(s.path for s in caller.scopes), *county])


@router.get("/leadership", responses=RESPONSES, response_model=schemas.StatsLeadership)
async def leadership(caller: CallerDep, conn: SessionDep, start: From = None, to: To = None,
                     township: Township = None, format: Format = "json") -> Any:  # fmt: skip
    """The leadership mechanisms' figures: visits per duty leader, 包案 progress, backlog
    batches and 清零, reflows (倒流), supervised tasks done in time, social-assistance
    referrals and lawful closures (依法终结), for the caller's scope (or one township)."""
    now = datetime.now(UTC)
    asked = stats.Asked(scope_paths=leadership_scope(caller), filters=Filters(period=Period.of(start, to, now=now)),
                        township=township)  # fmt: skip
    return _answer("leadership", await leadership_figures.leadership(conn=conn, asked=asked, now=now),
                   schemas.StatsLeadership, format)  # fmt: skip


PDF = "application/pdf"
ReportFormat = Annotated[Literal["pdf", "xlsx"], Query(description="pdf (default; Chinese font from Debian) or xlsx")]


@router.get("/report", responses={**ERRORS, 200: {"content": {PDF: {}, XLSX: {}}}}, response_class=Response)
async def report(caller: CallerDep, conn: SessionDep, settings: SettingsDep,
                 quarter: Annotated[str, Query(max_length=16, description="the county's quarter, e.g. 2026Q3")],
                 township: Township = None, format: ReportFormat = "pdf") -> Response:  # fmt: skip
    """The quarterly report for the county joint meeting: the quarter's headline figures,
    the tiers, the townships, the categories, the months and lateness, for the caller's
    scope (or one township of it), as PDF or as an XLSX workbook of several sheets."""
    from app import documents
    from grid.stats import report as quarterly

    q = quarterly.Quarter.parse(quarter)
    scope = stats.scope_paths([s.path for s in caller.scopes])
    # The report is named after the widest nodes of the scope (a county leader: the county).
    widest = [s.name for s in caller.scopes if not any(s.path.startswith(o + ".") for o in scope)]
    place = "、".join(dict.fromkeys(widest)) or caller.county_name
    r = await quarterly.build(conn=conn, scope_paths=scope, quarter=q, now=datetime.now(UTC), place=place,
                              township=township, exclusions=settings.stats_exclusions())  # fmt: skip
    if format == "xlsx":
        body, media = await asyncio.to_thread(quarterly.to_xlsx, r), XLSX
    else:
        try:
            body, media = await asyncio.to_thread(documents.figures_pdf, r, font=settings.pdf_font), PDF
        except documents.FontMissing as exc:
            raise HTTPException(503, f"服务器缺少中文字体，暂时无法生成 PDF：{exc}") from None
    disposition = (f"attachment; filename=\"report-{q.code}.{format}\"; "
                   f"filename*=UTF-8''{quote(quarterly.file_name(r, format))}")  # fmt: skip
    return Response(body, media_type=media, headers={"Content-Disposition": disposition})
