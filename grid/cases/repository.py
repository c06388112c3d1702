"""All SQL of cases. Functions take the connection first; none commits.

Other packages that need cases in their own SQL (the map's tiles) take the subquery
from `readable_cases_sql` with the parameters of `reader_params`: the one read-scope
rule, the open states and the lateness rule live here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from grid.cases.enums import State
from grid.cases.workflow import OPEN, WAITING_FOR_ACCEPT, WAITING_FOR_RESOLVE, WARNED
from grid.db import Conn, Row, execute, execute_many, fetch_all, fetch_one, fetch_value

# On Citus a subquery over a county table reaches one shard only when it names the county as
# a constant (`{county}`: "= ANY (%(reader_counties)s::text[])" for a reader's statement, or
# "= c.county_code" where no county is given; ids are unique, so both find the same rows).
_IN_READER_COUNTIES = "= ANY (%(reader_counties)s::text[])"
_SAME_COUNTY = "= c.county_code"


def _case_columns(county: str) -> str:
    return f"""c.id, c.county_code, c.reporter_person_id, c.idempotency_key, c.request_hash, c.category,
  c.severity, c.description, c.crs, c.lon_reported, c.lat_reported, c.accuracy_m, c.floor,
  ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, c.outside_county, c.tier, c.state, c.rule_version,
  c.route_flags, c.occurred_at, c.client_recorded_at, c.reported_at, c.accept_by, c.resolve_by,
  c.deadline_no, c.warned_deadline_no, c.warn_at, c.outcome, c.agreement_text, c.failure_reason, c.satisfaction,
  c.closed_at, c.located_node_id, c.handling_node_id, c.late_count, c.first_late_at,
  hn.code AS handling_node_code, hn.name AS handling_node_name, hn.level AS handling_node_level,
  hn.path::text AS handling_path, ln.code AS located_node_code, ln.path::text AS located_path,
  c.source, c.batch_id, c.hard, c.owner_leader_person_id, c.hard_outcome,
  (SELECT u.department_id FROM case_unit u WHERE u.case_id = c.id AND u.county_code {county} AND u.part = 'owner') AS owner_department_id,
  (SELECT u.node_id FROM case_unit u WHERE u.case_id = c.id AND u.county_code {county} AND u.part = 'owner') AS owner_node_id,
  (SELECT v.leader_person_id FROM case_visit v WHERE v.case_id = c.id AND v.county_code {county} AND v.decision IS NULL) AS visit_waits_for,
  c.closure_channel, c.closure_reason"""


CASE_COLUMNS = _case_columns(_SAME_COUNTY)


def _case_from(county: str) -> str:
    # The outer join's side gets the constant too: Citus does not carry `= ANY` across a join.
    return f"""case_file c JOIN node hn ON hn.id = c.handling_node_id AND hn.county_code {county}
  LEFT JOIN node ln ON ln.id = c.located_node_id AND ln.county_code {county}"""


CASE_FROM = _case_from(_SAME_COUNTY)

# --- who may read which case, what is open, what is late ----------------------------


def _is_recipient(county: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM case_recipient r WHERE r.case_id = c.id AND r.county_code {county}"
        " AND r.person_id = %(reader_pid)s AND r.active)"
    )


_IS_RECIPIENT = _is_recipient(_SAME_COUNTY)
# The one read-scope rule, over `case_file c`, `node hn` (handling) and `node ln`
# (located): the reporter, a current recipient, or a reader whose scope holds either node;
# and, for the leadership mechanisms, a hard case's owning leader (包案), the staff of a
# department that is one of the case's units, and discipline inspection (纪检监督) for every
# case at the county centre's tier. Only in the reader's counties (`reader_counties`: the
# account's own, a city account's granted ones), whatever else holds: the county filter
# also lets a sharded database send the query to one county's shard.
_READABLE = (
    "c.county_code = ANY (%(reader_counties)s::text[]) AND "
    f"(c.reporter_person_id = %(reader_pid)s OR {_is_recipient(_IN_READER_COUNTIES)}"
    " OR hn.path <@ %(reader_paths)s::ltree[] OR ln.path <@ %(reader_paths)s::ltree[]"
    " OR c.owner_leader_person_id = %(reader_pid)s"
    " OR (%(reader_supervises)s AND c.tier = 'county_center')"
    " OR (cardinality(%(reader_departments)s::bigint[]) > 0 AND EXISTS (SELECT 1 FROM case_unit cu"
    f" WHERE cu.case_id = c.id AND cu.county_code {_IN_READER_COUNTIES} AND cu.department_id = ANY (%(reader_departments)s::bigint[]))))"
)
_OPEN = "c.state = ANY (%(open_states)s::text[])"
# Late: past the deadline of the step the case waits for (accepting, or settling once accepted).
_LATE = (
    "((c.state = ANY (%(late_accept_states)s::text[]) AND c.accept_by < %(now)s)"
    " OR (c.state = ANY (%(late_resolve_states)s::text[]) AND c.resolve_by < %(now)s))"
)


def _values(states: frozenset[State]) -> list[str]:
    return sorted(s.value for s in states)


def scope_params(
    *, person_id: int | None, read_paths: Sequence[str], department_ids: Sequence[int] = (), supervises: bool = False,
    counties: Sequence[str] = (),
) -> dict[str, Any]:  # fmt: skip
    """The parameters of the one read-scope rule (`_READABLE`) for a reader (no counties: nothing)."""
    return {"reader_pid": person_id, "reader_paths": list(read_paths), "reader_departments": list(department_ids),
            "reader_supervises": supervises, "reader_counties": list(counties)}  # fmt: skip


def reader_params(
    *, person_id: int, read_paths: Sequence[str], now: datetime, department_ids: Sequence[int] = (),
    supervises: bool = False, counties: Sequence[str] = (),
) -> dict[str, Any]:  # fmt: skip
    """The parameters of the scope, open and lateness rules, for a reader at `now`."""
    return {
        **scope_params(
            person_id=person_id,
            read_paths=read_paths,
            department_ids=department_ids,
            supervises=supervises,
            counties=counties,
        ),
        "now": now,
        "open_states": _values(OPEN),
        "late_accept_states": _values(WAITING_FOR_ACCEPT),
        "late_resolve_states": _values(WAITING_FOR_RESOLVE),
    }


def readable_cases_sql(*, open_only: bool) -> str:
    """A subquery of the cases a reader may see (parameters: `reader_params`), for
    other packages' SQL. Columns: id, category, severity, state, geom_3857 (a point),
    located_path (ltree, NULL outside the county), late (bool)."""
    return f"""
