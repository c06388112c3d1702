"""The county's functional units (部门). The list is data the admin edits; a new county
starts from the usual ten (`STANDARD`), which the demo county loads."""

from __future__ import annotations

from grid.db import Conn, Row
from grid.exceptions import InvalidInput
from grid.leadership import repository as repo

# (code, name): the units that take part in hard cases and in joint handling at the centre.
STANDARD: tuple[tuple[str, str], ...] = (
    ("petition", "信访局"),
    ("justice", "司法局"),
    ("civil_affairs", "民政局"),
    ("public_security", "公安局"),
    ("human_resources", "人社局"),
    ("natural_resources", "自然资源局"),
    ("housing", "住建局"),
    ("discipline", "纪委监委"),
    ("agriculture", "农业农村局"),
    ("health", "卫健局"),
)
PETITION_OFFICE = "petition"  # 信访局: marks hard cases, keeps the duty roster
CIVIL_AFFAIRS = "civil_affairs"  # 民政局: receives social-assistance referrals


async def ensure_standard(*, conn: Conn, county_code: str) -> None:
    """The usual ten, added where missing (idempotent)."""
    rows = [{"code": code, "name": name, "sort": i} for i, (code, name) in enumerate(STANDARD)]
    await repo.insert_departments(conn, county_code=county_code, rows=rows)


async def listed(*, conn: Conn, county_code: str) -> list[Row]:
    return await repo.departments(conn, county_code=county_code)


async def by_code(*, conn: Conn, county_code: str, code: str) -> Row:
    """The active department `code`; InvalidInput naming the choices otherwise."""
    row = await repo.department_by_code(conn, county_code=county_code, code=code)
    if row is None or not row["active"]:
        choices = "、".join(
            f"{d['name']}（{d['code']}）" for d in await repo.departments(conn, county_code=county_code)
        )
        raise InvalidInput(f"没有编码为“{code}”的部门；可选：{choices}", department=code)
    return row
