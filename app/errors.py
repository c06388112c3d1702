"""One error shape everywhere, and the one table from domain errors to HTTP status.

{"error": {"code": "node_not_found", "message": "...", "details": {...}}}
"""

from __future__ import annotations

import logging
import re
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.accounts.exceptions import (
    AccountConflict,
    AccountsError,
    Forbidden,
    InvalidCredentials,
    InvalidGrant,
    InvalidRefreshToken,
    NotAuthenticated,
    TooManyAttempts,
    UserNotFound,
    WeakPassword,
)
from app.inputs import where_zh
from geo.exceptions import BadBoundaryFile, GeoError, MissingCRS, PointOffEarth, UnknownCRS, UnsupportedFormat
from grid.cases.exceptions import (
    AttachmentNotFound,
    AttachmentRefused,
    AttachmentTooLarge,
    CaseClosed,
    CaseNotFound,
    IdempotencyConflict,
    IllegalAction,
    MissingFields,
    NotPublishable,
    NotResponsible,
    PublicationNotFound,
    SectionsMissing,
)
from grid.exceptions import (
    GridError,
    HierarchyError,
    ImportRefused,
    InvalidInput,
    NodeNotFound,
    OutsideJurisdiction,
    PersonNotFound,
    PostConflict,
    TileNotFound,
)
from grid.leadership.backlog import BatchNotFound
from grid.leadership.departments import DepartmentExists, DepartmentNotFound
from grid.leadership.duty import NoDutyLeader
from grid.leadership.meetings import MeetingNotFound, TaskDone, TaskNotFound
from grid.leadership.refusals import NotFound as LeadershipNotFound
from grid.stats.exceptions import NoDataScope

log = logging.getLogger(__name__)

_HAN = re.compile(r"[\u4e00-\u9fff]")

STATUS_BY_ERROR: dict[type[Exception], int] = {
    CaseNotFound: 404,
    NoDataScope: 403,
    IdempotencyConflict: 409,
    IllegalAction: 409,
    NotResponsible: 403,
    MissingFields: 422,
    SectionsMissing: 409,
    CaseClosed: 409,
    NotPublishable: 409,
    PublicationNotFound: 404,
    MeetingNotFound: 404,
    TaskNotFound: 404,
    TaskDone: 409,
    AttachmentTooLarge: 413,
    AttachmentRefused: 415,
    AttachmentNotFound: 404,
    NodeNotFound: 404,
    PersonNotFound: 404,
    OutsideJurisdiction: 422,
    InvalidInput: 422,
    UnknownCRS: 422,
    PointOffEarth: 422,
    HierarchyError: 422,
    ImportRefused: 422,
    UnsupportedFormat: 415,
    MissingCRS: 422,
    BadBoundaryFile: 422,
    PostConflict: 409,
    NoDutyLeader: 409,  # 坐班接访: fill the roster first
    BatchNotFound: 404,
    GridError: 400,
    GeoError: 400,
    NotAuthenticated: 401,
    InvalidCredentials: 401,
    InvalidRefreshToken: 401,
    Forbidden: 403,
    UserNotFound: 404,
    AccountConflict: 409,
    InvalidGrant: 422,
    WeakPassword: 422,
    TooManyAttempts: 429,
    AccountsError: 400,
    DepartmentNotFound: 404,
    DepartmentExists: 409,
    LeadershipNotFound: 404,
    TileNotFound: 404,
}

HTTP_CODES = {
    404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden",
    413: "payload_too_large", 400: "bad_request",
}  # fmt: skip


HTTP_MESSAGES = {
    401: "请先登录", 403: "没有权限做这件事", 413: "提交的内容太大，请减少后重试",
    400: "请求的格式不对，请检查后重试",
}  # fmt: skip


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _status_for(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, (GridError, GeoError, AccountsError))
    status = _status_for(exc)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.details.get("retry_after", 60))
    return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=status, headers=headers)