SELECT c.id, c.category, c.severity, c.state, c.geom_3857, ln.path AS located_path, {_LATE} AS late
  FROM {_case_from(_IN_READER_COUNTIES)}
 WHERE {_READABLE}{f" AND {_OPEN}" if open_only else ""}
"""


# --- catalogue and rules -------------------------------------------------------------

ACTIVE_RULES_SQL = "SELECT version, rules FROM routing_rule_set WHERE active"
RULES_BY_VERSION_SQL = "SELECT version, rules FROM routing_rule_set WHERE version = %(version)s"
CATEGORY_ACTIVE_SQL = "SELECT code FROM category WHERE code = %(category)s AND active"
# A report's retry, in the reporter's county (`reader_counties`: one shard); find_by_key: any county.
FIND_BY_KEY_SQL = (
    f"SELECT {_case_columns(_IN_READER_COUNTIES)} FROM {_case_from(_IN_READER_COUNTIES)}"
    f" WHERE c.county_code {_IN_READER_COUNTIES} AND c.reporter_person_id = %(reporter)s"
    " AND c.idempotency_key = %(key)s"
)
_FIND_BY_KEY_ANY_COUNTY_SQL = (
    f"SELECT {CASE_COLUMNS} FROM {CASE_FROM} WHERE c.reporter_person_id = %(reporter)s AND c.idempotency_key = %(key)s"
)


async def rules_by_version(conn: Conn, *, version: int) -> Row:
    row = await fetch_one(conn, RULES_BY_VERSION_SQL, {"version": version})
    assert row is not None, f"routing rule set {version} is missing"
    return row


async def categories(conn: Conn) -> list[Row]:
    return await fetch_all(conn, "SELECT code, name_zh, name_en FROM category WHERE active ORDER BY sort, code")


async def find_by_key(conn: Conn, *, reporter_person_id: int, key: Any) -> Row | None:
    return await fetch_one(conn, _FIND_BY_KEY_ANY_COUNTY_SQL, {"reporter": reporter_person_id, "key": key})


# --- one case --------------------------------------------------------------------------


INSERT_CASE_SQL = """
INSERT INTO case_file (county_code, reporter_person_id, idempotency_key, request_hash, category, severity,
  description, crs, lon_reported, lat_reported, accuracy_m, floor, geom, located_node_id, outside_county,
  tier, handling_node_id, state, rule_version, route_flags, occurred_at, client_recorded_at, reported_at,
  deadline_no, accept_by, resolve_by, warn_at)
VALUES (%(county_code)s, %(reporter_person_id)s, %(idempotency_key)s, %(request_hash)s, %(category)s, %(severity)s,
  %(description)s, %(crs)s, %(lon_reported)s, %(lat_reported)s, %(accuracy_m)s, %(floor)s,
  ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), %(located_node_id)s, %(outside_county)s,
  %(tier)s, %(handling_node_id)s, %(state)s, %(rule_version)s, %(route_flags)s, %(occurred_at)s,
  %(client_recorded_at)s, %(reported_at)s, %(deadline_no)s, %(accept_by)s, %(resolve_by)s, %(warn_at)s)
ON CONFLICT (reporter_person_id, idempotency_key, county_code) DO NOTHING
RETURNING id
"""


async def insert_case(conn: Conn, *, row: dict[str, Any]) -> int | None:
    """The new case's id, or None if this reporter already used this key (a retry)."""
    return await fetch_value(
        conn,
        INSERT_CASE_SQL,
        row,
    )


async def insert_parties(conn: Conn, *, case_id: int, county_code: str, parties: Sequence[dict[str, Any]]) -> None:
    if parties:
        await execute_many(
            conn,
            "INSERT INTO case_party (case_id, county_code, name, phone, role)"
            " VALUES (%(case_id)s, %(cc)s, %(name)s, %(phone)s, %(role)s)",
            [{"case_id": case_id, "cc": county_code, **p} for p in parties],
        )


# Lock first, then read. A statement that waited for a row lock sees, in the rest of its
# result, the data of the snapshot it took before waiting: a ledger head or recipients
# read in the same statement could be older than the commit it waited for. The read
# that follows the lock takes a new snapshot, so it sees that commit. Both travel in
# one round trip (pipeline mode), and the server runs them in order.
# An actor's counties (`reader_counties`) name the shard: Citus refuses a FOR UPDATE over many.
# The worker's own steps (no actor) lock by id alone.
LOCK_CASE_SQL = (
    "SELECT id FROM case_file WHERE id = %(id)s AND county_code = ANY (%(reader_counties)s::text[]) FOR UPDATE"
)
_LOCK_CASE_ANY_COUNTY_SQL = "SELECT id FROM case_file WHERE id = %(id)s FOR UPDATE"


def _case_for_action_sql(county: str) -> str:
    return f"""
SELECT {_case_columns(county)},
       EXISTS (SELECT 1 FROM case_recipient r WHERE r.case_id = c.id AND r.county_code {county}
                  AND r.person_id = %(pid)s AND r.active)
         AS is_recipient,
       COALESCE({_READABLE}, false) AS readable,
       e.seq AS last_seq, e.hash AS last_hash, rs.rules,
       COALESCE((SELECT json_agg(row_to_json(u) ORDER BY u.person_id) FROM push_unreachable_run u
                  WHERE u.case_id = c.id AND u.county_code {county}), '[]') AS unreachable_runs,
       ARRAY(SELECT s.section FROM case_section s
              WHERE s.case_id = c.id AND s.county_code {county} AND btrim(s.body) <> '')
         AS filed_sections,
       ARRAY(SELECT l.step FROM case_lateness l
              WHERE l.case_id = c.id AND l.county_code {county} AND l.deadline_no = c.deadline_no)
         AS late_steps
  FROM {_case_from(county)}
  JOIN routing_rule_set rs ON rs.version = c.rule_version
  LEFT JOIN LATERAL (SELECT seq, hash FROM case_event
                      WHERE case_id = c.id AND county_code {county} ORDER BY seq DESC LIMIT 1) e ON true
 WHERE c.id = ANY (%(ids)s::bigint[]){" AND c.county_code " + county if county != _SAME_COUNTY else ""}
 ORDER BY c.id
"""


