"""Every message a county user reads is Chinese (issue 14, section 8): a representative set
of bad requests, each answered in the one error shape with an English `code` and a Chinese
`message` that names what to fix. A new English message fails here."""

from __future__ import annotations

import json
import uuid
from typing import Literal

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from app.errors import validation_error
from tests.api.test_cases_api import floor_and_point, report_body
from tests.chinese import assert_chinese


async def test_bad_requests_are_answered_in_chinese_with_english_codes(client, make_account, loaded_county):
    floor, unit, (lon, lat) = floor_and_point(loaded_county)
    reporter = await make_account("chief", node_code=floor.code)
    handler = await make_account("chief", node_code=unit.code.rsplit("-", 2)[0])
    r = await client.post("/api/v1/reports", json=report_body(lon, lat),
                          headers=reporter.headers | {"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    key = lambda: {"Idempotency-Key": str(uuid.uuid4())}  # noqa: E731
    without_severity = {k: v for k, v in report_body(lon, lat).items() if k != "severity"}
    actions = f"/api/v1/cases/{case_id}/actions"

    sent = {  # what is wrong: (request, status, code, a phrase the message must carry)
        "missing field": (lambda: client.post("/api/v1/reports", json=without_severity, headers=reporter.headers | key()),
                          422, "invalid_request", "字段“severity”：必须填写"),
        "wrong type": (lambda: client.post("/api/v1/reports", json=report_body(lon, lat, severity="重"),
                                   headers=reporter.headers | key()), 422, "invalid_request", "字段“severity”：应为整数"),
        "out of range": (lambda: client.post("/api/v1/reports", json=report_body(lon, lat, severity=9),
                                     headers=reporter.headers | key()), 422, "invalid_request", "字段“severity”：应不大于 4"),
        "not JSON": (lambda: client.post("/api/v1/reports", content=b'{"lon": 1,', headers=reporter.headers | key()
                                 | {"Content-Type": "application/json"}), 422, "invalid_request", "不是有效的 JSON"),
        "query parameter": (lambda: client.get("/api/v1/grid/nodes?limit=0", headers=reporter.headers), 422,
                            "invalid_request", "查询参数“limit”：应不小于 1"),
        "unknown node": (lambda: client.get("/api/v1/grid/nodes/NOPE/children", headers=reporter.headers), 404,
                         "node_not_found", "没有编码为“NOPE”的网格节点"),
        "unknown case": (lambda: client.get("/api/v1/cases/999999999", headers=reporter.headers), 404, "case_not_found",
                         "999999999"),
        "illegal action": (lambda: client.post(actions, json={"action": "close"}, headers=handler.headers), 409,
                           "illegal_transition", "不能结案（close）"),
        "missing fields": (lambda: client.post(actions, json={"action": "return"}, headers=handler.headers), 422,
                           "missing_fields", "须填写"),
        "not responsible": (lambda: client.post(actions, json={"action": "accept"}, headers=reporter.headers), 403,
                            "not_responsible", "承办"),
        "bad login": (lambda: client.post("/api/v1/auth/token", data={"username": "13900000000", "password": "不对"}), 401,
                      "invalid_credentials", "手机号或密码不正确"),
        "not authenticated": (lambda: client.get("/api/v1/me"), 401, "not_authenticated", "请先登录"),
        "bad token": (lambda: client.get("/api/v1/me", headers={"Authorization": "Bearer x.y.z"}), 401, "not_authenticated",
                      "访问令牌无效"),
        "bad refresh token": (lambda: client.post("/api/v1/auth/refresh", json={"refresh_token": "nope"}), 401,
                              "invalid_refresh_token", "重新登录"),
        "wrong role": (lambda: client.get("/api/v1/admin/users", headers=reporter.headers), 403, "forbidden",
                       "管理员"),
        "unknown crs": (lambda: client.get("/api/v1/grid/locate?lon=110.2&lat=37.7&crs=mars", headers=reporter.headers),
                        422, "invalid_request", "查询参数“crs”：应为以下之一：wgs84、gcj02、bd09"),
        "too large": (lambda: client.post("/api/v1/reports", content=b"x" * (300 * 1024), headers=reporter.headers | key()
                                  | {"Content-Type": "application/json"}), 413, "payload_too_large", "太大"),
        "NUL in the path": (lambda: client.get("/api/v1/grid/nodes/61%0027/children", headers=reporter.headers), 422,
                            "invalid_input", "NUL"),
        "unknown route": (lambda: client.get("/api/v1/nothing-here"), 404, "not_found", "/api/v1/nothing-here"),
        "wrong method": (lambda: client.post("/api/v1/grid/locate"), 405, "method_not_allowed", "POST"),
    }  # fmt: skip
    for what, (request, status, code, phrase) in sent.items():
        response = await request()
        assert response.status_code == status, (what, response.text)
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"}, what
        assert error["code"] == code, (what, error)
        assert error["code"].isascii(), (what, error)
        assert phrase in error["message"], (what, error["message"])
        assert_chinese(error["message"], what)


class Sample(BaseModel):
    count: int
    ratio: float
    flag: bool
    name: str = Field(max_length=3)
    floor: int = Field(ge=1)
    crs: Literal["wgs84", "gcj02"]
    items: list[int]


VALID = {"count": 1, "ratio": 0.5, "flag": True, "name": "甲", "floor": 1, "crs": "wgs84", "items": [1]}


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        ({"count": None}, "字段“count”：必须填写"),
        ({"count": "三"}, "字段“count”：应为整数"),
        ({"ratio": "半"}, "字段“ratio”：应为数字"),
        ({"flag": "也许"}, "字段“flag”：应为 true 或 false"),
        ({"name": "太长的名字"}, "字段“name”：最多 3 个字符"),
        ({"floor": 0}, "字段“floor”：应不小于 1"),
        ({"crs": "mars"}, "字段“crs”：应为以下之一：wgs84、gcj02"),
        ({"items": 5}, "字段“items”：应为列表"),
    ],
)
async def test_each_common_validation_error_is_said_in_chinese_naming_the_field(body, phrase):
    with pytest.raises(ValidationError) as raised:
        Sample.model_validate({k: v for k, v in (VALID | body).items() if v is not None})
    errors = [{**e, "loc": ("body", *e["loc"])} for e in raised.value.errors()]
    response = await validation_error(None, RequestValidationError(errors))  # type: ignore[arg-type]
    error = json.loads(response.body)["error"]
    assert error["code"] == "invalid_request" and phrase in error["message"], error["message"]
    assert_chinese(error["message"], body)
    assert error["details"]["errors"][0]["problem"]  # pydantic's own English stays, for programs