def _where(loc: tuple[Any, ...]) -> str:
    kinds = {"query": "query parameter", "path": "path parameter", "body": "body field", "header": "header"}
    if loc and loc[0] in kinds:
        rest = ".".join(str(p) for p in loc[1:])
        return f"{kinds[loc[0]]} '{rest}'" if rest else "request body"
    return ".".join(str(p) for p in loc)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    errors = [_explain(e) for e in raw]
    message = "；".join(_say(e) for e in raw[:5]) or "请求的格式不对，请检查后重试"
    return JSONResponse(error_body("invalid_request", message, {"errors": errors}), status_code=422)


def _explain(e: dict[str, Any]) -> dict[str, Any]:
    """details.errors: where and what, in pydantic's English, for programs."""
    loc = tuple(e.get("loc", ()))
    if e.get("type") == "json_invalid":  # loc is ("body", <character offset>)
        reason = (e.get("ctx") or {}).get("error", "")
        offset = loc[1] if len(loc) > 1 else "?"
        return {"where": "request body", "problem": f"not valid JSON ({reason} at character {offset})", "input": None,
                "type": "json_invalid"}  # fmt: skip
    return {"where": _where(loc), "problem": e.get("msg", ""), "input": _jsonable(e.get("input")),
            "type": e.get("type")}  # fmt: skip


# What pydantic's error types mean, for a person; {…} are filled from the error's ctx.
PROBLEMS_ZH: dict[str, str] = {
    "missing": "必须填写",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数，不能有小数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "finite_number": "应为有限的数字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "string_type": "应为文字",
    "string_too_short": "至少要有 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符，请删减",
    "string_pattern_mismatch": "格式不对",
    "too_short": "至少要有 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应不小于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应不大于 {le}",
    "enum": "应为以下之一：{expected}",
    "literal_error": "应为以下之一：{expected}",
    "datetime_parsing": "应为带时区的时间，如 2026-03-01T09:00:00+08:00",
    "datetime_from_date_parsing": "应为带时区的时间，如 2026-03-01T09:00:00+08:00",
    "datetime_type": "应为带时区的时间，如 2026-03-01T09:00:00+08:00",
    "date_parsing": "应为日期，如 2026-03-01",
    "date_from_datetime_parsing": "应为日期，如 2026-03-01",
    "date_type": "应为日期，如 2026-03-01",
    "dict_type": "应为 JSON 对象（{…}）",
    "model_type": "应为 JSON 对象（{…}）",
    "model_attributes_type": "应为 JSON 对象（{…}）",
    "list_type": "应为列表（[…]）",
    "extra_forbidden": "不是可接受的字段，请删除",
    "uuid_parsing": "格式不对",
    "url_parsing": "应为网址",
}


def _say(e: dict[str, Any]) -> str:
    """One error in Chinese, naming the field: 字段“severity”：应为整数."""
    loc = tuple(e.get("loc", ()))
    kind = e.get("type", "")
    ctx = e.get("ctx") or {}
    if kind == "json_invalid":
        offset = loc[1] if len(loc) > 1 else "?"
        return f"请求内容不是有效的 JSON（第 {offset} 个字符处），请检查括号、引号和逗号"
    where = where_zh(str(loc[0]), loc[1:]) if loc else "请求内容"
    if kind == "value_error" and _HAN.search(str(ctx.get("error", ""))):
        return f"{where}：{ctx['error']}"  # our own validators speak Chinese already
    template = PROBLEMS_ZH.get(kind, "取值无效，请检查")
    try:
        problem = template.format(**{k: _plain(v) for k, v in ctx.items()})
    except (KeyError, IndexError):
        problem = template
    return f"{where}：{problem}"


