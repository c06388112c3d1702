"""`wuzhang`: the admin command line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import psycopg
import typer
from rich.console import Console

from app.settings import get_settings, libpq_url
from grid import people_time
from grid.db import Conn, connect
from grid.glossary import role_name

cli = typer.Typer(help="wuzhang 五长: grid-based conflict management.", no_args_is_help=True)
demo_cli = typer.Typer(help="The synthetic demo county.", no_args_is_help=True)
grid_cli = typer.Typer(help="The grid: nodes and their polygons.", no_args_is_help=True)
users_cli = typer.Typer(help="Accounts.", no_args_is_help=True)
cli.add_typer(demo_cli, name="demo")
roster_cli = typer.Typer(help="The roster: who holds which post.", no_args_is_help=True)
cli.add_typer(grid_cli, name="grid")
cli.add_typer(users_cli, name="users")
cli.add_typer(roster_cli, name="roster")
err = Console(stderr=True)
SEVERITY_ZH = {"error": "错误", "warning": "提醒"}  # a boundary report's problems, as the admin reads them


@cli.callback()
def _every_command() -> None:
    """Times a command writes for people (roster dates, notes) are in the county's zone."""
    people_time.use_zone(get_settings().time_zone)


T = TypeVar("T")
# The county a command acts on: the code of its root node; by default WUZHANG_COUNTY_CODE.
CountyOption = Annotated[str | None, typer.Option("--county", help="the county's code (default WUZHANG_COUNTY_CODE)")]


