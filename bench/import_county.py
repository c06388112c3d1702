"""Time a boundary import of the generated county from GeoPackage, phase by phase.

    .venv/bin/python bench/import_county.py [--scale 17] [--keep-db]

Generates `geo.demo.generate(scale)`, writes it to .data/bench/county_s{scale}.gpkg
(reused when present), imports it into the empty migrated database
`wuzhang_bench_import_s{scale}` through the same code as `wuzhang grid import`,
then imports the same file again (which must change nothing), and prints where the
time goes: reading (pyogrio + pyproj), staging (COPY), each check, writing, commit.
"""
from __future__ import annotations

import argparse
import time

from _common import ROOT, create_database, database_exists, drop_database, migrate  # noqa: I001
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from geo import demo
from geo.exporter import write_gpkg
from geo.importer import read_boundaries
from grid.imports import import_boundaries


def _write_county(scale: int) -> tuple[str, int]:
    path = ROOT / ".data" / "bench" / f"county_s{scale}.gpkg"
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


def _run(url: str, path: str, label: str) -> None:
    engine = create_engine(url, connect_args={"options": "-c max_parallel_workers_per_gather=0"})
    steps: dict[str, float] = {}
    last = [time.perf_counter(), ""]

    def on_step(name: str) -> None:
        now = time.perf_counter()
        if last[1]:
            steps[last[1]] = now - last[0]
            print(f"    ... {last[1]} {steps[last[1]]:.1f} s", flush=True)
        last[:] = [now, name]

    t_start = time.perf_counter()
    boundary = read_boundaries(path)
    t_read = time.perf_counter() - t_start
    with Session(engine) as session:
        report = import_boundaries(session=session, county_code=demo.COUNTY_CODE, records=boundary.records,
                                   source=path, crs=boundary.crs, on_step=on_step)  # fmt: skip
        on_step("commit")
        session.commit()
        on_step("end")
    total = time.perf_counter() - t_start
    engine.dispose()
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
    if database_exists(name):
        drop_database(name)
    url = create_database(name)
    try:
        migrate(url)
        if leaves > 0:
            print(f"{leaves:,} leaf polygons")
        _run(url, path, "first import into an empty database")
        _run(url, path, "same file again")
    finally:
        if not args.keep_db:
            drop_database(name)


if __name__ == "__main__":
    main()
