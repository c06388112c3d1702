"""The county key (issue 15 §2): every county table carries `county_code`, and its keys do.

A deployment may hold many counties and grow onto Citus, which spreads a table's rows
over nodes by one column and can only enforce a key, or follow a foreign key, within the
rows of one value of it. So:

- every table whose rows belong to one county gets `county_code varchar(12) NOT NULL`,
  filled from its parent row;
- its primary key becomes (id, county_code) (id first: `WHERE id = $1` keeps its index on
  plain PostgreSQL), its unique constraints and unique indexes gain county_code, and its
  foreign keys to other county tables become (x_id, county_code) -> parent (id, county_code);
- with the `citus` extension present, the catalogues become reference tables and the
  county tables are distributed by county_code, colocated with `node`.

The tables are listed here, not found, so a table added later (a new roll-up) is a line
in a list; tests/integration/test_county_key.py fails on a table in neither list.
docs/scale.md, "The county key", gives the decisions and why.

Downgrade undoes it on plain PostgreSQL; on Citus it raises (undistributing is a
deliberate operator's step, not a migration's).

Revision ID: 0128
Revises: 0124
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0128"
down_revision = "0127"
branch_labels = None
depends_on = None

# The deployment's own tables, not a county's: small, read everywhere; Citus reference tables.
# The roll-ups are derived and rebuilt from the cases (grid/stats); they stay whole until
# the roll-up is keyed by county (docs/scale.md).
REFERENCE_TABLES = (
    "category",
    "routing_rule_set",
    "push_counter",
    "login_throttle",
    "stats_rollup",
    "stats_case",
    "stats_stint",
    "stats_late",
    "stats_day",
    "stats_month",
    "stats_hours",
    "stats_tier_month",
    "stats_grid_month",
    "stats_county_hours",
)

# The county tables, parents before children (Citus distributes them in this order).
# For a table that lacks county_code: its column naming the parent row, and the parent.
COUNTY_TABLES: dict[str, tuple[str, str] | None] = {
    "node": None,
    "node_piece": ("node_id", "node"),
    "person": None,
    "post": None,
    "department": None,
    "user_account": None,
    "grant": None,
    "refresh_token": ("user_id", "user_account"),
    "audit_log": None,
    "device": None,
    "backlog_batch": None,
    "hall_member": ("node_id", "node"),
    "case_file": None,
    "case_party": ("case_id", "case_file"),
    "case_recipient": ("case_id", "case_file"),
    "case_section": ("case_id", "case_file"),
    "case_event": ("case_id", "case_file"),
    "case_lateness": ("case_id", "case_file"),
    "attachment": ("case_id", "case_file"),
    "case_publication": ("case_id", "case_file"),
    # No foreign key on case_id (migration 0109): the claim comes before the case is read.
    "case_request": ("person_id", "person"),
    "notification": None,
    "push_unreachable_run": ("case_id", "case_file"),
    "case_unit": ("case_id", "case_file"),
    "case_visit": None,
    "case_reflow": ("case_id", "case_file"),
    "case_duty": ("case_id", "case_file"),
    "case_work_group": ("case_id", "case_file"),
    "assistance_referral": None,
    "duty_day": None,
    "meeting": None,
    "meeting_task": ("meeting_id", "meeting"),
    "meeting_task_note": ("task_id", "meeting_task"),
}

# Foreign keys dropped, not keyed: a grant lives in its node's county, and its account may
# belong to another (the city role, 市级, holds grants on several counties' roots).
UNKEYED_FOREIGN_KEYS = {"fk_grant_user_id_user_account": ('"grant"', "user_id", "user_account")}

APP_ROLE = "wuzhang_app"  # the service's role (migration 0112)

# Append-only tables whose trigger refuses the backfill's UPDATE (the owner's, once).
APPEND_ONLY_TRIGGERS = {"case_event": "case_event_append_only"}

# The node trigger's pieces now carry the node's county (migration 0002 made it without).
NODE_PIECES_SQL = """
CREATE OR REPLACE FUNCTION node_refresh_pieces() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM node_piece WHERE node_id = NEW.id AND county_code = NEW.county_code;
  IF NEW.geom IS NOT NULL AND NEW.retired_at IS NULL THEN
    INSERT INTO node_piece (node_id, county_code, depth, code, geom)
    SELECT NEW.id, NEW.county_code, NEW.depth, NEW.code, d.geom
      FROM ST_Subdivide(NEW.geom, 255) AS s, ST_Dump(s) AS d
     WHERE GeometryType(d.geom) = 'POLYGON';
  END IF;
  RETURN NULL;