CASE_FOR_ACTION_SQL = _case_for_action_sql(_IN_READER_COUNTIES)
_CASE_FOR_ACTION_ANY_COUNTY_SQL = _case_for_action_sql(_SAME_COUNTY)


def _action_params(
    ids: Sequence[int], person_id: int | None, read_paths: Sequence[str], department_ids: Sequence[int] = (),
    supervises: bool = False, counties: Sequence[str] = (),
) -> dict[str, Any]:  # fmt: skip
    return {"ids": list(ids), "pid": person_id,
            **scope_params(person_id=person_id, read_paths=read_paths, department_ids=department_ids,
                           supervises=supervises, counties=counties)}  # fmt: skip


async def case_for_action(
    conn: Conn, *, case_id: int, person_id: int, read_paths: Sequence[str] = (), department_ids: Sequence[int] = (),
    supervises: bool = False, counties: Sequence[str] = (),
) -> Row | None:  # fmt: skip
    """The case, locked for this transaction (one action at a time, so the ledger stays
    one chain), with the head of its ledger, the rules it was routed by, whether
    `person_id` holds it now (`is_recipient`), and whether they may read it (`readable`,
    the one read-scope rule, with `read_paths`)."""
    params = _action_params([case_id], person_id, read_paths, department_ids, supervises, counties)
    lock, read = (
        (LOCK_CASE_SQL, CASE_FOR_ACTION_SQL)
        if counties
        else (_LOCK_CASE_ANY_COUNTY_SQL, _CASE_FOR_ACTION_ANY_COUNTY_SQL)
    )
    async with conn.pipeline():
        await conn.execute(lock, {"id": case_id, "reader_counties": list(counties)})
        cur = await conn.execute(read, params)
        return await cur.fetchone()


# Where a return (退回) may send a case: a live node strictly inside the handling node's
# subtree. The choices offered are those of the case's own chain: the located node and
# its ancestors below the handling node, each with a current chief, deepest first; each
# as {code, name, level}, so a person picks by name.
def _return_choices(county: str) -> str:
    return f"""COALESCE((
    SELECT json_agg(json_build_object('code', a.code, 'name', a.name, 'level', a.level) ORDER BY a.depth DESC)
      FROM node a
     WHERE a.county_code {county} AND a.path @> ln.path AND a.path <@ hn.path AND a.id <> hn.id
       AND a.retired_at IS NULL
       AND EXISTS (SELECT 1 FROM post po WHERE po.node_id = a.id AND po.county_code {county} AND po.role = 'chief'
                   AND po.ended_at IS NULL)
  ), '[]')"""


async def return_target(conn: Conn, *, case_id: int, code: str) -> Row | None:
    """The node `code` (id, code, name), if the case may be returned there; None otherwise."""
    return await fetch_one(
        conn,
        """
SELECT a.id, a.code, a.name
  FROM case_file c JOIN node hn ON hn.id = c.handling_node_id
  JOIN node a ON a.code = %(code)s AND a.path <@ hn.path AND a.id <> hn.id AND a.retired_at IS NULL
 WHERE c.id = %(case_id)s
""",
        {"case_id": case_id, "code": code},
    )


async def return_choices(conn: Conn, *, case_id: int) -> list[str]:
    """The codes a return of the case is offered (`_return_choices`)."""
    value = await fetch_value(
        conn,
        f"SELECT {_return_choices(_SAME_COUNTY)} AS nodes FROM {CASE_FROM} WHERE c.id = %(case_id)s",
        {"case_id": case_id},
    )
    return [n["code"] for n in value or []]


# --- idempotent writes: the kept answer per (person, Idempotency-Key) ----------------


async def claim_request(conn: Conn, *, person_id: int, key: Any, case_id: int, request_hash: str, at: datetime) -> bool:
    """True: this key is new, and this transaction now holds it. False: it was used (a
    concurrent first use is waited for: the unique index holds the insert until that
    transaction ends, so only one of two simultaneous retries ever acts)."""
    claimed = await fetch_value(
        conn,
        """
INSERT INTO case_request (person_id, county_code, idempotency_key, case_id, request_hash, created_at)
-- the county is the person's: the claim comes before the case is read
SELECT p.id, p.county_code, %(key)s, %(case_id)s, %(hash)s, %(at)s FROM person p WHERE p.id = %(pid)s
ON CONFLICT (person_id, idempotency_key, county_code) DO NOTHING
RETURNING true
""",
        {"pid": person_id, "key": key, "case_id": case_id, "hash": request_hash, "at": at},
    )
    return bool(claimed)


# The kept answer; replaying it shows the parties it showed, so it is an audited read.
KEPT_ANSWER_SQL = """
SELECT request_hash, status, answer, 'case:' || case_id AS audit_target,
       CASE WHEN parties_shown > 0 THEN jsonb_build_object('case', case_id, 'parties', parties_shown) END
         AS audit_item
  FROM case_request WHERE person_id = %(pid)s AND idempotency_key = %(key)s
"""


async def keep_answer(conn: Conn, *, person_id: int, key: Any, status: int, answer: Any, parties_shown: int) -> None:
    await execute(
        conn,
        """
UPDATE case_request SET status = %(status)s, answer = %(answer)s, parties_shown = %(parties)s
 WHERE person_id = %(pid)s AND idempotency_key = %(key)s
""",
        {"pid": person_id, "key": key, "status": status, "answer": Jsonb(answer) if answer is not None else None,
         "parties": parties_shown},
    )  # fmt: skip


