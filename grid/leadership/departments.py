"""The county's functional units (部门). The list is data the admin edits; a new county
starts from the usual ten (`STANDARD`), which the demo county loads."""

from __future__ import annotations

from grid.db import Conn, Row
from grid.exceptions import GridError, InvalidInput
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


async def listed(*, conn: Conn, county_code: str, active_only: bool = True) -> list[Row]:
    return await repo.departments(conn, county_code=county_code, active_only=active_only)


async def by_code(*, conn: Conn, county_code: str, code: str) -> Row:
    """The active department `code`; InvalidInput naming the choices otherwise."""
    row = await repo.department_by_code(conn, county_code=county_code, code=code)
    if row is None or not row["active"]:
        choices = "、".join(
            f"{d['name']}（{d['code']}）" for d in await repo.departments(conn, county_code=county_code)
        )
        raise InvalidInput(f"没有编码为“{code}”的部门；可选：{choices}", department=code)
    return row


# --- the admin's edits --------------------------------------------------------------


class DepartmentNotFound(GridError):
    code = "department_not_found"


class DepartmentExists(GridError):
    code = "department_exists"


async def add(*, conn: Conn, county_code: str, code: str, name: str) -> Row:
    """A new department at the end of the list; DepartmentExists if the code is taken
    (an inactive one too: activate it instead)."""
    row = await repo.insert_department(conn, county_code=county_code, code=code, name=name.strip())
    if row is None:
        raise DepartmentExists(f"已有编码为“{code}”的部门；要改名或重新启用，请修改它", code=code)
    return row


async def change(*, conn: Conn, county_code: str, code: str, name: str | None, active: bool | None) -> Row:
    """Rename it, or (de)activate it. An inactive department takes no new staff and owns no
    new case; its staff keep reading the cases it already has."""
    if name is None and active is None:
        raise InvalidInput("请至少修改一项：名称（name）或是否启用（active）", code=code)
    row = await repo.update_department(conn, county_code=county_code, code=code,
                                       name=name.strip() if name else None, active=active)  # fmt: skip
    if row is None:
        raise DepartmentNotFound(f"没有编码为“{code}”的部门", code=code)
    return row