END
$$;
"""

NODE_PIECES_SQL_0002 = """
CREATE OR REPLACE FUNCTION node_refresh_pieces() RETURNS trigger LANGUAGE plpgsql AS $$
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
"""

_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows(sql: str, **params: object) -> list[sa.Row]:
    return list(op.get_bind().execute(sa.text(sql), params))


def _foreign_keys() -> list[sa.Row]:
    """Foreign keys between county tables: name, table, columns, parent, its columns, on delete."""
    return _rows(
        """
SELECT c.conname AS name, c.conrelid::regclass::text AS tab, c.confrelid::regclass::text AS parent,
       c.confdeltype AS on_delete,
       array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i) AS cols,
       array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
               JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) AS parent_cols
  FROM pg_constraint c
 WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
   AND trim(both '"' from c.conrelid::regclass::text) = ANY (:tables)
   AND trim(both '"' from c.confrelid::regclass::text) = ANY (:tables)
 ORDER BY c.conname
""",
        tables=list(COUNTY_TABLES),
    )


def _keys(table: str, kinds: str) -> list[sa.Row]:
    """The table's primary key ('p') and unique constraints ('u'): name, kind, columns."""
    return _rows(
        """
SELECT c.conname AS name, c.contype AS kind,
       array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i) AS cols
  FROM pg_constraint c
 WHERE c.conrelid = CAST(:t AS regclass) AND c.contype = ANY (:kinds)
""",
        t=_q(table),
        kinds=list(kinds),
    )


def _unique_indexes(table: str) -> list[sa.Row]:
    """Unique indexes that back no constraint (the partial ones): name, columns, predicate."""
    return _rows(
        """
SELECT ci.relname AS name, pg_get_expr(i.indpred, i.indrelid) AS pred, i.indexprs IS NOT NULL AS has_exprs,
       array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(n, o)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o) AS cols
  FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
 WHERE i.indrelid = CAST(:t AS regclass) AND i.indisunique
   AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)
""",
        t=_q(table),
    )


def _add_foreign_key(fk: sa.Row, cols: list[str], parent_cols: list[str]) -> None:
    on_delete = _ACTIONS[fk.on_delete]
    if fk.on_delete == "n" and "county_code" in cols:
        # SET NULL must leave the county alone (a NOT NULL column): only the id goes.
        on_delete = f"SET NULL ({', '.join(_q(c) for c in cols if c != 'county_code')})"
    op.execute(
        f"ALTER TABLE {fk.tab} ADD CONSTRAINT {_q(fk.name)} FOREIGN KEY ({', '.join(_q(c) for c in cols)})"
        f" REFERENCES {fk.parent} ({', '.join(_q(c) for c in parent_cols)}) ON DELETE {on_delete}"
    )


def _rekey(add: bool) -> list[tuple[sa.Row, list[str], list[str]]]:
    """Primary keys, unique constraints and unique indexes of the county tables with (add)
    or without county_code; names, predicates and actions are kept. The foreign keys
    between county tables are dropped, and returned to be added again (`_add_foreign_key`)
    with their new columns: Citus distributes a table only when no local table refers to it."""

    def change(cols: list[str]) -> list[str] | None:
        """The new columns, or None to leave the key alone: keys that had county_code
        before (first: department, backlog_batch, duty_day) keep it both ways."""
        if add:
            return None if "county_code" in cols else [*cols, "county_code"]
        return cols[:-1] if len(cols) > 1 and cols[-1] == "county_code" else None

    def columns(cols: list[str]) -> str:
        return ", ".join(_q(c) for c in cols)

    fks = [fk for fk in _foreign_keys() if change(fk.cols) is not None]
    for fk in fks:  # they hang on the parents' keys
        op.execute(f"ALTER TABLE {fk.tab} DROP CONSTRAINT {_q(fk.name)}")
    for table in COUNTY_TABLES:
        for key in _keys(table, "pu"):
            cols = change(key.cols)
            if cols is None:
                continue
            kind = "PRIMARY KEY" if key.kind == "p" else "UNIQUE"
            op.execute(
                f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(key.name)},"
                f" ADD CONSTRAINT {_q(key.name)} {kind} ({columns(cols)})"
            )
        for index in _unique_indexes(table):
            cols = change(index.cols)
            if cols is None:
                continue
            if index.has_exprs:
                raise RuntimeError(f"unique index {index.name} on an expression: key it by county by hand")
            where = f" WHERE {index.pred}" if index.pred else ""
            op.execute(f"DROP INDEX {_q(index.name)}")
            op.execute(f"CREATE UNIQUE INDEX {_q(index.name)} ON {_q(table)} ({columns(cols)}){where}")
    return [(fk, change(fk.cols) or [], change(fk.parent_cols) or []) for fk in fks]


