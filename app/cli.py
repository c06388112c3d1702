"""`wuzhang`: the admin command line."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from app.db import make_engine
from app.settings import get_settings

cli = typer.Typer(help="wuzhang 五长: grid-based conflict management.", no_args_is_help=True)
demo_cli = typer.Typer(help="The synthetic demo county.", no_args_is_help=True)
grid_cli = typer.Typer(help="The grid: nodes and their polygons.", no_args_is_help=True)
cli.add_typer(demo_cli, name="demo")
cli.add_typer(grid_cli, name="grid")
err = Console(stderr=True)


def _session() -> Session:
    return Session(make_engine(get_settings()))


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "",
    port: Annotated[int, typer.Option(help="port")] = 0,
    workers: Annotated[int, typer.Option(help="HTTP worker processes")] = 1,
    with_worker: Annotated[bool, typer.Option(help="also run the background worker beside the API")] = True,
) -> None:
    """Serve the API, with the background worker beside it."""
    import subprocess

    import uvicorn

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    base = f"http://{host}:{port}"
    err.print(f"[bold]wuzhang[/bold] serving on {base}")
    err.print(f"  API docs   {base}/docs")
    err.print(f"  locate     {base}/api/v1/grid/locate?lon=110.07437&lat=37.77809&floor=8")
    err.print(f"  health     {base}/healthz  {base}/readyz")
    background = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"]) if with_worker else None
    try:
        uvicorn.run("app.main:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")
    finally:
        if background is not None:
            background.terminate()
            background.wait(timeout=10)


@cli.command()
def worker(
    once: Annotated[bool, typer.Option(help="sweep once and exit")] = False,
    now: Annotated[str | None, typer.Option(help="pretend it is this ISO time (drills and tests)")] = None,
) -> None:
    """Run the background worker: deadline warnings and automatic escalation."""
    import logging
    from datetime import datetime

    from app import worker as worker_mod

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    fixed = datetime.fromisoformat(now) if now else None
    worker_mod.run(get_settings(), clock=(lambda: fixed) if fixed else worker_mod.utc_now, once=once)


@demo_cli.command("load")
def demo_load(
    scale: Annotated[int, typer.Option(min=1, help="multiplies the leaf polygons (17 gives >100k)")] = 1,
    seed: Annotated[int, typer.Option(help="same seed, same county")] = 610827,
) -> None:
    """Generate the demo county and load it, unless a county is loaded already."""
    from geo import demo
    from grid import repository, service

    settings = get_settings()
    with _session() as session:
        if repository.county_loaded(session, code=demo.COUNTY_CODE):
            err.print(f"demo county {demo.COUNTY_CODE} is already loaded; nothing to do")
            return
        t0 = time.perf_counter()
        county = demo.generate(scale=scale, seed=seed)
        t1 = time.perf_counter()
        with err.status(f"loading {len(county.nodes):,} nodes and {len(county.posts):,} posts"):
            service.load_county(
                session=session, county_code=settings.county_code, nodes=county.nodes, posts=county.posts
            )
            session.commit()
        t2 = time.perf_counter()
    err.print(
        f"loaded {demo.COUNTY_NAME}: {len(county.nodes):,} nodes ({len(county.leaf_polygons):,} leaf polygons), "
        f"{len(county.posts):,} posts; generated in {t1 - t0:.1f} s, written in {t2 - t1:.1f} s"
    )


@grid_cli.command("export")
def grid_export(
    code: Annotated[str, typer.Argument(help="code of the subtree's root, e.g. 610827 for the county")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="file to write; stdout if omitted")] = None,
) -> None:
    """Export a subtree as a GeoJSON FeatureCollection (WGS-84)."""
    from grid import repository, service
    from grid.exceptions import NodeNotFound

    out = output.open("w", encoding="utf-8") if output else sys.stdout
    count = 0
    try:
        with _session() as session:
            try:
                service.get_node(session=session, code=code)
            except NodeNotFound as exc:
                err.print(f"[red]error:[/red] {exc.message}")
                raise typer.Exit(1) from None
            out.write('{"type": "FeatureCollection", "features": [\n')
            for row in repository.subtree_features(session, code=code):
                props = {k: row[k] for k in ("code", "name", "level", "chain", "parent_code", "floor_from", "floor_to")}
                feature = {"type": "Feature", "id": row["code"], "properties": props,
                           "geometry": json.loads(row["geometry"]) if row["geometry"] else None}  # fmt: skip
                out.write(("" if count == 0 else ",\n") + json.dumps(feature, ensure_ascii=False))
                count += 1
            out.write("\n]}\n")
    finally:
        if output:
            out.close()
    if output:
        err.print(f"wrote {count:,} features to {output}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