# The case's photos, oldest first, with what their EXIF says and how far (metres, on the
# WGS-84 spheroid) the place it names lies from the report's point. Only metadata: the
# photos themselves are read (and audited) one by one.
_ATTACHMENTS = """COALESCE((
    SELECT json_agg(json_build_object(
             'id', a.id, 'sha256', a.sha256, 'content_type', a.content_type, 'size', a.size,
             'uploaded_at', a.created_at, 'taken_at', a.taken_at, 'taken_lon', a.taken_lon, 'taken_lat', a.taken_lat,
             'distance_m', round(ST_Distance(c.geom::geography,
                                             ST_SetSRID(ST_MakePoint(a.taken_lon, a.taken_lat), 4326)::geography))
           ) ORDER BY a.id)
      FROM attachment a WHERE a.case_id = c.id AND a.county_code = ANY (%(reader_counties)s::text[])
       AND a.content_type LIKE 'image/%%'  -- photos; not a signed PDF scan
  ), '[]')"""


# 包案: a hard case's owning leader, its owning unit (a department or a township) and the
# five duties ticked so far (case_duty), for the case file.
_OWNERSHIP = f"""(SELECT pe.name FROM person pe WHERE pe.id = c.owner_leader_person_id
                   AND pe.county_code {_IN_READER_COUNTIES}) AS owner_leader_name,
  (SELECT json_build_object('kind', CASE WHEN u.department_id IS NULL THEN 'township' ELSE 'department' END,
                            'code', COALESCE(d.code, un.code), 'name', COALESCE(d.name, un.name))
     FROM case_unit u LEFT JOIN department d ON d.id = u.department_id AND d.county_code {_IN_READER_COUNTIES}
     LEFT JOIN node un ON un.id = u.node_id AND un.county_code {_IN_READER_COUNTIES}
    WHERE u.case_id = c.id AND u.county_code {_IN_READER_COUNTIES} AND u.part = 'owner') AS owner_unit,
  COALESCE((SELECT json_agg(json_build_object('duty', k.duty, 'note', k.note, 'person_id', k.person_id,
                                              'name', pe.name, 'at', k.at) ORDER BY k.id)
              FROM case_duty k JOIN person pe ON pe.id = k.person_id AND pe.county_code {_IN_READER_COUNTIES}
             WHERE k.case_id = c.id AND k.county_code {_IN_READER_COUNTIES}), '[]') AS duties"""
# The centre's co-handling departments (一窗受理、集成办理), each with its part and completion;
# and the township hall's work group (工作组) chosen at start_mediation. Staff, not parties.
_JOINT_UNITS = f"""COALESCE((
    SELECT json_agg(json_build_object('department_code', d.code, 'department_name', d.name, 'task', u.task,
                                      'done_at', u.done_at, 'done_note', u.done_note) ORDER BY u.id)
      FROM case_unit u JOIN department d ON d.id = u.department_id AND d.county_code {_IN_READER_COUNTIES}
     WHERE u.case_id = c.id AND u.county_code {_IN_READER_COUNTIES} AND u.part = 'joint'
  ), '[]')"""
_WORK_GROUP = f"""COALESCE((
    SELECT json_agg(json_build_object('id', m.id, 'name', m.name, 'kind', m.kind) ORDER BY m.id)
      FROM case_work_group g JOIN hall_member m ON m.id = g.member_id AND m.county_code {_IN_READER_COUNTIES}
     WHERE g.case_id = c.id AND g.county_code {_IN_READER_COUNTIES}
  ), '[]')"""


# The case file as its readers see it, in one statement: the case, its parties, who
# holds it (and whether the reader does: what they may do depends on it), its sections. The parties are personal data: shown only to a reader in
# scope (`readable`), and each read of them is an audit item.
CASE_DETAIL_SQL = f"""
SELECT {_case_columns(_IN_READER_COUNTIES)}, x.readable, {_is_recipient(_IN_READER_COUNTIES)} AS is_recipient,
  CASE WHEN x.readable THEN
    COALESCE((SELECT json_agg(json_build_object('name', p.name, 'phone', p.phone, 'role', p.role) ORDER BY p.id)
                FROM case_party p WHERE p.case_id = c.id AND p.county_code {_IN_READER_COUNTIES}), '[]')
  ELSE '[]' END AS parties,
  COALESCE((SELECT json_agg(json_build_object('person_id', r.person_id, 'name', pe.name, 'role', r.role)
                            ORDER BY r.role, r.id)
              FROM case_recipient r JOIN person pe ON pe.id = r.person_id AND pe.county_code {_IN_READER_COUNTIES}
             WHERE r.case_id = c.id AND r.county_code {_IN_READER_COUNTIES} AND r.active), '[]') AS recipients,
  COALESCE((SELECT json_object_agg(s.section, s.body) FROM case_section s
             WHERE s.case_id = c.id AND s.county_code {_IN_READER_COUNTIES}), '{{}}')
    AS sections,
  rc.nodes AS return_choice_nodes,
  ARRAY(SELECT e.n->>'code' FROM json_array_elements(rc.nodes) WITH ORDINALITY e(n, i) ORDER BY e.i)
    AS return_choices,
  CASE WHEN x.readable THEN {_ATTACHMENTS} ELSE '[]' END AS attachments,
  {_OWNERSHIP},
  {_JOINT_UNITS} AS joint_units, {_WORK_GROUP} AS work_group,
  'case:' || c.id AS audit_target,
  CASE WHEN x.readable THEN
    (SELECT jsonb_build_object('case', c.id, 'parties', count(*)) FROM case_party p
      WHERE p.case_id = c.id AND p.county_code {_IN_READER_COUNTIES} HAVING count(*) > 0)
  END AS audit_item
  FROM {_case_from(_IN_READER_COUNTIES)}
  CROSS JOIN LATERAL (SELECT {_READABLE} AS readable) x
  CROSS JOIN LATERAL (SELECT {_return_choices(_IN_READER_COUNTIES)} AS nodes) rc
 WHERE c.id = %(case_id)s AND c.county_code {_IN_READER_COUNTIES}
"""


def case_detail_params(
    *, case_id: int, person_id: int, read_paths: Sequence[str], department_ids: Sequence[int] = (),
    supervises: bool = False, counties: Sequence[str] = (),
) -> dict[str, Any]:  # fmt: skip
    return {"case_id": case_id, **scope_params(person_id=person_id, read_paths=read_paths,
                                               department_ids=department_ids, supervises=supervises,
                                               counties=counties)}  # fmt: skip


