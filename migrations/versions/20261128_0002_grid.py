"""The grid: nodes with polygons and a materialised path, persons and posts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from grid.models import LTree

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Mirrors grid.levels.child_error; tests/integration/test_schema.py checks they agree.
LEVEL_RULE_SQL = """
CREATE FUNCTION node_level_allowed(parent_level text, parent_chain text, child_level text, child_chain text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN parent_level IS NULL THEN child_level = 'county' AND child_chain IS NULL
    WHEN parent_level = 'county' THEN child_level = 'township' AND child_chain IS NULL
    WHEN parent_level = 'township' THEN child_level = 'area' AND child_chain IN ('urban', 'rural')
    ELSE child_chain IS NOT DISTINCT FROM parent_chain
         AND (parent_chain, parent_level, child_level) IN (
           ('urban', 'area', 'community'), ('urban', 'community', 'grid'),
           ('urban', 'grid', 'unit'), ('urban', 'unit', 'floor'),
           ('rural', 'area', 'subarea'), ('rural', 'subarea', 'village'),
           ('rural', 'village', 'group'), ('rural', 'group', 'household'))
  END
$$;
"""

# Path, depth, chain and county code follow from the parent; the level must fit it.
NODE_BEFORE_SQL = """
CREATE FUNCTION node_before_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  p node%ROWTYPE;
BEGIN
  IF NEW.parent_id IS NULL THEN
    p := NULL;
  ELSE
    SELECT * INTO p FROM node WHERE id = NEW.parent_id;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'parent node % does not exist', NEW.parent_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NEW.chain IS NULL AND NEW.level NOT IN ('county', 'township', 'area') THEN
      NEW.chain := p.chain;
    END IF;
    NEW.county_code := COALESCE(NEW.county_code, p.county_code);
  END IF;
  IF NOT node_level_allowed(p.level, p.chain, NEW.level, NEW.chain) THEN
    RAISE EXCEPTION 'a % (%) cannot sit under a % (%)', NEW.level, COALESCE(NEW.chain, '-'),
      COALESCE(p.level, 'nothing'), COALESCE(p.chain, '-')
      USING ERRCODE = 'check_violation', CONSTRAINT = 'node_level_allowed';
  END IF;
  IF p.id IS NOT NULL AND p.path <@ (SELECT path FROM node WHERE id = NEW.id) AND TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'node % cannot move under its own descendant', NEW.code USING ERRCODE = 'check_violation';
  END IF;
  NEW.depth := COALESCE(p.depth + 1, 0);
  NEW.path := CASE WHEN p.id IS NULL THEN text2ltree(NEW.id::text)
                   ELSE p.path || text2ltree(NEW.id::text) END;
  IF TG_OP = 'UPDATE' THEN
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER node_before_write BEFORE INSERT OR UPDATE OF parent_id, level, chain ON node
  FOR EACH ROW EXECUTE FUNCTION node_before_write();

CREATE FUNCTION node_move_subtree() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE node SET path = NEW.path || subpath(path, nlevel(OLD.path))
   WHERE path <@ OLD.path AND id <> NEW.id;
  RETURN NULL;
END
$$;

CREATE TRIGGER node_move_subtree AFTER UPDATE OF parent_id ON node
  FOR EACH ROW WHEN (OLD.path IS DISTINCT FROM NEW.path) EXECUTE FUNCTION node_move_subtree();
"""

# Point tests run against small pieces, never a county outline of thousands of vertices.
NODE_PIECES_SQL = """
CREATE FUNCTION node_refresh_pieces() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM node_piece WHERE node_id = NEW.id;
  IF NEW.geom IS NOT NULL AND NEW.retired_at IS NULL THEN
    INSERT INTO node_piece (node_id, depth, code, geom)
    SELECT NEW.id, NEW.depth, NEW.code, d.geom
      FROM ST_Subdivide(NEW.geom, 255) AS s, ST_Dump(s) AS d
     WHERE GeometryType(d.geom) = 'POLYGON';
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER node_pieces_insert AFTER INSERT ON node
  FOR EACH ROW WHEN (NEW.geom IS NOT NULL) EXECUTE FUNCTION node_refresh_pieces();
CREATE TRIGGER node_pieces_update AFTER UPDATE ON node
  FOR EACH ROW WHEN (OLD.geom IS DISTINCT FROM NEW.geom OR OLD.retired_at IS DISTINCT FROM NEW.retired_at
                     OR OLD.code IS DISTINCT FROM NEW.code OR OLD.depth IS DISTINCT FROM NEW.depth)
  EXECUTE FUNCTION node_refresh_pieces();
"""


def upgrade() -> None:
    op.create_table(
        "node",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("county_code", sa.String(12), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("chain", sa.String(8), nullable=True),
        sa.Column("parent_id", sa.BigInteger(), sa.ForeignKey("node.id", name="fk_node_parent_id_node"), nullable=True),
        sa.Column("path", LTree(), server_default=sa.text("''::ltree"), nullable=False),
        sa.Column("depth", sa.SmallInteger(), nullable=False),
        sa.Column("floor_from", sa.SmallInteger(), nullable=True),
        sa.Column("floor_to", sa.SmallInteger(), nullable=True),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_node"),
        sa.UniqueConstraint("code", name="uq_node_code"),
        sa.CheckConstraint(
            "level IN ('county','township','area','community','grid','unit','floor',"
            "'subarea','village','group','household')",
            name=op.f("ck_node_level_known"),
        ),
        sa.CheckConstraint("chain IS NULL OR chain IN ('urban','rural')", name=op.f("ck_node_chain_known")),
        sa.CheckConstraint("(level = 'floor') = (geom IS NULL)", name=op.f("ck_node_geom_unless_floor")),
        sa.CheckConstraint(
            "(level = 'floor') = (floor_from IS NOT NULL AND floor_to IS NOT NULL)"
            " AND (floor_from IS NULL OR floor_from <= floor_to)",
            name=op.f("ck_node_floor_range"),
        ),
    )
    op.create_index("ix_node_parent_id", "node", ["parent_id"])
    op.create_index("ix_node_path", "node", ["path"], postgresql_using="gist")
    op.create_index("ix_node_geom", "node", ["geom"], postgresql_using="gist")
    op.create_index("ix_node_level_code", "node", ["level", "code"])

    op.create_table(
        "node_piece",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "node_id",
            sa.BigInteger(),
            sa.ForeignKey("node.id", ondelete="CASCADE", name="fk_node_piece_node_id_node"),
            nullable=False,
        ),
        sa.Column("depth", sa.SmallInteger(), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("geom", Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_node_piece"),
    )
    op.create_index("ix_node_piece_node_id", "node_piece", ["node_id"])
    op.create_index("ix_node_piece_geom", "node_piece", ["geom"], postgresql_using="gist")

    op.create_table(
        "person",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("county_code", sa.String(12), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_person"),
        sa.UniqueConstraint("phone", name="uq_person_phone"),
    )

    op.create_table(
        "post",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("county_code", sa.String(12), nullable=False),
        sa.Column("node_id", sa.BigInteger(), sa.ForeignKey("node.id", name="fk_post_node_id_node"), nullable=False),
        sa.Column(
            "person_id", sa.BigInteger(), sa.ForeignKey("person.id", name="fk_post_person_id_person"), nullable=False
        ),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_post"),
        sa.CheckConstraint("role IN ('chief','deputy')", name=op.f("ck_post_role_known")),
        sa.CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name=op.f("ck_post_ends_after_start")),
    )
    op.create_index("ix_post_node_id", "post", ["node_id"])
    op.create_index("ix_post_person_id", "post", ["person_id"])
    op.create_index(
        "uq_post_current_chief",
        "post",
        ["node_id"],
        unique=True,
        postgresql_where=sa.text("role = 'chief' AND ended_at IS NULL"),
    )
    op.create_index(
        "uq_post_current_person",
        "post",
        ["node_id", "person_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
    )

    op.execute(LEVEL_RULE_SQL)
    op.execute(NODE_BEFORE_SQL)
    op.execute(NODE_PIECES_SQL)


def downgrade() -> None:
    op.drop_table("post")
    op.drop_table("person")
    op.drop_table("node_piece")
    op.drop_table("node")
    op.execute("DROP FUNCTION IF EXISTS node_refresh_pieces()")
    op.execute("DROP FUNCTION IF EXISTS node_move_subtree()")
    op.execute("DROP FUNCTION IF EXISTS node_before_write()")
    op.execute("DROP FUNCTION IF EXISTS node_level_allowed(text, text, text, text)")
