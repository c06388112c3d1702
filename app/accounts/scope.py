"""Who may see what: pure functions of a principal's grants and posts (no DB, no HTTP).

A scope is a node: the caller sees its whole subtree. Roles and their scopes:
- chief: every node the person holds a current post on (chief or deputy), from `post`;
- mediator: the area of their tier's room (village_house: a village or community,
  township_hall: a township, county_center: the county);
- dispatcher: one township; leader: the county;
- admin: accounts and imports only; no data scope unless also granted another role.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

ROLES = ("chief", "mediator", "dispatcher", "leader", "admin")
TIERS = ("village_house", "township_hall", "county_center")

# The levels a grant may sit on; the mediator's level follows from the tier.
GRANT_LEVELS: dict[str, frozenset[str]] = {
    "dispatcher": frozenset({"township"}),
    "leader": frozenset({"county"}),
    "admin": frozenset({"county"}),
    "chief": frozenset(),  # chiefs come from posts, not grants
}
TIER_LEVELS: dict[str, frozenset[str]] = {
    "village_house": frozenset({"village", "community"}),
    "township_hall": frozenset({"township"}),
    "county_center": frozenset({"county"}),
}
ROLES_WITH_DATA_SCOPE = frozenset({"chief", "mediator", "dispatcher", "leader"})


@dataclass(frozen=True)
class ScopeNode:
    """A granted or held node, with its materialised path (`1.12.305`) for SQL filters."""

    role: str
    node_id: int
    code: str
    name: str
    level: str
    path: str
    tier: str | None = None
    post_id: int | None = None
    post_role: str | None = None  # chief | deputy, for scopes that come from a post


@dataclass(frozen=True)
class Principal:
    user_id: int
    county_code: str
    person_id: int
    name: str
    phone: str
    grants: tuple[ScopeNode, ...] = ()
    posts: tuple[ScopeNode, ...] = ()
    # Access tokens issued before this are refused (a password reset ends every login).
    password_changed_at: datetime | None = field(default=None, compare=False)
    # Per request: the cached principal is copied with the caller's address.
    ip: str | None = field(default=None, compare=False)

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(g.role for g in self.grants) | (frozenset({"chief"}) if self.posts else frozenset())

    @property
    def scopes(self) -> tuple[ScopeNode, ...]:
        """Every node whose subtree the caller may read personal data in."""
        return self.posts + tuple(g for g in self.grants if g.role in ROLES_WITH_DATA_SCOPE)

    @property
    def scope_ids(self) -> tuple[int, ...]:
        """Ids of the nodes whose subtrees the caller may read personal data in."""
        return tuple(s.node_id for s in self.scopes)

    def has_role(self, role: str) -> bool:
        return role in self.roles


def grant_problem(*, role: str, tier: str | None, node_level: str) -> str | None:
    """Why (role, tier) cannot be granted on a node of `node_level`; None if it can."""
    if role not in ROLES:
        return f"unknown role {role!r}; roles are {', '.join(ROLES)}"
    if role == "chief":
        return "chiefs are not granted: a chief's scope comes from the posts they hold"
    if role == "mediator":
        if tier not in TIER_LEVELS:
            return f"a mediator needs a tier: one of {', '.join(TIERS)}"
        allowed = TIER_LEVELS[tier]
    else:
        if tier is not None:
            return f"only mediators have a tier, not a {role}"
        allowed = GRANT_LEVELS[role]
    if node_level not in allowed:
        what = f"a {tier} mediator" if role == "mediator" else f"a {role}"
        return f"{what} is granted on a {' or '.join(sorted(allowed))}, not on a {node_level}"
    return None


def covers(scopes: Iterable[ScopeNode], lineage_codes: Iterable[str]) -> bool:
    """True if a node whose ancestors-and-self are `lineage_codes` lies in any scope."""
    roots = {s.code for s in scopes}
    return any(code in roots for code in lineage_codes)


def path_covers(scopes: Iterable[ScopeNode], path: str) -> bool:
    """The same test on an ltree path of node ids (`1.12.305`)."""
    ids = set(path.split(".")) if path else set()
    return any(str(s.node_id) in ids for s in scopes)
