"""Vector tiles: stored EPSG:3857 geometries with GiST indexes, and version counters.

Tiles are cut in EPSG:3857; storing the transformed geometry (a generated column, so it
can never drift from `geom`) saves a transform of every row on every tile request.

The two sequences are bumped once per statement that writes `node` or `case_file`; the
tile cache keys on them, so an import or a new case invalidates cached grid tiles.

Revision ID: 0106
Revises: 0105
Create Date: 2026-11-28
"""
from __future__ import annotations

from alembic import op

revision = "0106"
down_revision = "0105"
branch_labels = None
depends_on = None

UP_SQL = """
ALTER TABLE node ADD COLUMN geom_3857 geometry(MultiPolygon, 3857)
  GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED;
CREATE INDEX ix_node_geom_3857 ON node USING gist (geom_3857);

ALTER TABLE case_file ADD COLUMN geom_3857 geometry(Point, 3857)
  GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED;
CREATE INDEX ix_case_file_geom_3857 ON case_file USING gist (geom_3857);

CREATE SEQUENCE tile_grid_version;
CREATE SEQUENCE tile_case_version;

CREATE FUNCTION tile_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nextval(TG_ARGV[0]);
  RETURN NULL;
END
$$;
CREATE TRIGGER node_tile_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON node
  FOR EACH STATEMENT EXECUTE FUNCTION tile_bump_version('tile_grid_version');
CREATE TRIGGER case_file_tile_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON case_file
  FOR EACH STATEMENT EXECUTE FUNCTION tile_bump_version('tile_case_version');
"""

DOWN_SQL = """
DROP TRIGGER IF EXISTS case_file_tile_version ON case_file;
DROP TRIGGER IF EXISTS node_tile_version ON node;
DROP FUNCTION IF EXISTS tile_bump_version();
DROP SEQUENCE IF EXISTS tile_case_version;
DROP SEQUENCE IF EXISTS tile_grid_version;
DROP INDEX IF EXISTS ix_case_file_geom_3857;
ALTER TABLE case_file DROP COLUMN IF EXISTS geom_3857;
DROP INDEX IF EXISTS ix_node_geom_3857;
ALTER TABLE node DROP COLUMN IF EXISTS geom_3857;
"""


def upgrade() -> None:
    op.execute(UP_SQL)


def downgrade() -> None:
    op.execute(DOWN_SQL)
