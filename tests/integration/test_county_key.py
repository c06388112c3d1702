"""The county key (migration 0128, docs/scale.md "The county key"), read from pg_catalog
of the migrated schema: every table but the deployment's catalogues carries a NOT NULL
county_code, and every key of a county table holds it, as Citus needs to distribute
the tables by it."""

from grid.db import fetch_all

# The deployment's tables (Citus reference tables), as docs/scale.md lists them.
REFERENCE_TABLES = {
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
}
NOT_OURS = {"alembic_version", "spatial_ref_sys"}  # Alembic's and PostGIS's

# The column names of a key, in the key's order.
_COLUMNS = (
    "array(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY k(n, o)"
    " JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.n ORDER BY k.o)"
)


async def _tables(db):
    rows = await fetch_all(
        db,
        """
SELECT c.relname AS name,
       (SELECT NOT a.attnotnull FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'county_code'
           AND NOT a.attisdropped) AS nullable
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
""",
    )
    return {r["name"]: r["nullable"] for r in rows if r["name"] not in NOT_OURS}


async def _county_tables(db):
    return {name for name in await _tables(db) if name not in REFERENCE_TABLES}


async def test_every_table_but_the_catalogues_has_a_not_null_county_code(db):
    tables = await _tables(db)
    assert set(tables) >= REFERENCE_TABLES, "a catalogue listed here is no longer a table"
    lacking = sorted(t for t, nullable in tables.items() if t not in REFERENCE_TABLES and nullable is not False)
    assert lacking == []


async def test_primary_keys_and_unique_keys_of_county_tables_hold_county_code(db):
    county = await _county_tables(db)
    keys = await fetch_all(
        db,
        f"""
SELECT c.relname AS tab, ci.relname AS key, i.indisprimary AS primary,
       {_COLUMNS.format(keys="i.indkey", rel="i.indrelid")} AS cols
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ci ON ci.oid = i.indexrelid
 WHERE c.relnamespace = 'public'::regnamespace AND (i.indisunique OR i.indisprimary)
""",
    )
    missing = sorted((k["tab"], k["key"]) for k in keys if k["tab"] in county and "county_code" not in k["cols"])
    assert missing == []
    with_pk = {k["tab"] for k in keys if k["primary"]}
    assert sorted(county - with_pk) == []
    # id first, so `WHERE id = $1` still finds its index on plain PostgreSQL.
    assert sorted(k["tab"] for k in keys if k["primary"] and k["tab"] in county and "id" in k["cols"]
                  and k["cols"][0] != "id") == []  # fmt: skip


async def test_foreign_keys_between_county_tables_carry_county_code_and_none_leave_a_catalogue(db):
    county = await _county_tables(db)
    fks = await fetch_all(
        db,
        f"""
SELECT c.conname AS name, src.relname AS tab, dst.relname AS parent,
       {_COLUMNS.format(keys="c.conkey", rel="c.conrelid")} AS cols,
       {_COLUMNS.format(keys="c.confkey", rel="c.confrelid")} AS parent_cols
  FROM pg_constraint c JOIN pg_class src ON src.oid = c.conrelid JOIN pg_class dst ON dst.oid = c.confrelid
 WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
""",
    )
    assert fks, "no foreign keys found: the query is wrong"
    unkeyed = sorted(
        f["name"]
        for f in fks
        if f["tab"] in county
        and f["parent"] in county
        # the county column must meet the parent's county column, in the same position
        and ("county_code" not in f["cols"] or f["parent_cols"][f["cols"].index("county_code")] != "county_code")
    )
    assert unkeyed == []
    from_catalogues = sorted(f["name"] for f in fks if f["tab"] not in county and f["parent"] in county)
    assert from_catalogues == []