@asynccontextmanager
async def _connection() -> AsyncIterator[Conn]:
    """A connection of the command's own (autocommit; use cases open their transactions)."""
    conn = await connect(libpq_url(get_settings().sqlalchemy_database_url), application_name="wuzhang-cli")
    try:
        yield conn
    finally:
        await conn.close()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Commands are plain functions; the domain is async: each command runs one event loop."""
    return asyncio.run(coro)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "",
    port: Annotated[int, typer.Option(help="port")] = 0,
    workers: Annotated[int, typer.Option(help="HTTP server processes; 0: WUZHANG_WORKERS, or one per CPU")] = 0,
    with_worker: Annotated[bool, typer.Option(help="also run the background worker beside the API")] = True,
) -> None:
    """Serve the API: N server processes on one port, and one deadline and push worker beside them."""
    import subprocess

    import uvicorn

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers or cpu_count()
    base = f"http://{host}:{port}"
    err.print(f"[bold]wuzhang[/bold] serving on {base} with {workers} server process(es)")
    err.print(f"  API docs   {base}/docs")
    err.print(f"  locate     {base}/api/v1/grid/locate?lon=110.07437&lat=37.77809&floor=8")
    err.print(f"  health     {base}/healthz  {base}/readyz")
    worker_cmd = [sys.executable, "-m", "app.cli", "worker", "--parent-pid", str(os.getpid())]
    background = subprocess.Popen(worker_cmd) if with_worker else None
    try:
        uvicorn.run("app.main:create_app", factory=True, host=host, port=port, workers=workers, log_level="info",
                    access_log=settings.access_log, loop="uvloop", http="httptools",
                    # X-Forwarded-For is believed only from WUZHANG_TRUSTED_PROXIES (create_app);
                    # uvicorn's own default would believe anything sent from 127.0.0.1.
                    proxy_headers=False)  # fmt: skip
    finally:
        if background is not None:
            background.terminate()
            background.wait(timeout=10)


@cli.command()
def worker(
    once: Annotated[bool, typer.Option(help="sweep once and exit")] = False,
    now: Annotated[
        str | None, typer.Option(help="pretend it is this ISO time (drills and tests; development only)")
    ] = None,
    parent_pid: Annotated[int | None, typer.Option(hidden=True, help="exit when this parent process is gone")] = None,
) -> None:
    """Run the background worker: deadline warnings and automatic escalation."""
    import logging
    from datetime import datetime

    from app import worker as worker_mod

    settings = get_settings()
    fixed = None
    if now:
        # A pretend time is signed into the ledger like a real one: never on real cases.
        if settings.env != "development":
            err.print(f"[red]error:[/red] --now 只用于开发环境的演练和测试：假定的时间会被签入台账，"
                      f"当前 WUZHANG_ENV={settings.env}，已拒绝，未做任何处理", soft_wrap=True)  # fmt: skip
            raise typer.Exit(2)
        try:
            fixed = datetime.fromisoformat(now)
        except ValueError:
            fixed = None
        if fixed is None or fixed.tzinfo is None:
            err.print(f"[red]error:[/red] --now {now!r} 不是带时区的 ISO 时间，例如 2026-03-01T09:00:00+08:00",
                      soft_wrap=True)  # fmt: skip
            raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _run(worker_mod.run(settings, clock=(lambda: fixed) if fixed else worker_mod.utc_now, once=once,
                        parent_pid=parent_pid))  # fmt: skip


ledger_cli = typer.Typer(help="The signed case ledger (台账).", no_args_is_help=True)
cli.add_typer(ledger_cli, name="ledger")


@ledger_cli.command("verify")
def ledger_verify(
    case: Annotated[list[int] | None, typer.Option("--case", help="only these cases (repeatable)")] = None,
) -> None:
    """Recompute every case's hash chain from its columns and check every signature against
    the trusted keys (the signing key and WUZHANG_LEDGER_KEYRING); exit 1 if any fails."""
    from grid.cases import repository as case_sql
    from grid.cases import service as cases

    keys = get_settings().ledger_keys()

    async def verify_all() -> tuple[int, int, int]:
        bad = checked = body_only = 0
        async with _connection() as conn:
            for case_id in case or await case_sql.case_ids(conn):
                verdict = await cases.verify_ledger(conn=conn, case_id=case_id, keys=keys)
                checked += 1
                body_only += verdict.sealed_body_only
                if not verdict.valid:
                    bad += 1
                    err.print(f"[red]case {case_id}: the ledger fails at event {verdict.first_bad_event} "
                              f"(step {verdict.first_bad_seq}): {verdict.problem}[/red]", soft_wrap=True)  # fmt: skip
        return checked, bad, body_only

    checked, bad, body_only = _run(verify_all())
    err.print(f"{checked:,} case ledgers checked, {bad:,} failed")
    if body_only:
        err.print(f"{body_only:,} events were written before migration 0108 and are sealed over their body only "
                  "(their columns are checked against the body's copies)", soft_wrap=True)  # fmt: skip
    if bad:
        raise typer.Exit(1)


@ledger_cli.command("keys")
def ledger_keys() -> None:
    """Print the public keys the ledger trusts (key id, base64 public key): what a third
    party needs to check the ledger."""
    from grid.cases.ledger import public_key_b64

    settings = get_settings()
    current = settings.ledger_signer().key_id
    for key_id, key in settings.ledger_keys().items():
        typer.echo(f"{key_id}  {public_key_b64(key)}  {'signing' if key_id == current else 'keyring'}")


@ledger_cli.command("rotate-key")
def ledger_rotate_key(
    seed_out: Annotated[
        Path | None,
        typer.Option(help="where to write the new secret seed (needed when WUZHANG_LEDGER_KEY is set)"),
    ] = None,
) -> None:
    """Make a new signing key. The current and the new public key go into the keyring
    (WUZHANG_LEDGER_KEYRING), so events signed by either verify after the switch. In
    development the new seed replaces .data/ledger.key; with WUZHANG_LEDGER_KEY set it is
    written to --seed-out, and the operator puts it in WUZHANG_LEDGER_KEY and restarts."""
    import base64
    import secrets
    from datetime import UTC, datetime

    from app.settings import DEV_LEDGER_KEY_FILE, forget_ledger_signer, read_keyring
    from grid.cases.ledger import Signer, public_key_b64

    settings = get_settings()
    if settings.ledger_key and seed_out is None:
        typer.echo("WUZHANG_LEDGER_KEY is set: give --seed-out FILE for the new seed", err=True)
        raise typer.Exit(2)
    old = settings.ledger_signer()
    seed = base64.b64encode(secrets.token_bytes(32)).decode()
    new = Signer.from_seed(seed)
    keyring = settings.ledger_keyring
    kept = read_keyring(keyring) if keyring.exists() else {}
    today = datetime.now(UTC).date().isoformat()
    lines = [f"{public_key_b64(s.public_key)}  # {s.key_id} {what} {today}"
             for s, what in ((old, "retired"), (new, "signing from")) if s.key_id not in kept]  # fmt: skip
    keyring.parent.mkdir(parents=True, exist_ok=True)
    with keyring.open("a", encoding="utf-8") as f:  # appended first: the old key's events keep verifying
        f.write("".join(line + "\n" for line in lines))
    if settings.ledger_key:
        assert seed_out is not None
        _write_secret(seed_out, seed, replace=False)
        typer.echo(f"new seed in {seed_out}: set WUZHANG_LEDGER_KEY to it in every server and worker, restart "
                   "them, then delete the file", err=True)  # fmt: skip
    else:
        _write_secret(DEV_LEDGER_KEY_FILE, seed, replace=True)
        forget_ledger_signer()
    typer.echo(f"ledger key {old.key_id} retired (kept in {keyring}); new key {new.key_id}, used by each server "
               "and worker once restarted", err=True)  # fmt: skip


def _write_secret(path: Path, text: str, *, replace: bool) -> None:
    """Owner-only from the first byte; `replace` swaps it in whole (never half written)."""
    target = path.with_name(path.name + ".new") if replace else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    if replace:
        os.replace(target, path)


@demo_cli.command("load")
def demo_load(
    scale: Annotated[int, typer.Option(min=1, help="multiplies the leaf polygons (17 gives >100k)")] = 1,
    seed: Annotated[int, typer.Option(help="same seed, same county")] = 610827,
) -> None:
    """Generate the two demo counties (米脂县, and 绥德县 beside it) and load each one not
    loaded yet, with their demo accounts and the city's (市级)."""
    _run(_demo_load(scale, seed))


