"""The input boundary: what a value must be before it may travel to PostgreSQL.

- Text: every string of a JSON or form body is checked once, in the request guard
  (app/limits.py), before routing: PostgreSQL text cannot hold a NUL character, and a
  lone UTF-16 surrogate (JSON's "\\ud800") cannot be encoded at all. The answer is 422
  naming the field.
- Whole numbers: ids and cursors are bigint in the database; `Id` bounds them, so
  `?after=1e30` is a 422 naming the parameter instead of a failure in SQL.
- Times: `Moment` is an aware time between 1900 and 2100 (UTC), which Python,
  PostgreSQL and every time zone shift can represent.

What still slips past (a value the types allow but the database refuses) is mapped to
422 in one place, app/errors.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import AfterValidator, Field

BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1

# A row id or a keyset cursor: a positive PostgreSQL bigint.
Id = Annotated[int, Field(ge=1, le=BIGINT_MAX)]

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _moment(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("缺少时区，请写成如 2026-03-01T09:00:00+08:00 的形式")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-12:00 is past year 9999 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError("时间超出范围：须在 1900-01-01 与 2100-01-01 之间")
    return value


# An aware point in time that every layer can hold.
Moment = Annotated[datetime, AfterValidator(_moment)]


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot store `value` as text, or None when it can."""
    if "\x00" in value:
        return "含有 NUL 字符（\\u0000），数据库无法保存，请删除后重试"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "含有无效的 Unicode 字符（孤立的代理项，如 \\ud800），请删除后重试"
    return None


def _strings(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string in a decoded JSON value (object keys included), with where it sits."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield (*path, k), k
            yield from _strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))


def body_text_problems(content_type: str, body: bytes) -> list[dict[str, Any]]:
    """The strings of a JSON or urlencoded form body that PostgreSQL cannot hold, each as
    {"where", "problem", "input": None, "field"} (the shape of every 422's details.errors).

    A body that does not parse is left alone: the route answers it in its own words."""
    if content_type.startswith("application/") and "json" in content_type.partition(";")[0]:
        try:
            pairs = list(_strings(json.loads(body), ()))
        except (ValueError, RecursionError):
            return []
        kind = "body field"
    elif content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
        pairs = [((k,), s) for k, v in form for s in (k, v)]
        kind = "form field"
    else:
        return []
    problems = []
    for path, text in pairs:
        problem = text_problem(text)
        if problem:
            field = ".".join(str(p) for p in path)
            where = f"{kind} '{field}'" if path else "request body"
            problems.append({"where": where, "problem": problem, "input": None, "field": field})
    return problems


# How a message names where a value sits: 字段“parties.0.name”, 查询参数“bbox”.
WHERE_ZH = {"body": "字段", "query": "查询参数", "path": "路径参数", "header": "请求头", "cookie": "Cookie"}


def where_zh(kind: str, path: tuple[str | int, ...] | list[str | int]) -> str:
    if not path:
        return "请求内容"
    return f"{WHERE_ZH.get(kind, '字段')}“{'.'.join(str(p) for p in path)}”"
