"""`wuzhang grid import | check | export` through typer, on the test's rolled-back connection."""
from __future__ import annotations

import pyogrio
import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import app.cli
from tests.boundary_files import mbox, replace, tiny_county, write


@pytest.fixture
def cli(db, monkeypatch):
    connection = db.connection()
    monkeypatch.setattr(app.cli, "_session", lambda: Session(bind=connection, join_transaction_mode="create_savepoint"))
    runner = CliRunner()
    return lambda *args: runner.invoke(app.cli.cli, list(args))


def test_import_then_check_then_export_a_geopackage(cli, tmp_path):
    path = write(tmp_path / "tiny.geojson", tiny_county())
    dry = cli("grid", "import", str(path), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would write (15 new" in " ".join(dry.output.split())
    done = cli("grid", "import", str(path))
    assert done.exit_code == 0 and "wrote (15 new" in " ".join(done.output.split())
    assert cli("grid", "check", "999000").exit_code == 0
    out = tmp_path / "out.gpkg"
    res = cli("grid", "export", "999000", "--format", "gpkg", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert pyogrio.read_info(str(out))["features"] == 15


def test_a_refused_import_exits_1_and_names_the_code(cli, tmp_path):
    bad = write(tmp_path / "bad.geojson", replace(tiny_county(), "G1", geometry=mbox(0, 0, 500, 520)))
    res = cli("grid", "import", str(bad), "--json")
    assert res.exit_code == 1
    assert "sibling_overlap" in res.output and "G1" in res.output and "wrote nothing" in res.output