async def case_brief(
    conn: Conn, *, case_id: int, person_id: int, read_paths: Sequence[str], department_ids: Sequence[int] = (),
    supervises: bool = False, counties: Sequence[str] = (),
) -> Row | None:  # fmt: skip
    """The case's own columns, if the reader may read it (no parties: nothing to audit)."""
    return await fetch_one(
        conn,
        f"SELECT {CASE_COLUMNS} FROM {CASE_FROM} WHERE c.id = %(case_id)s AND {_READABLE}",
        case_detail_params(
            case_id=case_id,
            person_id=person_id,
            read_paths=read_paths,
            department_ids=department_ids,
            supervises=supervises,
            counties=counties,
        ),
    )


async def update_case(conn: Conn, *, case_id: int, values: dict[str, Any]) -> None:
    sets = ", ".join(f"{k} = %({k})s" for k in values)
    await execute(conn, f"UPDATE case_file SET {sets}, updated_at = now() WHERE id = %(id)s", {**values, "id": case_id})


async def replace_recipients(
    conn: Conn, *, case_id: int, county_code: str, recipients: Sequence[tuple[int, str]], at: datetime,
    retire: bool = True,
) -> None:  # fmt: skip
    """The case's holders from now on; `retire`: end the current ones first (a new case has none)."""
    if retire:
        await execute(conn, "UPDATE case_recipient SET active = false WHERE case_id = %(c)s AND active", {"c": case_id})
    if recipients:
        await execute_many(
            conn,
            "INSERT INTO case_recipient (case_id, county_code, person_id, role, assigned_at)"
            " VALUES (%(c)s, %(cc)s, %(p)s, %(r)s, %(at)s)",
            [{"c": case_id, "cc": county_code, "p": p, "r": r, "at": at} for p, r in recipients],
        )


async def recipients(conn: Conn, *, case_id: int) -> list[Row]:
    return await fetch_all(
        conn,
        """
SELECT r.person_id, pe.name, r.role FROM case_recipient r JOIN person pe ON pe.id = r.person_id
 WHERE r.case_id = %(id)s AND r.active ORDER BY r.role, r.id
""",
        {"id": case_id},
    )


async def person_names(conn: Conn, *, ids: Sequence[int]) -> dict[int, str]:
    rows = await fetch_all(conn, "SELECT id, name FROM person WHERE id = ANY(%(ids)s)", {"ids": list(ids)})
    return {r["id"]: r["name"] for r in rows}


async def upsert_section(
    conn: Conn, *, case_id: int, county_code: str, section: str, body: str, person_id: int, at: datetime
) -> None:
    await execute(
        conn,
        """
INSERT INTO case_section (case_id, county_code, section, body, updated_by, updated_at)
VALUES (%(c)s, %(cc)s, %(s)s, %(b)s, %(p)s, %(at)s)
ON CONFLICT (case_id, section, county_code) DO UPDATE SET body = EXCLUDED.body, updated_by = EXCLUDED.updated_by,
  updated_at = EXCLUDED.updated_at
""",
        {"c": case_id, "cc": county_code, "s": section, "b": body, "p": person_id, "at": at},
    )


async def insert_attachment(conn: Conn, *, row: dict[str, Any]) -> int | None:
    """The new photo's id, or None if the case has it already."""
    return await fetch_value(
        conn,
        """
INSERT INTO attachment (case_id, county_code, sha256, content_type, size, path, uploaded_by, created_at, taken_at,
  taken_lon, taken_lat)
VALUES (%(case_id)s, %(county_code)s, %(sha256)s, %(content_type)s, %(size)s, %(path)s, %(uploaded_by)s,
  %(created_at)s, %(taken_at)s, %(taken_lon)s, %(taken_lat)s)
ON CONFLICT (case_id, sha256, county_code) DO NOTHING RETURNING id
""",
        row,
    )


async def attachment_id(conn: Conn, *, case_id: int, sha256: str) -> int | None:
    return await fetch_value(
        conn, "SELECT id FROM attachment WHERE case_id = %(c)s AND sha256 = %(s)s", {"c": case_id, "s": sha256}
    )


# One photo of a case the reader may read (the one read-scope rule). A photo may show
# people, so each read of it is an audit item (grid.db.ReadAudit).
ATTACHMENT_SQL = f"""
SELECT a.id, a.case_id, a.sha256, a.content_type, a.path,
       'case:' || c.id AS audit_target,
       jsonb_build_object('case', c.id, 'attachment', a.id, 'variant', %(variant)s::text) AS audit_item
  FROM {CASE_FROM} JOIN attachment a ON a.case_id = c.id
 WHERE a.id = %(attachment_id)s AND a.case_id = %(case_id)s AND {_READABLE}
"""


def attachment_params(
    *, case_id: int, attachment_id: int, variant: str, person_id: int, read_paths: Sequence[str],
    department_ids: Sequence[int] = (), supervises: bool = False, counties: Sequence[str] = (),
) -> dict[str, Any]:  # fmt: skip
    return {"case_id": case_id, "attachment_id": attachment_id, "variant": variant,
            **case_detail_params(case_id=case_id, person_id=person_id, read_paths=read_paths,
                                 department_ids=department_ids, supervises=supervises,
                                 counties=counties)}  # fmt: skip


# --- the ledger ----------------------------------------------------------------------


async def last_event(conn: Conn, *, case_id: int) -> Row | None:
    return await fetch_one(
        conn, "SELECT seq, hash FROM case_event WHERE case_id = %(c)s ORDER BY seq DESC LIMIT 1", {"c": case_id}
    )


INSERT_EVENTS_SQL = """
INSERT INTO case_event (case_id, county_code, seq, actor_person_id, action, from_state, to_state, note,
  attachment_hashes, body, prev_hash, hash, signature, created_at, seal, key_id)
VALUES (%(case_id)s, %(county_code)s, %(seq)s, %(actor_person_id)s, %(action)s, %(from_state)s, %(to_state)s, %(note)s,
  %(attachment_hashes)s, %(body)s::jsonb, %(prev_hash)s, %(hash)s, %(signature)s, %(created_at)s, %(seal)s,
  %(key_id)s)
"""