async def _demo_load(scale: int, seed: int) -> None:
    from app.accounts import demo as demo_accounts
    from geo import demo

    settings = get_settings()
    async with _connection() as conn:
        await load_demo_county(conn, demo.MIZHI, scale=scale, seed=seed)
        await load_demo_county(conn, demo.SUIDE, scale=scale, seed=None)
        await _demo_accounts(conn)
        await _demo_meetings(conn)
        await _demo_leadership(conn)
        if settings.env != "production":
            codes = [p.code for p in demo.DEMO_PLACES]
            second, created = await demo_accounts.ensure_second(conn=conn, settings=settings, county_code=demo.SUIDE.code,
                                                                city_counties=codes)  # fmt: skip
            err.print(f"demo accounts of {demo.SUIDE.name} and the city: {created} created")
            for a in second:
                err.print(f"  {a.title:<26} {a.phone}  {a.node_code} {a.node_name}")


async def load_demo_county(conn: Conn, place: Any, *, scale: int, seed: int | None) -> None:
    """One demo county (geo.demo.DemoPlace) and its standard departments, unless loaded."""
    from geo import demo
    from grid import service
    from grid.leadership import departments
    from grid.repository import nodes as node_sql

    if await node_sql.county_loaded(conn, code=place.code):
        err.print(f"demo county {place.code} {place.name} is already loaded")
        return
    t0 = time.perf_counter()
    county = demo.generate(scale=scale, seed=seed, code=place.code, name=place.name, centre=place.centre)
    t1 = time.perf_counter()
    with err.status(f"loading {len(county.nodes):,} nodes and {len(county.posts):,} posts"):
        async with conn.transaction():
            await service.load_county(conn=conn, county_code=place.code, nodes=county.nodes, posts=county.posts)
            await departments.ensure_standard(conn=conn, county_code=place.code)
    t2 = time.perf_counter()
    err.print(
        f"loaded {place.name}: {len(county.nodes):,} nodes ({len(county.leaf_polygons):,} leaf "
        f"polygons), {len(county.posts):,} posts; generated in {t1 - t0:.1f} s, written in {t2 - t1:.1f} s"
    )


async def _demo_meetings(conn: Conn) -> None:
    """联席会议 and 督办: one county meeting with six tasks, one township meeting splitting one (idempotent)."""
    from datetime import UTC, datetime

    from grid.leadership import meetings

    settings = get_settings()
    if settings.env == "production":  # real leaders' names must not chair made-up meetings
        return
    if await meetings.ensure_demo(conn=conn, county_code=settings.county_code, now=datetime.now(UTC)):
        err.print("demo meetings: a county meeting with 6 tasks and a township meeting with 2 sub-tasks")


async def _demo_leadership(conn: Conn) -> None:
    """坐班接访, 积案 and 社会救助 in the demo county (idempotent; grid/leadership/demo.py)."""
    from datetime import UTC, datetime

    from app.accounts.service import ROOMS
    from grid.leadership import demo as leadership_demo

    settings = get_settings()
    if settings.env == "production":  # made-up leaders must not own real cases
        return
    loaded = await leadership_demo.ensure(conn=conn, county_code=settings.county_code, now=datetime.now(UTC),
                                          signer=settings.ledger_signer(), rooms=ROOMS)  # fmt: skip
    if loaded is not None:
        err.print(f"demo leadership: {loaded.roster_days} duty days added; backlog {leadership_demo.BATCH_LABEL} "
                  f"{loaded.batch_cases} cases imported now, {loaded.duties_ticked} duties ticked, "
                  f"{loaded.referrals} referrals")  # fmt: skip


