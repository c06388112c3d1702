"""Whatever a client sends in the query string, the answer is never a 500."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

junk = st.one_of(
    st.text(max_size=30),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", " ", "1,2,3,4", "-0", "1e999", "0x10", "١٢٣", "110.2\x00", "%00", "NaN", "wgs84"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/api/v1/grid/locate", "/api/v1/grid/nodes", "/api/v1/grid/nodes/610827/children"]),
    params=st.dictionaries(
        st.sampled_from(["lon", "lat", "crs", "floor", "level", "parent", "bbox", "cursor", "limit"]), junk, max_size=5
    ),
)
async def test_junk_query_strings_get_a_4xx_or_an_answer_never_a_500(api, path, params):
    r = await api.get(path, params=params)
    assert r.status_code in (200, 404, 422), (r.status_code, r.text)
    if r.status_code != 200:
        assert set(r.json()["error"]) == {"code", "message", "details"}
