"""`wuzhang grid import | check | export`, run as a command against a database of the test's own."""

from __future__ import annotations

import asyncio
import os
import sys

import pyogrio

from app.settings import PROJECT_ROOT, libpq_url
from grid.db import connect, fetch_value
from tests.boundary_files import mbox, replace, tiny_county, write


async def run_cli(url, *args):
    """The command in a process of its own (it runs its own event loop); its exit code and
    its output (stdout and stderr together), with the console's line wrapping undone."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *args, env={**os.environ, "DATABASE_URL": url}, cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode, " ".join(out.decode().split())


async def count_nodes(url, codes):
    async with await connect(libpq_url(url)) as conn:
        return await fetch_value(conn, "SELECT count(*) FROM node WHERE code = ANY(%(c)s)", {"c": list(codes)})


async def test_import_then_check_then_export_a_geopackage(fresh_database, tmp_path):
    codes = [f["code"] for f in tiny_county()]
    path = write(tmp_path / "tiny.geojson", tiny_county())
    code, output = await run_cli(fresh_database, "grid", "import", str(path), "--dry-run")
    assert code == 0, output
    assert "试运行，将写入（新增 15" in output
    assert await count_nodes(fresh_database, codes) == 0
    code, output = await run_cli(fresh_database, "grid", "import", str(path))
    assert code == 0 and "已写入（新增 15" in output, output
    assert await count_nodes(fresh_database, codes) == 15
    code, output = await run_cli(fresh_database, "grid", "check", "999000")
    assert code == 0, output
    out = tmp_path / "out.gpkg"
    code, output = await run_cli(fresh_database, "grid", "export", "999000", "--format", "gpkg", "-o", str(out))
    assert code == 0, output
    assert pyogrio.read_info(str(out))["features"] == 15


async def test_a_refused_import_exits_1_and_names_the_code(fresh_database, tmp_path):
    bad = write(tmp_path / "bad.geojson", replace(tiny_county(), "G1", geometry=mbox(0, 0, 500, 520)))
    code, output = await run_cli(fresh_database, "grid", "import", str(bad), "--json")
    assert code == 1, output
    assert "sibling_overlap" in output and "G1" in output and "未写入任何数据" in output
    assert await count_nodes(fresh_database, [f["code"] for f in tiny_county()]) == 0
