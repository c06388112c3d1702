"""Every operation of the OpenAPI, fuzzed while logged in, answers anything but a 5xx.

schemathesis generates requests from the app's own OpenAPI document, valid and
invalid alike, and sends them over HTTP to a real server on a database of this
module's own (the demo county, its demo accounts and a few reports). Each role
fuzzes every operation: a chief, a township dispatcher and the admin; the admin
runs last, since its random writes may disable the others.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from app.accounts import demo as demo_accounts
from app.settings import libpq_url
from geo.crs import wgs84_to_gcj02
from geo.demo import DemoNode
from grid.cases.enums import Section
from grid.db import connect
from tests.conftest import create_database, drop_database, settings_for_tests
from tests.servers import Server, server

pytestmark = pytest.mark.slow

ROLES = ("floor chief", "dispatcher", "admin")
# Examples per operation and role; WUZHANG_FUZZ_EXAMPLES raises it for a longer hunt.
EXAMPLES = int(os.environ.get("WUZHANG_FUZZ_EXAMPLES", "12"))
# The inbox stream answers forever by design; it is fuzzed for its status line only.
STREAMING = {"/api/v1/me/inbox/stream"}


@dataclass
class Target:
    server: Server
    tokens: dict[str, str]
    known: dict[str, list]  # path parameter -> values that exist
    schema: schemathesis.schemas.BaseSchema


async def _prepare(url: str) -> None:
    async with await connect(libpq_url(url)) as conn:
        await demo_accounts.ensure(conn=conn, settings=settings_for_tests(url), county_code="610827")
        await conn.commit()


def _login(base: str, phone: str) -> str:
    r = httpx.post(f"{base}/api/v1/auth/token", data={"username": phone, "password": demo_accounts.DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@pytest.fixture(scope="module")
def target(template_url: str, loaded_county) -> Iterator[Target]:
    url = create_database("wuzhang_fuzz", template=template_url)
    try:
        asyncio.run(_prepare(url))
        accounts = asyncio.run(_plan(url))
        with server(url) as srv:
            tokens = {title: _login(srv.base, phone) for title, phone in accounts.items()}
            floor, case_ids = _report_a_few(srv.base, tokens["floor chief"], loaded_county)
            known = {
                "case_id": case_ids,
                "section": [s.value for s in Section],
                "code": [floor.code, *_ancestors(floor.code)],
                "user_id": asyncio.run(_other_user_ids(url, list(accounts.values()))),
            }
            schema = schemathesis.openapi.from_url(f"{srv.base}/openapi.json")
            yield Target(srv, tokens, known, schema)
    finally:
        drop_database(url)


async def _plan(url: str) -> dict[str, str]:
    """The phones of the three fuzzing roles among the demo accounts."""
    async with await connect(libpq_url(url)) as conn:
        plan = await demo_accounts.plan(conn, "610827")
    floor_chief = demo_accounts.chief_title("urban", "floor")
    return {
        "floor chief": next(a.phone for a in plan if a.grant is None and a.title == floor_chief),
        "dispatcher": next(a.phone for a in plan if a.grant is not None and a.grant.role == "dispatcher"),
        "admin": next(a.phone for a in plan if a.grant is not None and a.grant.role == "admin"),
    }


async def _other_user_ids(url: str, fuzzing_phones: list[str]) -> list[int]:
    """Users the admin may disable at random: not the three doing the fuzzing."""
    async with await connect(libpq_url(url)) as conn:
        rows = await conn.execute("SELECT id FROM user_account WHERE NOT phone = ANY(%s) ORDER BY id", [fuzzing_phones])
        return [row["id"] for row in await rows.fetchall()]


def _ancestors(code: str) -> list[str]:
    """Codes are paths: 610827001-U1-C1-G1-... -> its parents, up to the county."""
    parts = code.split("-")
    return ["-".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)] + [code[:6]]


def _report_a_few(base: str, token: str, county) -> tuple[DemoNode, list[int]]:
    """A few real cases, so fuzzed writes reach the workflow, not only the 404."""
    floor = next(n for n in county.nodes if n.level == "floor" and n.floor_from <= 2 <= n.floor_to)
    unit = next(n for n in county.nodes if n.code == floor.parent_code)
    p = unit.geom.point_on_surface()
    lon, lat = wgs84_to_gcj02(p.x, p.y)
    ids = []
    for i in range(3):
        body = {"lon": lon, "lat": lat, "crs": "gcj02", "floor": 2, "category": "neighbours", "severity": 2,
                "description": f"模糊测试的案件{i}", "parties": [{"name": "王五", "phone": "13912345678", "role": "申请人"}]}  # fmt: skip
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
        r = httpx.post(f"{base}/api/v1/reports", json=body, headers=headers)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return floor, ids


def _cases(operation, known: dict[str, list]) -> st.SearchStrategy:
    """Random requests, valid and invalid, and as many again on things that exist
    (cases, nodes, other users), so the fuzz gets past the 404s."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    names = [p.name for p in operation.path_parameters] if operation.path_parameters else []
    if names and all(n in known for n in names):
        existing = st.fixed_dictionaries({n: st.sampled_from(known[n]) for n in names})
        strategies.append(existing.flatmap(lambda values: operation.as_strategy(path_parameters=values)))
    return st.one_of(strategies)


def _operations(target: Target) -> list:
    return [result.ok() for result in target.schema.get_all_operations()]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_without_a_5xx_whatever_a_logged_in_caller_sends(target: Target, role: str):
    headers = {"Authorization": f"Bearer {target.tokens[role]}"}
    failures: list[str] = []
    seen: dict[str, Counter[int]] = defaultdict(Counter)
    operations = _operations(target)
    assert len(operations) >= 40, "the OpenAPI lost its operations"
    with requests.Session() as session:
        for operation in operations:
            _fuzz(operation, target, session, headers, seen, failures)
    for label, statuses in sorted(seen.items()):  # shown with -s: how deep the fuzz got
        print(role, label, dict(statuses))
    assert not failures, "\n".join(failures[:20])


def _fuzz(operation, target: Target, session: requests.Session, headers: dict[str, str],
          seen: dict[str, Counter[int]], failures: list[str]) -> None:  # fmt: skip
    stream = operation.path in STREAMING

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=_cases(operation, target.known))
    def fuzz(case) -> None:
        if stream:  # only the status line: the stream itself never ends
            kwargs = case.as_transport_kwargs(base_url=target.server.base, headers=headers)
            with session.request(**kwargs, stream=True, timeout=15) as raw:
                status, text = raw.status_code, ""
        else:
            response = case.call(base_url=target.server.base, session=session, headers=headers, timeout=15)
            status, text = response.status_code, response.content[:300].decode(errors="replace")
        seen[f"{case.method} {operation.path}"][status] += 1
        if status >= 500:
            failures.append(f"{case.method} {case.formatted_path} {case.query} -> {status}: {text}")

    fuzz()
