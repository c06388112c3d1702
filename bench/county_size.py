"""How big a county is: rows and bytes per table, and the ledger's writes per day.

    .venv/bin/python bench/county_size.py [--url URL] [--county 610827] [--year 2023] [--key-cost TABLE ...]

Reads the database at `--url` (default DATABASE_URL; a SQLAlchemy or libpq URL) and prints:

- per table of the `public` schema: rows (`count(*)`), bytes (`pg_total_relation_size`,
  split into heap, indexes and TOAST), bytes per row, and rows per case; with `--county`,
  the county's own rows where the table has `county_code` (at migration 0128 and later);
- the width of `county_code` where a table has it (what the county key adds per row);
- the ledger: events per case (mean, most), and events, notifications and new cases per
  county day (mean over the days of `--year`, or of the span of the cases, and the busiest
  day), and the reports' share per hour of the county's day (for the morning peak);
- with `--key-cost`, the bytes a row that `county_code` costs each table named.

Days and hours are the county's (WUZHANG_TIME_ZONE, Asia/Shanghai by default). It only
reads (`--key-cost` writes temporary tables, gone with its session); nothing is timed. Counting every row is a full scan of each table: seconds at
scale 1, a minute or so at scale 17.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from typing import Any

import _common  # noqa: F401  (first: it puts the project root on sys.path)
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from app.settings import get_settings, libpq_url

TABLES = """
SELECT c.relname AS name,
       pg_total_relation_size(c.oid) AS total,
       pg_indexes_size(c.oid) AS indexes,
       coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
 ORDER BY pg_total_relation_size(c.oid) DESC, c.relname
"""

HAS_COUNTY = """
SELECT table_name FROM information_schema.columns
 WHERE table_schema = 'public' AND column_name = 'county_code'
"""

# Per county day (`zone`), within [first, last]: how many rows had their time on that day.
PER_DAY = """
SELECT count(*) AS n FROM {table}
 WHERE ({column} AT TIME ZONE %(zone)s)::date BETWEEN %(first)s AND %(last)s {county}
 GROUP BY ({column} AT TIME ZONE %(zone)s)::date
"""


def mib(n: float) -> str:
    return f"{n / 2**20:,.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL") or get_settings().database_url)
    parser.add_argument("--county", help="the county's code: its own rows beside each table's")
    parser.add_argument("--year", type=int, help="count the days of this year (the county's); default: the cases' span")
    parser.add_argument("--zone", default=get_settings().time_zone)
    parser.add_argument(
        "--key-cost",
        nargs="*",
        default=[],
        metavar="TABLE",
        help="measure what county_code costs these tables (temporary copies, with and without it)",
    )
    args = parser.parse_args()
    if not args.url:
        sys.exit('no --url and DATABASE_URL is not set: eval "$(bash scripts/dev.sh db-env)" first')
    with psycopg.connect(libpq_url(args.url), autocommit=True, row_factory=dict_row) as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")
        tables(conn, args.county)
        ledger(conn, args.county, args.year, args.zone)
        for table in args.key_cost:
            key_cost(conn, table)


def count(conn: psycopg.Connection[Any], query: sql.SQL | sql.Composed, params: Any = None) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(next(iter(row.values())) or 0)


def tables(conn: psycopg.Connection[Any], county: str | None) -> None:
    keyed = {r["table_name"] for r in conn.execute(HAS_COUNTY)}
    rows = conn.execute(TABLES).fetchall()
    version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    cases = count(conn, sql.SQL("SELECT count(*) FROM case_file"))
    print(f"database {conn.info.dbname}, migration {version['version_num'] if version else '?'}, {cases:,} cases")
    head = f"{'table':<26} {'rows':>11} {'total MiB':>10} {'heap MiB':>9} {'index MiB':>9} {'toast MiB':>9}"
    head += f" {'B/row':>7} {'per case':>9}"
    if county:
        head += f" {'county rows':>12} {'county MiB':>10}"
    print("\n" + head)
    sums: dict[str, float] = dict.fromkeys(("rows", "total", "heap", "indexes", "toast", "county", "county_bytes"), 0)
    widths = []
    for r in rows:
        table = sql.Identifier(r["name"])
        n = count(conn, sql.SQL("SELECT count(*) FROM {}").format(table))
        heap = r["total"] - r["indexes"] - r["toast"]
        line = f"{r['name']:<26} {n:>11,} {mib(r['total']):>10} {mib(heap):>9} {mib(r['indexes']):>9}"
        line += f" {mib(r['toast']):>9} {r['total'] / n if n else 0:>7,.0f} {n / cases if cases else 0:>9.2f}"
        if county:
            own, share = "-", "-"
            if r["name"] in keyed:
                k = count(conn, sql.SQL("SELECT count(*) FROM {} WHERE county_code = %s").format(table), (county,))
                # The county's bytes, by its share of the rows (rows of one table are alike in size).
                part = r["total"] * k / n if n else 0
                sums["county"] += k
                sums["county_bytes"] += part
                own, share = f"{k:,}", mib(part)
            line += f" {own:>12} {share:>10}"
        print(line)
        for key, value in (("rows", n), ("total", r["total"]), ("heap", heap), ("indexes", r["indexes"]),
                           ("toast", r["toast"])):  # fmt: skip
            sums[key] += value
        if r["name"] in keyed and n:
            width = conn.execute(
                sql.SQL("SELECT avg(pg_column_size(county_code)) AS w FROM {}").format(table)
            ).fetchone()
            widths.append((r["name"], n, float(width["w"]) if width else 0.0))
    line = f"{'(all)':<26} {sums['rows']:>11,.0f} {mib(sums['total']):>10} {mib(sums['heap']):>9}"
    line += f" {mib(sums['indexes']):>9} {mib(sums['toast']):>9}"
    print(line + (f" {'':>7} {'':>9} {sums['county']:>12,.0f} {mib(sums['county_bytes']):>10}" if county else ""))
    if widths:
        print(f"\ncounty_code in {len(widths)} tables with rows: mean width "
              f"{sum(w for _, _, w in widths) / len(widths):.1f} bytes a value "
              f"({sum(n for _, n, _ in widths):,} rows)")  # fmt: skip
    else:
        print("\nno table has county_code (a database before migration 0128)")


def ledger(conn: psycopg.Connection[Any], county: str | None, year: int | None, zone: str) -> None:
    where = sql.SQL("AND county_code = {}").format(sql.Literal(county)) if county else sql.SQL("")
    span = conn.execute(
        sql.SQL("SELECT min((reported_at AT TIME ZONE %s)::date) AS a, max((reported_at AT TIME ZONE %s)::date) AS b "
                "FROM case_file WHERE true {}").format(where), (zone, zone)
    ).fetchone()  # fmt: skip
    if span is None or span["a"] is None:
        print("\nno cases: no ledger figures")
        return
    first, last = (date(year, 1, 1), date(year, 12, 31)) if year else (span["a"], span["b"])
    days = (last - first).days + 1
    params = {"zone": zone, "first": first, "last": last}

    per_case = conn.execute(
        sql.SQL("SELECT avg(n) AS mean, max(n) AS most FROM (SELECT count(*) AS n FROM case_event "
                "WHERE true {} GROUP BY case_id) e").format(where)
    ).fetchone()  # fmt: skip
    assert per_case is not None
    print(f"\nledger: {float(per_case['mean'] or 0):.2f} events a case on average, {per_case['most'] or 0} at most")
    print(f"\nper county day ({zone}), {first} to {last}, {days} days")
    print(f"{'rows':<14} {'total':>10} {'mean/day':>9} {'busiest':>8} {'days with any':>14}")
    for label, table, column in (("cases", "case_file", "reported_at"), ("events", "case_event", "created_at"),
                                 ("notifications", "notification", "created_at")):  # fmt: skip
        query = sql.SQL(PER_DAY).format(table=sql.Identifier(table), column=sql.Identifier(column), county=where)
        counts = [r["n"] for r in conn.execute(query, params)]
        print(
            f"{label:<14} {sum(counts):>10,} {sum(counts) / days:>9.2f} {max(counts, default=0):>8,} {len(counts):>14,}"
        )

    hours = conn.execute(
        sql.SQL("SELECT extract(hour FROM reported_at AT TIME ZONE %(zone)s)::int AS h, count(*) AS n FROM case_file "
                "WHERE (reported_at AT TIME ZONE %(zone)s)::date BETWEEN %(first)s AND %(last)s {} "
                "GROUP BY 1 ORDER BY 1").format(where), params
    ).fetchall()  # fmt: skip
    total = sum(r["n"] for r in hours)
    if total:
        print("\nreports by hour of the county's day (share of the day's reports)")
        print("  " + " ".join(f"{r['h']:02d}h {r['n'] / total:.1%}" for r in hours))
        top = max(hours, key=lambda r: r["n"])
        print(f"busiest hour {top['h']:02d}:00, {top['n'] / total:.1%} of the reports")


UNIQUE_KEYS = """
SELECT array_agg(a.attname ORDER BY k.n) AS columns
  FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indrelid = %s::regclass AND i.indisunique
 GROUP BY i.indexrelid