def _plain(value: Any) -> str:
    """A ctx value as a message shows it: pydantic's "'a', 'b' or 'c'" as a、b、c."""
    return str(value).replace("'", "").replace(" or ", "、").replace(", ", "、")


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    return str(value)[:200]


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else code
    if not _HAN.search(message):  # Starlette's own words ("Not Found", "Method Not Allowed")
        message = HTTP_MESSAGES.get(exc.status_code, f"请求无法处理（HTTP {exc.status_code}）")
        if exc.status_code == 404:
            message = f"这个地址没有内容：{request.url.path}；接口清单见 /docs"
        elif exc.status_code == 405:
            message = f"{request.url.path} 不接受 {request.method} 请求；可用的方法见 /docs"
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


# How long a client should wait before trying again while the database is unreachable.
RETRY_AFTER_S = 5


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database is down, restarting, or every connection is busy: 503, try again."""
    if isinstance(exc, PoolTimeout):
        message = "服务正忙，暂时没有空闲的数据库连接；请过几秒再试"
        code = "database_busy"
    elif isinstance(exc, psycopg.errors.QueryCanceled):
        message = "数据库响应超时；请再试一次，或缩小查询范围（更小的区域或更少的条数）"
        code = "database_timeout"
    else:
        message = "暂时连不上数据库；请过几秒再试"
        code = "database_unavailable"
    log.warning("503 on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return JSONResponse(error_body(code, message), status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


# What the database refused about a value, in words a person can act on. A value the
# input boundary (app/inputs.py) let through ends here, never as a 500; the statement's
# transaction is rolled back, so nothing of the request is written.
DATA_ERRORS: dict[type[psycopg.Error], str] = {
    psycopg.errors.NumericValueOutOfRange: "数值超出数据库可保存的范围",
    psycopg.errors.DatetimeFieldOverflow: "时间超出数据库可保存的范围",
    psycopg.errors.InvalidDatetimeFormat: "时间格式无效",
    psycopg.errors.InvalidTextRepresentation: "数值或编码的格式无效",
    psycopg.errors.CharacterNotInRepertoire: "文字含有无效字符",
    psycopg.errors.UntranslatableCharacter: "文字含有数据库无法保存的字符",
    psycopg.errors.StringDataRightTruncation: "文字过长",
}


async def database_refused(request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot hold (422), or a row that already exists (409)."""
    assert isinstance(exc, (psycopg.DataError, psycopg.IntegrityError))
    diag = exc.diag
    log.info("database refused %s %s: %s %s", request.method, request.url.path, type(exc).__name__,
             diag.message_primary)  # fmt: skip
    if isinstance(exc, (psycopg.errors.UniqueViolation, psycopg.errors.ExclusionViolation)):
        message = "同样的记录已经存在（例如这个手机号已有账号），或刚被他人同时写入；请刷新后查看，不要重复提交"
        return JSONResponse(error_body("conflict", message, {"constraint": diag.constraint_name}), status_code=409)
    if isinstance(exc, psycopg.IntegrityError):
        message = "数据库拒绝了这次写入：它与已有数据的约束不符；请检查提交的内容，本次未写入任何数据"
        return JSONResponse(error_body("invalid_input", message, {"constraint": diag.constraint_name}),
                            status_code=422)  # fmt: skip
    what = next((m for cls, m in DATA_ERRORS.items() if isinstance(exc, cls)), "提交的值数据库无法保存")
    message = f"{what}；请检查提交的数值、时间和文字，本次未写入任何数据"
    return JSONResponse(error_body("invalid_input", message, {"sqlstate": diag.sqlstate}), status_code=422)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        error_body("internal_error", "服务器出错了，已记录下来；请稍后再试，或联系管理员"), status_code=500
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(GridError, domain_error)
    app.add_exception_handler(GeoError, domain_error)
    app.add_exception_handler(AccountsError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
    app.add_exception_handler(psycopg.DataError, database_refused)
    app.add_exception_handler(psycopg.IntegrityError, database_refused)
    app.add_exception_handler(PoolTimeout, database_unavailable)
    app.add_exception_handler(Exception, unexpected_error)