async def _demo_accounts(conn: Conn) -> None:
    """Idempotent; refused in production, where a published password would be a hole."""
    from app.accounts import demo as demo_accounts

    settings = get_settings()
    if settings.env == "production":
        err.print("WUZHANG_ENV=production: no demo accounts are created")
        return
    accounts, created = await demo_accounts.ensure(conn=conn, settings=settings, county_code=settings.county_code)
    err.print(f"demo accounts: {created} created, {len(accounts) - created} there already; "
              "the shared password is in README.md under 'Demo accounts'")  # fmt: skip
    for a in accounts:
        err.print(f"  {a.title:<26} {a.phone}  {a.node_code} {a.node_name}")


@demo_cli.command("history")
def demo_history(
    year: Annotated[int, typer.Option(help="the county's calendar year, one that is over")] = 2023,
    seed: Annotated[int, typer.Option(help="same seed, same cases")] = 610827,
    cases: Annotated[
        int | None, typer.Option(min=20, help="cases to generate (default 380: near the county's 330 settled)")
    ] = None,
    county: CountyOption = None,
) -> None:
    """Generate a year of synthetic cases in the loaded demo county, each walked through the
    real workflow (report, accept, mediate, file, resolve or fail and escalate, return visit,
    close; some returned, extended, reopened or escalated by the deadline sweep), then print
    the year's figures. Refused (exit 2) if the county is not loaded or the year has cases.
    Safe beside a running server: each case is committed whole, its notices never pushed."""
    from datetime import UTC, datetime

    from app.accounts.service import ROOMS
    from grid.cases import history

    settings = get_settings()

    async def generate() -> history.Figures:
        async with _connection() as conn:
            with err.status(f"正在生成 {year} 年的历史案件（每件走完真实的办理流程）"):
                return await history.generate(
                    conn=conn, county_code=county or settings.county_code, year=year, seed=seed, now=datetime.now(UTC),
                    signer=settings.ledger_signer(), rooms=ROOMS, cases=cases or history.CASES_PER_YEAR,
                )  # fmt: skip

    t0 = time.perf_counter()
    try:
        figures = _run(generate())
    except history.HistoryRefused as exc:
        err.print(f"[red]已拒绝：[/red]{exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    _print_history(figures, seconds=time.perf_counter() - t0)


def _print_history(figures: Any, *, seconds: float) -> None:
    from rich.table import Table

    from grid.cases.enums import TIER_ORDER, Tier
    from grid.glossary import tier_name

    table = Table(title=f"{figures.year} 年历史案件（{seconds:.0f} 秒生成）", show_header=False)
    table.add_row("生成案件", f"{figures.cases:,}")
    for tier in TIER_ORDER:
        table.add_row(f"在{tier_name(tier)}办结", f"{figures.settled.get(tier, 0):,}")
    village, town = tier_name(Tier.village_house), tier_name(Tier.township_hall)
    table.add_row(f"{village}和{town}合计办结", f"{figures.settled_village_township:,}")
    table.add_row("调解成功率", f"{figures.success_share:.2%}（成功 {figures.resolves}，失败 {figures.fails}）")
    table.add_row(f"到达{tier_name(Tier.county_center)}", f"{figures.reached_county:,}")
    table.add_row("仍未办结", f"{figures.still_open:,}")
    table.add_row("每月上报", " ".join(f"{m}月 {figures.months.get(m, 0)}" for m in range(1, 13)))
    Console().print(table)


@users_cli.command("create-admin")
def users_create_admin(
    phone: Annotated[str, typer.Option(help="login phone number, 11 digits")],
    name: Annotated[str, typer.Option(help="the person's name")] = role_name("admin"),
    county: CountyOption = None,
) -> None:
    """Bootstrap an admin of a county (its root's code: --county, default WUZHANG_COUNTY_CODE). The password is read from a prompt, or from stdin when piped;
    never from an argument, which would land in the shell history and `ps`."""
    from app.accounts import service
    from app.accounts.exceptions import AccountsError
    from grid.exceptions import GridError, NodeNotFound

    if sys.stdin.isatty():
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    settings = get_settings()
    code = county or settings.county_code

    async def create() -> int:
        async with _connection() as conn:
            user_id, _ = await service.create_user(
                conn=conn, settings=settings, county_code=code, phone=phone, name=name,
                password=password, grants=[service.GrantIn(role="admin", node_code=code)],
                actor=None, ip="cli",
            )  # fmt: skip
            return user_id

    try:
        user_id = _run(create())
    except (AccountsError, GridError) as exc:
        hint = "；请先载入或导入本县的边界" if isinstance(exc, NodeNotFound) else ""
        err.print(f"[red]错误：[/red]{exc.message}{hint}")
        raise typer.Exit(1) from None
    err.print(f"已创建{role_name('admin')}账号 {phone}（用户编号 {user_id}，{code}）")


@users_cli.command("city")
def users_city(
    phone: Annotated[str, typer.Option(help="login phone number, 11 digits")],
    county: Annotated[list[str], typer.Option("--county", help="a county it reads (its root's code; repeatable)")],
    name: Annotated[str, typer.Option(help="the person's name")] = role_name("city"),
) -> None:
    """An account of the city (市级): reads the figures and the map of each --county and
    writes nothing. It belongs to the first county. Only here: a county's admin cannot grant
    it. The password is read as create-admin reads it."""
    from app.accounts import service
    from app.accounts.exceptions import AccountsError
    from grid.exceptions import GridError

    if sys.stdin.isatty():
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    settings = get_settings()

    async def create() -> int:
        async with _connection() as conn:
            user_id, _ = await service.create_user(
                conn=conn, settings=settings, county_code=county[0], phone=phone, name=name, password=password,
                grants=[service.GrantIn(role="city", node_code=code) for code in county], actor=None, ip="cli",
            )  # fmt: skip
            return user_id

    try:
        user_id = _run(create())
    except (AccountsError, GridError) as exc:
        err.print(f"[red]错误：[/red]{exc.message}")
        raise typer.Exit(1) from None
    err.print(f"已创建{role_name('city')}账号 {phone}（用户编号 {user_id}，{'、'.join(county)}）")


@users_cli.command("disable-demo")
def users_disable_demo() -> None:
    """Disable every demo account that still has the published demo password (production
    refuses to start while one does). Demo accounts given a password of their own are kept."""
    from app.accounts import demo as demo_accounts

    async def disable() -> list[str]:
        async with _connection() as conn:
            return await demo_accounts.disable(conn=conn, settings=get_settings())

    phones = _run(disable())
    err.print(f"已停用 {len(phones)} 个仍用公开演示密码的演示账号" + ("：" if phones else ""))
    for phone in phones:
        err.print(f"  {phone}")


@grid_cli.command("export")
def grid_export(
    code: Annotated[str, typer.Argument(help="code of the subtree's root, e.g. 610827 for the county")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="file to write; stdout if omitted")] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="geojson or gpkg (default: from the file name, else geojson)")
    ] = "",
) -> None:
    """Export a subtree as GeoJSON or GeoPackage (WGS-84, coordinates at full precision)."""
    from grid import service
    from grid.exceptions import NodeNotFound

    fmt = (fmt or ("gpkg" if output and output.suffix.lower() == ".gpkg" else "geojson")).lower()
    if fmt not in ("geojson", "gpkg"):
        err.print(f"[red]错误：[/red]不认识的格式“{fmt}”；请用 geojson 或 gpkg")
        raise typer.Exit(2)
    if fmt == "gpkg" and output is None:
        err.print("[red]错误：[/red]导出 GeoPackage 须指定文件：加上 -o 文件名.gpkg")
        raise typer.Exit(2)

    async def export() -> int:
        async with _connection() as conn:
            if fmt == "gpkg":
                assert output is not None
                output.unlink(missing_ok=True)
                return await service.export_gpkg(conn=conn, code=code, path=output)
            out = output.open("w", encoding="utf-8") if output else sys.stdout
            try:
                return await service.export_geojson(conn=conn, code=code, out=out)
            finally:
                if output:
                    out.close()

    try:
        count = _run(export())
    except NodeNotFound as exc:
        err.print(f"[red]错误：[/red]{exc.message}")
        raise typer.Exit(1) from None
    if output:
        err.print(f"已把 {count:,} 个要素写入 {output}")


