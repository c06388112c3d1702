"""Time a boundary import of the generated county from GeoPackage, phase by phase.

    .venv/bin/python bench/import_county.py [--scale 17] [--keep-db]

Generates `geo.demo.generate(scale)`, writes it to .data/bench/county_s{scale}.gpkg
(reused when present), imports it into the empty migrated database
`wuzhang_bench_import_s{scale}` through the same code as `wuzhang grid import`
(grid.imports.import_boundaries in one transaction, on an async psycopg connection
with the service's session settings), then imports the same file again (which must
change nothing), and prints where the time goes: reading (pyogrio + pyproj), staging
(COPY), each check, writing, commit.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import _common as c  # first: it puts the project root on sys.path
import psycopg

from geo import demo
from geo.exporter import write_gpkg
from geo.importer import BoundaryFile, read_boundaries
from grid.imports import Step, import_boundaries
from grid.validation import Report


def _write_county(scale: int) -> tuple[str, int]:
    path = c.ROOT / ".data" / "bench" / f"county_s{scale}.gpkg"
    county = None
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        county = demo.generate(scale=scale)
        rows = [
            {"code": n.code, "name": n.name, "level": n.level, "chain": n.chain, "parent_code": n.parent_code,
             "floor_from": n.floor_from, "floor_to": n.floor_to, "wkb": n.geom.wkb if n.geom is not None else None}
            for n in county.nodes
        ]  # fmt: skip
        write_gpkg(rows, path)
        print(f"generated and wrote {len(rows):,} nodes to {path} in {time.perf_counter() - t0:.1f} s")
    return str(path), len(county.leaf_polygons) if county else -1


async def _import(url: str, boundary: BoundaryFile, path: str, on_step: Step) -> Report:
    """As `wuzhang grid import`: one transaction, written only when every check passed."""
    async with await c.connect(url) as conn:
        async with conn.transaction() as tx:
            report = await import_boundaries(conn=conn, county_code=demo.COUNTY_CODE, records=boundary.records,
                                             source=path, crs=boundary.crs, on_step=on_step)  # fmt: skip
            if not report.ok:
                raise psycopg.Rollback(tx)
            on_step("commit")
        on_step("end")
    return report


def _run(url: str, path: str, label: str) -> None:
    steps: dict[str, float] = {}
    last: list[float | str] = [time.perf_counter(), ""]

    def on_step(name: str) -> None:
        now = time.perf_counter()
        if last[1]:
            steps[str(last[1])] = now - float(last[0])
            print(f"    ... {last[1]} {steps[str(last[1])]:.1f} s", flush=True)
        last[:] = [now, name]

    t_start = time.perf_counter()
    boundary = read_boundaries(path)
    t_read = time.perf_counter() - t_start
    report = asyncio.run(_import(url, boundary, path, on_step))
    total = time.perf_counter() - t_start
    assert report.ok, report.errors[:5]
    print(f"\n{label}: {report.features:,} features; {report.inserted:,} new, {report.updated:,} changed, "
          f"{report.unchanged:,} unchanged; {len(report.warnings)} warnings; total {total:.1f} s")  # fmt: skip
    print(f"  {'reading (pyogrio, pyproj)':<28} {t_read:7.1f} s")
    for name, seconds in steps.items():
        print(f"  {name:<28} {seconds:7.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=17)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    path, leaves = _write_county(args.scale)
    name = f"wuzhang_bench_import_s{args.scale}"
    c.drop_database(name)
    url = c.create_database(name)
    try:
        c.migrate(url)
        if leaves > 0:
            print(f"{leaves:,} leaf polygons")
        _run(url, path, "first import into an empty database")
        _run(url, path, "same file again")
    finally:
        if not args.keep_db:
            c.drop_database(name)


if __name__ == "__main__":
    main()
