"""Who may see what: pure functions of a principal's grants and posts (no DB, no HTTP).

A scope is a node: the caller sees its whole subtree. Roles and their scopes:
- chief: every node the person holds a current post on (chief or deputy), from `post`;
- mediator: the area of their tier's room (village_house: a village or community,
  township_hall: a township, county_center: the county);
- dispatcher: one township; leader: the county;
- admin: accounts and imports only; no data scope unless also granted another role;
- department_staff: the cases their department is a unit of (包案, joint handling, referrals);
- reception: the visits they register (as any reporter reads their own reports);
- supervisor (纪检监督): every case at the county centre's tier;
- city (市级): the whole of each county whose root it is granted on, any county of the
  deployment; it reads and writes nothing (app.policy refuses its every write).
Every account belongs to one county (`county_code`); it reads that county's rows only,
a city account those of its granted counties (`Principal.counties`).
The last three have no node scope: the case read rule (grid.cases.repository) adds theirs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from grid.glossary import role_name, tier_name
from grid.levels import level_name

ROLES = ("chief", "mediator", "dispatcher", "leader", "admin", "department_staff", "reception", "supervisor", "city")
TIERS = ("village_house", "township_hall", "county_center")

# The levels a grant may sit on; the mediator's level follows from the tier.
GRANT_LEVELS: dict[str, frozenset[str]] = {
    "dispatcher": frozenset({"township"}),
    "leader": frozenset({"county"}),
    "admin": frozenset({"county"}),
    "department_staff": frozenset({"county"}),
    "reception": frozenset({"county"}),
    "supervisor": frozenset({"county"}),
    "city": frozenset({"county"}),
    "chief": frozenset(),  # chiefs come from posts, not grants
}
TIER_LEVELS: dict[str, frozenset[str]] = {
    "village_house": frozenset({"village", "community"}),
    "township_hall": frozenset({"township"}),
    "county_center": frozenset({"county"}),
}
ROLES_WITH_DATA_SCOPE = frozenset({"chief", "mediator", "dispatcher", "leader", "city"})


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
    department_id: int | None = None  # for department_staff grants: the department they work for
    department_code: str | None = None
    county_code: str = ""  # the node's county: a city grant's may differ from the account's


@dataclass(frozen=True)
class Principal:
    user_id: int
    county_code: str
    person_id: int
    name: str
    phone: str
    grants: tuple[ScopeNode, ...] = ()
    posts: tuple[ScopeNode, ...] = ()
    county_name: str = ""  # the name of the account's county's root node
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

    @property
    def counties(self) -> tuple[str, ...]:
        """The counties whose rows the caller may read: its own, and a city account's granted ones."""
        granted = (g.county_code for g in self.grants if g.role == "city")
        return tuple(dict.fromkeys((self.county_code, *granted)))

    @property
    def read_only(self) -> bool:
        """A city account (市级) reads and never writes."""
        return self.has_role("city")

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def department_ids(self) -> tuple[int, ...]:
        """The departments whose cases the caller may read (department_staff grants)."""
        return tuple(g.department_id for g in self.grants if g.role == "department_staff" and g.department_id)

    @property
    def supervises(self) -> bool:
        """纪检监督: may read every case at the county centre's tier."""
        return self.has_role("supervisor")


def grant_problem(*, role: str, tier: str | None, node_level: str, department: str | None = None) -> str | None:
    """Why (role, tier, department) cannot be granted on a node of `node_level`; None if it can."""
    if role not in ROLES:
        return f"不认识的身份“{role}”；可选：{'、'.join(ROLES)}"
    if (role == "department_staff") != (department is not None):
        if department is None:
            return f"{role_name(role)}须指定所属部门（department_code）"
        return f"只有{role_name('department_staff')}属于部门，{role_name(role)}不填部门（department_code）"
    if role == "chief":
        return f"{role_name('chief')}不用授权：其范围来自所任的岗位，请在名册里登记岗位"
    if role == "mediator":
        if tier not in TIER_LEVELS:
            return f"{role_name('mediator')}须指定所属层级（tier）：{'、'.join(TIERS)}"
        allowed = TIER_LEVELS[tier]
    else:
        if tier is not None:
            return f"只有{role_name('mediator')}有层级（tier），{role_name(role)}不填"
        allowed = GRANT_LEVELS[role]
    if node_level not in allowed:
        what = f"{tier_name(tier)}的{role_name('mediator')}" if role == "mediator" and tier else role_name(role)
        levels = "或".join(level_name(lv) for lv in sorted(allowed))
        return f"{what}只能授权在{levels}一级（{'/'.join(sorted(allowed))}），不能授权在{level_name(node_level)}（{node_level}）"
    return None


def covers(scopes: Iterable[ScopeNode], lineage_codes: Iterable[str]) -> bool:
    """True if a node whose ancestors-and-self are `lineage_codes` lies in any scope."""
    roots = {s.code for s in scopes}
    return any(code in roots for code in lineage_codes)


def path_covers(scopes: Iterable[ScopeNode], path: str) -> bool:
    """The same test on an ltree path of node ids (`1.12.305`)."""
    ids = set(path.split(".")) if path else set()
    return any(str(s.node_id) in ids for s in scopes)