async def insert_events(conn: Conn, *, rows: Sequence[dict[str, Any]]) -> None:
    await execute_many(
        conn,
        INSERT_EVENTS_SQL,
        rows,
    )


async def insert_lateness(conn: Conn, *, rows: Sequence[dict[str, Any]]) -> None:
    await execute_many(
        conn,
        """
INSERT INTO case_lateness (case_id, county_code, deadline_no, step, tier, due_at, noticed_at)
VALUES (%(case_id)s, %(county_code)s, %(deadline_no)s, %(step)s, %(tier)s, %(due_at)s, %(noticed_at)s)
""",
        rows,
    )


async def events(conn: Conn, *, case_id: int) -> list[Row]:
    return await fetch_all(
        conn,
        """
SELECT e.id, e.case_id, e.seq, e.actor_person_id, pe.name AS actor_name, e.action, e.from_state, e.to_state,
       e.note, e.attachment_hashes, e.body, e.prev_hash, e.hash, e.signature, e.created_at, e.seal, e.key_id
  FROM case_event e LEFT JOIN person pe ON pe.id = e.actor_person_id
 WHERE e.case_id = %(c)s ORDER BY e.seq
""",
        {"c": case_id},
    )


async def case_ids(conn: Conn) -> list[int]:
    return [r["id"] for r in await fetch_all(conn, "SELECT id FROM case_file ORDER BY id")]


async def follow_view(conn: Conn, *, case_id: int) -> Row:
    """What a progress notice says about the case: its category's and handling node's
    names, its tier, and the names of who holds it now (chief, deputies, mediators)."""
    row = await fetch_one(
        conn,
        """
SELECT c.tier, hn.name AS node_name, hn.level AS node_level, cat.name_zh AS category_name,
       COALESCE((SELECT json_agg(pe.name ORDER BY r.role, r.id) FROM case_recipient r
                   JOIN person pe ON pe.id = r.person_id WHERE r.case_id = c.id AND r.active), '[]') AS holder_names
  FROM case_file c JOIN node hn ON hn.id = c.handling_node_id JOIN category cat ON cat.code = c.category
 WHERE c.id = %(id)s
""",
        {"id": case_id},
    )
    assert row is not None
    return row


# --- push_unreachable runs: failures counted between two signed events ----------------


async def open_unreachable_run(
    conn: Conn, *, case_id: int, county_code: str, person_id: int, opened_seq: int, at: datetime,
    notified_person_id: int | None,
) -> None:  # fmt: skip
    await execute(
        conn,
        """
INSERT INTO push_unreachable_run (case_id, county_code, person_id, opened_seq, opened_at, notified_person_id)
VALUES (%(c)s, %(cc)s, %(p)s, %(seq)s, %(at)s, %(n)s)
""",
        {"c": case_id, "cc": county_code, "p": person_id, "seq": opened_seq, "at": at, "n": notified_person_id},
    )


async def fold_unreachable(conn: Conn, *, case_id: int, person_id: int, notification_id: int, at: datetime) -> None:
    await execute(
        conn,
        """
UPDATE push_unreachable_run
   SET folded = folded + 1, first_folded_at = COALESCE(first_folded_at, %(at)s), last_folded_at = %(at)s,
       first_notification_id = COALESCE(first_notification_id, %(n)s), last_notification_id = %(n)s
 WHERE case_id = %(c)s AND person_id = %(p)s
""",
        {"c": case_id, "p": person_id, "n": notification_id, "at": at},
    )


async def end_unreachable_runs(conn: Conn, *, case_id: int, person_ids: Sequence[int]) -> None:
    await execute(
        conn,
        "DELETE FROM push_unreachable_run WHERE case_id = %(c)s AND person_id = ANY(%(p)s)",
        {"c": case_id, "p": list(person_ids)},
    )


async def unreachable_runs_of(conn: Conn, *, person_ids: Sequence[int]) -> set[tuple[int, int]]:
    """(case_id, person_id) of the open runs of these people."""
    rows = await fetch_all(
        conn,
        "SELECT case_id, person_id FROM push_unreachable_run WHERE person_id = ANY(%(p)s)",
        {"p": list(person_ids)},
    )
    return {(r["case_id"], r["person_id"]) for r in rows}


# --- notifications: the outbox, and each person's inbox ----------------------------