def _citus() -> bool:
    return bool(_rows("SELECT 1 FROM pg_extension WHERE extname = 'citus'"))


def upgrade() -> None:
    for table, parent in COUNTY_TABLES.items():
        if parent is None:
            continue
        column, parent_table = parent
        op.execute(f"ALTER TABLE {_q(table)} ADD COLUMN county_code varchar(12)")
        trigger = APPEND_ONLY_TRIGGERS.get(table)
        if trigger:
            op.execute(f"ALTER TABLE {_q(table)} DISABLE TRIGGER {_q(trigger)}")
        op.execute(
            f"UPDATE {_q(table)} t SET county_code = p.county_code FROM {_q(parent_table)} p"
            f" WHERE p.id = t.{_q(column)}"
        )
        if trigger:
            op.execute(f"ALTER TABLE {_q(table)} ENABLE TRIGGER {_q(trigger)}")
        op.execute(f"ALTER TABLE {_q(table)} ALTER COLUMN county_code SET NOT NULL")
    fks = _rekey(add=True)
    op.execute(NODE_PIECES_SQL)
    if _citus():
        _distribute()
    for fk, cols, parent_cols in fks:
        if fk.name not in UNKEYED_FOREIGN_KEYS:
            _add_foreign_key(fk, cols, parent_cols)


def _distribute() -> None:
    # Citus refuses tables with triggers unless told: ours run on each shard, within its county.
    op.execute("SET LOCAL citus.enable_unsafe_triggers = on")
    for table in REFERENCE_TABLES:
        op.execute(f"SELECT create_reference_table('{_q(table)}')")
    first = next(iter(COUNTY_TABLES))
    for table in COUNTY_TABLES:
        colocate = "none" if table == first else first
        op.execute(f"SELECT create_distributed_table('{_q(table)}', 'county_code', colocate_with => '{colocate}')")
    # The shards get the default privileges, not the tables' REVOKEs (the append-only rules
    # of 0112, 0114, 0117, ...); a REVOKE on a distributed table reaches its shards.
    for row in _rows(
        """
SELECT c.relname AS tab, p.priv FROM pg_class c, unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p(priv)
 WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY (:tables)
   AND EXISTS (SELECT FROM pg_roles WHERE rolname = :app) AND NOT has_table_privilege(:app, c.oid, p.priv)
""",
        tables=[*REFERENCE_TABLES, *COUNTY_TABLES],
        app=APP_ROLE,
    ):
        op.execute(f"REVOKE {row.priv} ON {_q(row.tab)} FROM {APP_ROLE}")


def downgrade() -> None:
    if _citus():
        raise RuntimeError("0128 does not undo a Citus distribution: undistribute the tables first (docs/scale.md)")
    for fk, cols, parent_cols in _rekey(add=False):
        _add_foreign_key(fk, cols, parent_cols)
    for name, (table, column, referred) in UNKEYED_FOREIGN_KEYS.items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {_q(name)} FOREIGN KEY ({column}) REFERENCES {referred} (id)")
    op.execute(NODE_PIECES_SQL_0002)
    for table, parent in reversed(COUNTY_TABLES.items()):
        if parent is not None:
            op.execute(f"ALTER TABLE {_q(table)} DROP COLUMN county_code")