def _print_report(report) -> None:
    from rich.table import Table

    if report.problems:
        table = Table("级别", "检查项", "编码", "要素", "位置", "问题", show_lines=False)
        shown = report.problems[:200]
        for p in shown:
            where = f"{p.lon:.6f}, {p.lat:.6f}" if p.lon is not None else ""
            colour = "red" if p.severity == "error" else "yellow"
            table.add_row(f"[{colour}]{SEVERITY_ZH.get(p.severity, p.severity)}[/{colour}]", p.check, p.code or "", str(p.row or ""), where,
                          p.message)  # fmt: skip
        err.print(table)
        if len(report.problems) > len(shown):
            err.print(f"……还有 {len(report.problems) - len(shown):,} 处（加 --json 可看全部）")
    timings = "，".join(f"{k} {v:.1f} 秒" for k, v in report.timings.items())
    colour = "green" if report.ok else "red"
    err.print(f"[{colour}]{report.summary()}[/{colour}]" + (f"  [dim]({timings})[/dim]" if timings else ""))


def _progress():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<16}"), BarColumn(), TimeElapsedColumn(), console=err,
                    transient=True)  # fmt: skip


@grid_cli.command("import")
def grid_import(
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile (.shp, or a .zip of one)")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate and count, write nothing")] = False,
    make_valid: Annotated[bool, typer.Option("--make-valid", help="repair invalid polygons (ST_MakeValid)")] = False,
    retire_missing: Annotated[
        bool, typer.Option("--retire-missing", help="retire stored nodes of the file's subtrees that it lacks")
    ] = False,
    field_map: Annotated[
        list[str] | None, typer.Option("--map", help="rename a source field: SOURCE=TARGET (repeatable)")
    ] = None,
    from_gcj02: Annotated[bool, typer.Option("--from-gcj02", help="the file is in GCJ-02 (AMap/Tencent)")] = False,
    layer: Annotated[str | None, typer.Option(help="layer of a multi-layer file (default: the first)")] = None,
    tolerance: Annotated[float, typer.Option(help="metres a child may stick out or siblings overlap")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the full report as JSON on stdout")] = False,
    county: CountyOption = None,
) -> None:
    """Import boundaries: validate everything, then upsert by code in one transaction. The
    file's nodes belong to --county; a new county is one whose county-level row has that code."""
    from geo.exceptions import GeoError
    from geo.importer import parse_field_map, read_boundaries
    from grid.imports import VALIDATION_STEPS, import_boundaries

    settings = get_settings()
    steps = ("reading", "staging", *VALIDATION_STEPS, "writing")
    with _progress() as progress:
        task = progress.add_task("reading", total=len(steps))
        try:
            t0 = time.perf_counter()
            boundary = read_boundaries(file, field_map=parse_field_map(field_map), from_gcj02=from_gcj02, layer=layer)
            read_s = time.perf_counter() - t0
        except GeoError as exc:
            progress.stop()
            err.print(f"[red]错误：[/red]{exc.message}")
            raise typer.Exit(1) from None
        progress.advance(task)

        def on_step(name: str) -> None:
            progress.update(task, description=name, completed=steps.index(name))

        async def run_import() -> Any:
            async with _connection() as conn:
                async with conn.transaction() as tx:
                    report = await import_boundaries(
                        conn=conn, county_code=county or settings.county_code, records=boundary.records,
                        source=file.name,
                        crs=boundary.crs, tolerance_m=tolerance, make_valid=make_valid,
                        retire_missing=retire_missing, dry_run=dry_run, on_step=on_step,
                    )  # fmt: skip
                    if not report.ok:
                        raise psycopg.Rollback(tx)  # written only when every check passed
                    t0 = time.perf_counter()
                if report.ok and not dry_run:
                    report.timings["commit"] = time.perf_counter() - t0
                return report

        report = _run(run_import())
        report.timings = {"reading": read_s, **report.timings}
        progress.update(task, completed=len(steps))
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