"""


def key_cost(conn: psycopg.Connection[Any], table: str) -> None:
    """Bytes a row that county_code adds to `table`: two temporary copies of its rows, one
    with the column and one without, each with the table's unique keys (with and without
    county_code). Only temporary tables are written; they go with the session."""
    columns = [r["attname"] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum", (table,))]  # fmt: skip
    if "county_code" not in columns:
        print(f"\n{table}: no county_code column, nothing to measure")
        return
    keys = [r["columns"] for r in conn.execute(UNIQUE_KEYS, (table,))]
    sizes = {}
    for name, drop in (("with", False), ("without", True)):
        kept = [c for c in columns if not (drop and c == "county_code")]
        copy = sql.Identifier(f"key_cost_{name}")
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(copy))
        conn.execute(sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM {}").format(
            copy, sql.SQL(", ").join(map(sql.Identifier, kept)), sql.Identifier(table)))  # fmt: skip
        for key in keys:
            cols = [c for c in key if not (drop and c == "county_code")]
            conn.execute(sql.SQL("CREATE INDEX ON {} ({})").format(copy, sql.SQL(", ").join(map(sql.Identifier, cols))))
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(copy))
        row = conn.execute(
            sql.SQL("SELECT count(*) AS n, pg_table_size(%(t)s) AS heap, pg_indexes_size(%(t)s) AS idx FROM {}").format(copy),
            {"t": f"pg_temp.key_cost_{name}"},
        ).fetchone()  # fmt: skip
        assert row is not None
        sizes[name] = row
    n = sizes["with"]["n"] or 1
    heap = (sizes["with"]["heap"] - sizes["without"]["heap"]) / n
    idx = (sizes["with"]["idx"] - sizes["without"]["idx"]) / n
    print(f"\n{table}: county_code costs {heap:.1f} bytes a row of heap and {idx:.1f} in its {len(keys)} unique "
          f"keys ({n:,} rows; {sizes['without']['heap'] + sizes['without']['idx']:,} bytes without it, "
          f"{sizes['with']['heap'] + sizes['with']['idx']:,} with)")  # fmt: skip


if __name__ == "__main__":
    main()
