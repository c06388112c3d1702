"""Pure access rules: which grants fit which nodes, who sees what, lockouts, tokens."""

from datetime import UTC, datetime, timedelta

import pytest

from app.accounts import security
from app.accounts.exceptions import NotAuthenticated
from app.accounts.scope import Principal, ScopeNode, covers, grant_problem, path_covers
from app.main import create_app
from app.settings import DEFAULT_JWT_SECRET, Settings


def node(code, node_id, path, role="leader", level="county", **kw):
    return ScopeNode(role=role, node_id=node_id, code=code, name=code, level=level, path=path, **kw)


@pytest.mark.parametrize(
    ("role", "tier", "level", "ok"),
    [
        ("dispatcher", None, "township", True),
        ("dispatcher", None, "village", False),
        ("leader", None, "county", True),
        ("leader", None, "township", False),
        ("admin", None, "county", True),
        ("mediator", "village_house", "village", True),
        ("mediator", "village_house", "community", True),
        ("mediator", "village_house", "township", False),
        ("mediator", "township_hall", "township", True),
        ("mediator", "county_center", "county", True),
        ("mediator", "county_center", "township", False),
        ("mediator", None, "village", False),
        ("dispatcher", "township_hall", "township", False),
        ("chief", None, "village", False),  # chiefs come from posts
        ("king", None, "county", False),
    ],
)
def test_grants_fit_their_nodes(role, tier, level, ok):
    assert (grant_problem(role=role, tier=tier, node_level=level) is None) == ok


def test_a_scope_covers_its_subtree_only():
    village = node("V1", 305, "1.12.40.305", role="chief", level="village")
    assert covers([village], ["H9", "Z3", "V1", "S1", "A1", "T1", "C"])  # a household under V1
    assert covers([village], ["V1", "S1", "A1", "T1", "C"])  # V1 itself
    assert not covers([village], ["S1", "A1", "T1", "C"])  # its parent
    assert not covers([village], ["H7", "Z1", "V2", "S1", "A1", "T1", "C"])  # a sibling's household
    assert not covers([], ["C"])
    assert path_covers([village], "1.12.40.305.900")
    assert not path_covers([village], "1.12.40.3050")  # ids are compared whole, not as prefixes
    assert not path_covers([village], "")


def test_roles_are_the_union_of_grants_and_posts_and_admin_brings_no_data_scope():
    post = node("V1", 305, "1.12.40.305", role="chief", level="village", post_id=7, post_role="deputy")
    admin = node("C", 1, "1", role="admin")
    dispatcher = node("T1", 12, "1.12", role="dispatcher", level="township")
    p = Principal(user_id=1, county_code="610827", person_id=2, name="x", phone="13800000000",
                  grants=(admin, dispatcher), posts=(post,))  # fmt: skip
    assert p.roles == {"admin", "dispatcher", "chief"}
    assert p.scopes == (post, dispatcher)
    only_admin = Principal(user_id=1, county_code="610827", person_id=2, name="x", phone="1", grants=(admin,))
    assert only_admin.scopes == () and not covers(only_admin.scopes, ["C"])


def test_lockout_starts_at_the_threshold_doubles_and_is_capped():
    seconds = [security.lockout_seconds(failures=n, threshold=5, base=60) for n in range(1, 12)]
    assert seconds[:4] == [0, 0, 0, 0]
    assert seconds[4:8] == [60, 120, 240, 480]
    assert security.lockout_seconds(failures=500, threshold=5, base=60) == 86400


def settings(**kw):
    return Settings(database_url="postgresql://unused/unused", WUZHANG_JWT_SECRET="s" * 48, **kw)