@grid_cli.command("check")
def grid_check(
    code: Annotated[str | None, typer.Argument(help="root of the subtree to check (default: everything)")] = None,
    tolerance: Annotated[float, typer.Option(help="metres a child may stick out or siblings overlap")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the full report as JSON on stdout")] = False,
) -> None:
    """Run the import's checks on the stored grid."""
    from grid import service
    from grid.exceptions import NodeNotFound
    from grid.imports import VALIDATION_STEPS, check_stored

    steps = ("staging", *VALIDATION_STEPS)
    with _progress() as progress:
        task = progress.add_task("staging", total=len(steps))

        async def run_check() -> Any:
            async with _connection() as conn:
                if code is not None:
                    await service.node_brief(conn=conn, code=code)
                async with conn.transaction(force_rollback=True):  # a check writes nothing that stays
                    return await check_stored(
                        conn=conn, code=code, tolerance_m=tolerance,
                        on_step=lambda name: progress.update(task, description=name, completed=steps.index(name)),
                    )  # fmt: skip

        try:
            report = _run(run_check())
        except NodeNotFound as exc:
            progress.stop()
            err.print(f"[red]错误：[/red]{exc.message}")
            raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


@roster_cli.command("import")
def roster_import(
    file: Annotated[Path, typer.Argument(help=".xlsx or .csv: node_code, role, name, phone, start_date")],
    strict: Annotated[bool, typer.Option("--strict", help="import nothing if any row is bad")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check and count, write nothing")] = False,
    errors_xlsx: Annotated[
        Path | None, typer.Option("--errors-xlsx", help="write the rows with an error column to this .xlsx")
    ] = None,
    county: CountyOption = None,
) -> None:
    """Import posts of a county's nodes; a new chief is a handover (the old post ends, a new one starts)."""
    from grid.exceptions import GridError
    from grid.roster import import_roster, read_roster, write_error_workbook

    settings = get_settings()
    try:
        rows = read_roster(file, max_rows=settings.import_max_rows)
    except GridError as exc:
        err.print(f"[red]错误：[/red]{exc.message}")
        raise typer.Exit(1) from None

    async def run_import() -> Any:
        async with _connection() as conn:
            return await import_roster(conn=conn, county_code=county or settings.county_code, rows=rows,
                                       source=file.name,
                                       strict=strict, dry_run=dry_run)  # fmt: skip

    with err.status(f"正在导入 {len(rows):,} 行"):
        report = _run(run_import())
    for e in report.errors[:200]:
        err.print(f"  第 {e.row} 行：[red]{e.reason}[/red]")
    if len(report.errors) > 200:
        err.print(f"  ……还有 {len(report.errors) - 200:,} 行有错")
    if errors_xlsx:
        write_error_workbook(rows, report.errors, errors_xlsx)
        err.print(f"已把各行连同错误原因写入 {errors_xlsx}：改正标红的行后重新导入")
    verb = "试运行，将导入" if dry_run else "已导入"
    if strict and report.errors:
        verb = "严格模式：有错行，未导入（本应导入"
    err.print(f"{file.name}：共 {report.rows:,} 行，{len(report.errors)} 行有错；{verb} "
              f"{report.imported:,} 行（其中交接 {report.handovers:,} 个），{report.unchanged:,} 行无变化"
              + ("）" if strict and report.errors else ""))  # fmt: skip
    if report.errors:
        raise typer.Exit(1)


@roster_cli.command("export")
def roster_export(
    code: Annotated[str, typer.Argument(help="root of the subtree, e.g. 610827 for the county")],
    output: Annotated[Path, typer.Option("-o", "--output", help=".xlsx file to write")],
) -> None:
    """Write the current posts under CODE as .xlsx, in the columns `roster import` reads."""
    from grid.exceptions import NodeNotFound
    from grid.roster import export_roster

    async def export() -> int:
        async with _connection() as conn:
            return await export_roster(conn=conn, code=code, path=output)

    try:
        count = _run(export())
    except NodeNotFound as exc:
        err.print(f"[red]错误：[/red]{exc.message}")
        raise typer.Exit(1) from None
    err.print(f"已把 {count:,} 个岗位写入 {output}")


@users_cli.command("create-for-posts")
def users_create_for_posts(
    code: Annotated[str, typer.Argument(help="node code; everyone holding a post under it gets an account")],
    output: Annotated[Path, typer.Option("-o", "--output", help="CSV file to write (created, readable by you only)")],
    county: CountyOption = None,
) -> None:
    """Accounts for an imported roster, with initial passwords written once to a CSV file.

    Only the passwords' hashes are stored: hand the file out, then delete it.
    """
    import csv
    import os

    from app.accounts import service
    from grid.exceptions import NodeNotFound
    from grid.sheets import csv_text

    settings = get_settings()
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        err.print(f"[red]错误：[/red]{output} 已存在；请换一个新文件名（初始密码文件从不覆盖）")
        raise typer.Exit(1) from None

    async def create() -> Any:
        async with _connection() as conn:
            return await service.create_accounts_for_posts(
                conn=conn, settings=settings, county_code=county or settings.county_code, node_code=code, actor=None,
                ip="cli",
            )  # fmt: skip

    try:
        made, skipped = _run(create())
    except NodeNotFound as exc:
        os.close(fd)
        output.unlink()
        err.print(f"[red]错误：[/red]{exc.message}")
        raise typer.Exit(1) from None
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["phone", "name", "node_code", "initial_password"])
        writer.writerows([csv_text(v) for v in (a.phone, a.name, a.node_code, a.password)] for a in made)
    err.print(f"已在 {code} 下创建 {len(made)} 个账号；初始密码在 {output}（仅你可读），发放后请删除")
    if skipped:
        err.print(f"跳过了 {len(skipped)} 位任职人员：手机号不是 11 位手机号码")


stats_cli = typer.Typer(help="The county's figures (docs/statistics.md).", no_args_is_help=True)
cli.add_typer(stats_cli, name="stats")


@stats_cli.command("report")
def stats_report(
    quarter: Annotated[str, typer.Option(help="the county's quarter, e.g. 2026Q3 (1 July to 30 September)")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="pdf or xlsx (default: from --out, else pdf)")] = "",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="file to write (default: named after the quarter)")
    ] = None,
    township: Annotated[str | None, typer.Option(help="a township's code: its report only")] = None,
    county: CountyOption = None,
) -> None:
    """Write the quarterly report for the county joint meeting (联席会议) as PDF or XLSX: the
    quarter's figures for the whole county, or one township, every time in the county's zone."""
    from datetime import UTC, datetime

    from app import documents
    from grid.exceptions import GridError, InvalidInput, NodeNotFound
    from grid.repository import nodes as node_sql
    from grid.stats import report as quarterly
    from grid.stats.exceptions import NoDataScope

    settings = get_settings()
    fmt = (fmt or (out.suffix.lstrip(".").lower() if out and out.suffix else "pdf")).lower()
    if fmt not in ("pdf", "xlsx"):
        err.print(f"[red]错误：[/red]不认识的格式“{fmt}”；请用 pdf 或 xlsx", soft_wrap=True)
        raise typer.Exit(2)
    try:
        q = quarterly.Quarter.parse(quarter)
    except InvalidInput as exc:
        err.print(f"[red]错误：[/red]{exc.message}", soft_wrap=True)
        raise typer.Exit(2) from None

    async def build() -> quarterly.QuarterReport:
        async with _connection() as conn:
            code = county or settings.county_code
            scope = await quarterly.county_scope(conn, county_code=code)
            root = await node_sql.node_brief(conn, code=code)
            place = root["name"] if root else settings.county_name
            return await quarterly.build(conn=conn, scope_paths=scope, quarter=q, now=datetime.now(UTC),
                                         place=place, township=township,
                                         exclusions=settings.stats_exclusions())  # fmt: skip

    try:
        r = _run(build())
        body = quarterly.to_xlsx(r) if fmt == "xlsx" else documents.figures_pdf(r, font=settings.pdf_font)
    except (GridError, documents.FontMissing) as exc:
        message = exc.message if isinstance(exc, GridError) else str(exc)
        hint = "；本县的边界尚未载入时请先运行 wuzhang demo load" if isinstance(exc, NodeNotFound | NoDataScope) else ""
        err.print(f"[red]错误：[/red]{message}{hint}", soft_wrap=True)
        raise typer.Exit(2 if isinstance(exc, InvalidInput) else 1) from None
    path = out or Path(quarterly.file_name(r, fmt))
    path.write_bytes(body)
    s = r.summary
    err.print(f"已写入 {path}：{r.title}，{q.title}；收案 {s['received']:,} 件，"
              f"调解成功率 {quarterly.percent(s['success_rate'])}", soft_wrap=True)  # fmt: skip


@stats_cli.command("rollup")
def stats_rollup(
    rebuild: Annotated[bool, typer.Option(help="copy every case afresh (after a change of the node tree)")] = False,
) -> None:
    """Bring the figures' daily roll-up up to date now (the worker does it every tick):
    the cases touched since the last refresh, or all of them the first time or with
    --rebuild. Safe beside running workers: refreshes take turns."""
    from datetime import UTC, datetime

    from grid.stats import rollup

    async def refresh() -> rollup.Refreshed:
        async with _connection() as conn:
            return await rollup.refresh(conn=conn, now=datetime.now(UTC), rebuild=rebuild)

    t0 = time.perf_counter()
    done = _run(refresh())
    what = "重建" if done.rebuilt else "更新"
    err.print(f"统计日汇总已{what}：{done.cases:,} 件案件，用时 {time.perf_counter() - t0:.1f} 秒")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