async def insert_notifications(conn: Conn, *, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await execute_many(
            conn,
            """
INSERT INTO notification (county_code, person_id, case_id, kind, title, body, dedupe_key, created_at,
  next_attempt_at)
VALUES (%(county_code)s, %(person_id)s, %(case_id)s, %(kind)s, %(title)s, %(body)s, %(dedupe_key)s, %(created_at)s,
  %(created_at)s)
ON CONFLICT (dedupe_key, county_code) DO NOTHING
""",
            rows,
        )


INBOX_COLUMNS = "id, case_id, kind, title, body, created_at, read_at"


# A person's notifications, in their county (`county`: the account's): the filter also
# sends the query to that county's shard.
def inbox_query(*, county: str, person_id: int, before: int | None, limit: int) -> tuple[str, dict[str, Any]]:
    """The inbox page's statement and parameters (tests/integration/test_citus_routing.py explains it)."""
    older = "" if before is None else " AND id < %(before)s"
    return (
        f"SELECT {INBOX_COLUMNS} FROM notification WHERE county_code = %(county)s AND person_id = %(p)s{older}"
        " ORDER BY id DESC LIMIT %(limit)s",
        {"county": county, "p": person_id, "before": before, "limit": limit},
    )


async def inbox(conn: Conn, *, county: str, person_id: int, before: int | None, limit: int) -> list[Row]:
    """Newest first; `before`: the id of the last row of the previous page."""
    sql, params = inbox_query(county=county, person_id=person_id, before=before, limit=limit)
    return await fetch_all(conn, sql, params)


async def inbox_after(conn: Conn, *, county: str, person_id: int, after: int, limit: int = 100) -> list[Row]:
    """Oldest first: what came since `after` (the inbox stream)."""
    return await fetch_all(
        conn,
        f"SELECT {INBOX_COLUMNS} FROM notification WHERE county_code = %(county)s AND person_id = %(p)s"
        " AND id > %(after)s ORDER BY id LIMIT %(n)s",
        {"county": county, "p": person_id, "after": after, "n": limit},
    )


async def inbox_last_id(conn: Conn, *, county: str, person_id: int) -> int:
    value = await fetch_value(
        conn,
        "SELECT coalesce(max(id), 0) FROM notification WHERE county_code = %(county)s AND person_id = %(p)s",
        {"county": county, "p": person_id},
    )
    return int(value)


async def mark_read(conn: Conn, *, county: str, person_id: int, ids: Sequence[int], at: datetime) -> int:
    return await execute(
        conn,
        "UPDATE notification SET read_at = %(at)s WHERE county_code = %(county)s AND person_id = %(p)s"
        " AND id = ANY(%(ids)s) AND read_at IS NULL",
        {"county": county, "p": person_id, "ids": list(ids), "at": at},
    )


# --- queues ----------------------------------------------------------------------------


async def list_cases(
    conn: Conn, *, reader: dict[str, Any], open_only: bool, filters: dict[str, Any], limit: int
) -> list[Row]:
    """Cases the reader may read, newest first. `filters`: state, tier, category,
    node_path (handled in that subtree), overdue (bool), bbox, mine (a current
    recipient), before_id; None means any."""
    where = [_READABLE]
    params = {**reader, "limit": limit}
    if open_only:
        where.append(_OPEN)
    if filters.get("mine"):
        where.append(_IS_RECIPIENT)
    for column in ("state", "tier", "category"):
        if filters.get(column) is not None:
            where.append(f"c.{column} = %({column})s")
            params[column] = filters[column]
    if filters.get("node_path") is not None:
        where.append("hn.path <@ %(node_path)s::ltree")
        params["node_path"] = filters["node_path"]
    if filters.get("overdue") is not None:
        where.append(_LATE if filters["overdue"] else f"NOT {_LATE}")
    if filters.get("bbox") is not None:
        where.append("c.geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)")
        x0, y0, x1, y1 = filters["bbox"]
        params.update(x0=x0, y0=y0, x1=x1, y1=y1)
    if filters.get("before_id") is not None:
        where.append("c.id < %(before_id)s")
        params["before_id"] = filters["before_id"]
    sql = f"""
SELECT {CASE_COLUMNS}, {_LATE} AS late, {_IS_RECIPIENT} AS is_recipient FROM {CASE_FROM}
 WHERE {" AND ".join(where)}
 ORDER BY c.id DESC LIMIT %(limit)s
"""
    return await fetch_all(conn, sql, params)


async def my_reports(conn: Conn, *, person_id: int, now: datetime, before_id: int | None, limit: int) -> list[Row]:
    """The person's own reports, newest first (keyset on id): each with who holds it now
    and its last step. The reporter may always read their report; no parties, no audit."""
    older = "" if before_id is None else " AND c.id < %(before_id)s"
    return await fetch_all(
        conn,
        f"""
SELECT {CASE_COLUMNS}, {_LATE} AS late, {_IS_RECIPIENT} AS is_recipient,
  COALESCE((SELECT json_agg(json_build_object('person_id', r.person_id, 'name', pe.name, 'role', r.role)
                            ORDER BY r.role, r.id)
              FROM case_recipient r JOIN person pe ON pe.id = r.person_id
             WHERE r.case_id = c.id AND r.active), '[]') AS recipients,
  e.action AS last_action, e.created_at AS last_step_at
  FROM {CASE_FROM}
  LEFT JOIN LATERAL (SELECT action, created_at FROM case_event WHERE case_id = c.id ORDER BY seq DESC LIMIT 1) e
    ON true
 WHERE c.reporter_person_id = %(pid)s{older}
 ORDER BY c.id DESC LIMIT %(limit)s
""",
        {**reader_params(person_id=person_id, read_paths=(), now=now), "pid": person_id, "before_id": before_id,
         "limit": limit},
    )  # fmt: skip


async def is_late(conn: Conn, *, state: str, accept_by: datetime | None, resolve_by: datetime | None,
                  now: datetime) -> bool:  # fmt: skip
    """The lateness rule of the SQL, for values in hand (the tests compare it with `is_overdue`)."""
    params = reader_params(person_id=0, read_paths=(), now=now)
    value = await fetch_value(
        conn,
        f"SELECT {_LATE} FROM (SELECT %(state)s::text AS state, %(accept_by)s::timestamptz AS accept_by,"
        " %(resolve_by)s::timestamptz AS resolve_by) c",
        {**params, "state": state, "accept_by": accept_by, "resolve_by": resolve_by},
    )
    return bool(value)


# --- deadlines (the worker) ----------------------------------------------------------


async def _locked_cases(conn: Conn, lock_sql: str, params: dict[str, Any]) -> list[Row]:
    """Lock the rows `lock_sql` picks (SKIP LOCKED: another worker's are passed over),
    then read them as `case_for_action` does, after the lock."""
    ids = [r["id"] for r in await fetch_all(conn, lock_sql, params)]
    if not ids:
        return []
    return await fetch_all(conn, _CASE_FOR_ACTION_ANY_COUNTY_SQL, _action_params(ids, None, ()))


async def due_for_escalation(conn: Conn, *, now: datetime, batch: int) -> list[Row]:
    """Cases past the deadline they wait for, locked; a second worker skips them rather than waiting."""
    return await _locked_cases(
        conn,
        """
SELECT id FROM case_file
 WHERE (state = ANY (%(accept_states)s::text[]) AND accept_by <= %(now)s)
    OR (state = ANY (%(resolve_states)s::text[]) AND resolve_by <= %(now)s)
 ORDER BY id
 LIMIT %(batch)s
 FOR UPDATE SKIP LOCKED
""",
        {"now": now, "batch": batch, "accept_states": _values(WAITING_FOR_ACCEPT),
         "resolve_states": _values(WAITING_FOR_RESOLVE)},
    )  # fmt: skip


async def due_for_warning(conn: Conn, *, now: datetime, batch: int) -> list[Row]:
    """Cases inside their warning window, not yet warned for this deadline; locked."""
    return await _locked_cases(
        conn,
        """
SELECT id FROM case_file
 WHERE warned_deadline_no < deadline_no AND warn_at <= %(now)s AND state = ANY (%(states)s::text[])
 ORDER BY id
 LIMIT %(batch)s
 FOR UPDATE SKIP LOCKED
""",
        {"now": now, "batch": batch, "states": _values(WARNED)},
    )


# --- publications: public notices (公示) and mediation agreements ---------------------


async def case_parties(conn: Conn, *, case_id: int) -> list[Row]:
    """For the server's own use (masking a notice, writing an agreement), not shown as read."""
    return await fetch_all(
        conn, "SELECT name, phone, role FROM case_party WHERE case_id = %(c)s ORDER BY id", {"c": case_id}
    )


async def case_sections(conn: Conn, *, case_id: int) -> dict[str, str]:
    rows = await fetch_all(conn, "SELECT section, body FROM case_section WHERE case_id = %(c)s", {"c": case_id})
    return {r["section"]: r["body"] for r in rows}


async def category_name(conn: Conn, *, code: str) -> str:
    value = await fetch_value(conn, "SELECT name_zh FROM category WHERE code = %(c)s", {"c": code})
    return str(value or code)


async def insert_publication(conn: Conn, *, row: dict[str, Any]) -> None:
    await execute(
        conn,
        """
INSERT INTO case_publication (case_id, county_code, kind, token, content, sha256, created_by, created_at)
VALUES (%(case_id)s, %(county_code)s, %(kind)s, %(token)s, %(content)s, %(sha256)s, %(created_by)s, %(created_at)s)
""",
        {**row, "content": Jsonb(row["content"])},
    )


_PUBLICATION_COLUMNS = "id, case_id, kind, token, content, sha256, created_by, created_at"


async def latest_publication(conn: Conn, *, case_id: int, kind: str) -> Row | None:
    return await fetch_one(
        conn,
        f"SELECT {_PUBLICATION_COLUMNS} FROM case_publication WHERE case_id = %(c)s AND kind = %(k)s"
        " ORDER BY id DESC LIMIT 1",
        {"c": case_id, "k": kind},
    )


async def publication_by_token(conn: Conn, *, token: str, kind: str) -> Row | None:
    """The publication, and whether a newer one of its kind replaced it (`superseded`)."""
    return await fetch_one(
        conn,
        f"""
SELECT {_PUBLICATION_COLUMNS},
       EXISTS (SELECT 1 FROM case_publication n WHERE n.case_id = p.case_id AND n.kind = p.kind AND n.id > p.id)
         AS superseded
  FROM case_publication p WHERE token = %(t)s AND kind = %(k)s
""",
        {"t": token, "k": kind},
    )


# --- the demo history (grid.cases.history) ----------------------------------------------
# Only reads, and the outbox of a generated past year: its cases and events are written by
# the use cases like any other.


async def history_places(conn: Conn, *, county_code: str) -> list[Row]:
    """Where the demo history's reports come from: every live household and floor with a
    current chief (the reporter), with the polygon a point is drawn in (a floor's: its unit's)."""
    return await fetch_all(
        conn,
        """
SELECT n.id, n.code, n.level, n.floor_from, n.floor_to, po.person_id AS reporter_person_id,
       ST_AsBinary(COALESCE(n.geom, u.geom)) AS geom
  FROM node n
  JOIN post po ON po.node_id = n.id AND po.role = 'chief' AND po.ended_at IS NULL
  LEFT JOIN node u ON u.id = n.parent_id
 WHERE n.county_code = %(county)s AND n.retired_at IS NULL AND n.level IN ('household', 'floor')
   AND COALESCE(n.geom, u.geom) IS NOT NULL
 ORDER BY n.code
""",
        {"county": county_code},
    )


async def cases_reported_between(conn: Conn, *, county_code: str, start: datetime, end: datetime) -> int:
    return int(
        await fetch_value(
            conn,
            "SELECT count(*) FROM case_file WHERE county_code = %(county)s"
            " AND reported_at >= %(start)s AND reported_at < %(end)s",
            {"county": county_code, "start": start, "end": end},
        )
    )


async def settle_past_outbox(conn: Conn, *, case_id: int) -> None:
    """A generated past year's notices stay in the inbox (read when written) but are never
    pushed: the worker takes only 'pending' rows, and would otherwise ring phones, and
    record unreachable ones on the ledger, for a year long gone."""
    await execute(
        conn,
        "UPDATE notification SET delivery_state = 'history', read_at = created_at"
        " WHERE case_id = %(case_id)s AND delivery_state = 'pending'",
        {"case_id": case_id},
    )


async def year_figures(conn: Conn, *, county_code: str, start: datetime, end: datetime, zone: str) -> Row:
    """The figures of the cases reported in [start, end): how many, settled per tier (the
    tier a case ended at: tiers only go up), successful and failed mediations (resolve and
    fail steps on the ledger), how many reached the county centre, and reports per month
    in the county's zone."""
    row = await fetch_one(
        conn,
        """
WITH y AS (SELECT id, tier, state, reported_at FROM case_file
            WHERE county_code = %(county)s AND reported_at >= %(start)s AND reported_at < %(end)s),
steps AS (SELECT e.action, count(*) AS n FROM case_event e JOIN y ON y.id = e.case_id
           WHERE e.action IN ('resolve', 'fail') GROUP BY e.action)
SELECT (SELECT count(*) FROM y) AS cases,
       COALESCE((SELECT json_object_agg(tier, n) FROM (SELECT tier, count(*) AS n FROM y
                  WHERE state <> ALL (%(open)s::text[]) GROUP BY tier) t), '{}') AS settled,
       COALESCE((SELECT n FROM steps WHERE action = 'resolve'), 0) AS resolves,
       COALESCE((SELECT n FROM steps WHERE action = 'fail'), 0) AS fails,
       (SELECT count(*) FROM y WHERE tier = 'county_center') AS reached_county,
       (SELECT count(*) FROM y WHERE state = ANY (%(open)s::text[])) AS still_open,
       COALESCE((SELECT json_object_agg(m, n) FROM (SELECT extract(month FROM reported_at AT TIME ZONE %(zone)s)::int
                  AS m, count(*) AS n FROM y GROUP BY 1) t), '{}') AS months
""",
        {"county": county_code, "start": start, "end": end, "zone": zone, "open": _values(OPEN)},
    )
    assert row is not None
    return row