def test_access_tokens_round_trip_and_expire():
    s = settings()
    token, lifetime = security.issue_access_token(settings=s, user_id=42)
    assert lifetime == 15 * 60
    claims = security.access_claims(settings=s, token=token)
    assert claims.user_id == 42 and claims.expires_at - claims.issued_at == lifetime
    old, _ = security.issue_access_token(settings=s, user_id=42, now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(NotAuthenticated, match="登录已过期"):
        security.access_claims(settings=s, token=old)
    other = Settings(database_url="postgresql://unused/unused", WUZHANG_JWT_SECRET="t" * 48)
    with pytest.raises(NotAuthenticated, match="访问令牌无效"):
        security.access_claims(settings=other, token=token)
    with pytest.raises(NotAuthenticated):
        security.access_claims(settings=s, token="not.a.jwt")


def test_refresh_tokens_are_stored_as_hashes():
    token, digest = security.new_refresh_token()
    assert len(token) >= 40 and digest == security.hash_token(token) and token not in digest


def test_passwords_verify_and_unknown_accounts_fail_the_same_way():
    pw = security.passwords(Settings(database_url="x", WUZHANG_ARGON2_TIME_COST=1, WUZHANG_ARGON2_MEMORY_KIB=8))
    assert pw is security.passwords(Settings(database_url="y", WUZHANG_ARGON2_TIME_COST=1, WUZHANG_ARGON2_MEMORY_KIB=8))
    h = pw.hash("correct-horse")
    assert h.startswith("$argon2id$") and "correct-horse" not in h
    assert pw.verify(h, "correct-horse")
    assert not pw.verify(h, "wrong-horse")
    assert not pw.verify(None, "correct-horse")  # no account: still hashes, still fails
    assert not pw.verify("garbage", "correct-horse")


def test_production_refuses_the_default_or_a_short_secret():
    with pytest.raises(RuntimeError, match="WUZHANG_JWT_SECRET"):
        create_app(Settings(database_url="postgresql://unused/unused", WUZHANG_ENV="production"))
    with pytest.raises(RuntimeError, match="WUZHANG_JWT_SECRET"):
        create_app(Settings(database_url="postgresql://u/u", WUZHANG_ENV="production", WUZHANG_JWT_SECRET="short"))
    with pytest.raises(RuntimeError, match="WUZHANG_LEDGER_KEY"):  # the ledger's signing key is required too
        create_app(Settings(database_url="postgresql://u/u", WUZHANG_ENV="production", WUZHANG_JWT_SECRET="r" * 48))
    assert create_app(Settings(database_url="postgresql://u/u", WUZHANG_ENV="production",
                               WUZHANG_JWT_SECRET="r" * 48, WUZHANG_LEDGER_KEY="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="))  # fmt: skip
    # Development keeps working with the default, so `make run` needs no set-up.
    assert Settings(database_url="x").jwt_secret.get_secret_value() == DEFAULT_JWT_SECRET
    assert create_app(Settings(database_url="postgresql://unused/unused"))


def test_an_unknown_environment_name_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="WUZHANG_ENV"):
        Settings(database_url="x", WUZHANG_ENV="prod")


def test_the_secret_never_shows_in_the_settings_repr():
    assert "s" * 48 not in repr(settings()) and "s" * 48 not in str(settings().model_dump())


def test_out_of_scope_reads_look_missing_and_writes_are_forbidden():
    """Reads are filtered by the SQL (grid.cases.repository: a case under the reader's
    `read_paths`, or theirs; phones under `Principal.scope_ids`); writes are checked by
    grid.cases.service.can_act. These are the rules' inputs and the refusals' statuses."""
    from app import errors
    from app.routers.cases import actor_of
    from grid.cases import service as cases
    from grid.cases.exceptions import CaseNotFound, NotResponsible

    chief = Principal(user_id=1, county_code="610827", person_id=2, name="x", phone="1",
                      posts=(node("V1", 305, "1.12.40.305", role="chief", level="village"),))  # fmt: skip
    dispatcher = Principal(user_id=3, county_code="610827", person_id=4, name="y", phone="2",
                           grants=(node("T1", 12, "1.12", role="dispatcher", level="township"),))  # fmt: skip
    leader = Principal(user_id=5, county_code="610827", person_id=6, name="z", phone="3",
                       grants=(node("C", 1, "1", role="leader"),))  # fmt: skip
    inside, outside, other_township = "1.12.40.305.900", "1.12.41.306.901", "1.13.50.400"
    # Reading (personal data included) is by scope: the chief's subtree, nothing beside it.
    assert chief.scope_ids == (305,) and actor_of(chief).read_paths == ("1.12.40.305",)
    assert path_covers(chief.scopes, inside) and not path_covers(chief.scopes, outside)
    # Acting: those holding the case, or a dispatcher or mediator over it; a leader only reads.
    mine, not_mine = {"handling_path": inside, "is_recipient": True}, {"handling_path": inside, "is_recipient": False}
    assert actor_of(chief).act_paths == () and cases.can_act(actor_of(chief), mine)
    assert not cases.can_act(actor_of(chief), not_mine)
    assert not cases.can_act(actor_of(chief), {"handling_path": outside, "is_recipient": False})
    assert cases.can_act(actor_of(dispatcher), not_mine)
    assert not cases.can_act(actor_of(dispatcher), {"handling_path": other_township, "is_recipient": False})
    assert not cases.can_act(actor_of(dispatcher), {"handling_path": "1.120.7", "is_recipient": False})  # not a prefix
    assert actor_of(leader).read_paths == ("1",) and not cases.can_act(actor_of(leader), not_mine)
    # The refusals: a read or a write outside looks like no case at all; a write by a reader
    # who does not handle the case is forbidden.
    read, write = CaseNotFound("no case 7 in your area", case_id=7), NotResponsible("not yours", case_id=7)
    assert errors._status_for(read) == 404 and errors._status_for(write) == 403
