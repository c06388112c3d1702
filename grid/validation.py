"""The report of a boundary import or check: pure data, no SQL.

Every problem names the node code (or the file row when the code itself is missing)
and, where it has one, a point (WGS-84 lon/lat) to look at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]

# Check names, stable: the API and tests key on them.
CHECKS = (
    "missing_field",  # no code or no level
    "duplicate_code",
    "code_too_long",  # more than 64 characters
    "unknown_level",
    "unknown_parent",
    "hierarchy",  # level order or chain
    "floor_range",
    "geometry_type",  # empty or not a polygon
    "invalid_geometry",  # ST_IsValidReason
    "repaired_geometry",  # --make-valid changed it
    "outside_parent",
    "sibling_overlap",
    "gap",  # share of a parent its children leave uncovered
    "missing_from_file",  # stored under the file's roots, absent from the file
    "database",  # the database refused the write (a rule the checks do not cover)
)


@dataclass(frozen=True)
class Problem:
    check: str
    severity: Severity
    code: str | None
    message: str
    row: int | None = None  # 1-based feature number in the file; None for stored nodes
    lon: float | None = None
    lat: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    source: str
    kind: Literal["import", "check"] = "import"
    crs: str = "EPSG:4326"
    features: int = 0
    tolerance_m: float = 1.0
    dry_run: bool = False
    problems: list[Problem] = field(default_factory=list)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0
    written: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        out["error_count"] = len(self.errors)
        out["warning_count"] = len(self.warnings)
        return out

    def summary(self) -> str:
        if self.kind == "check":
            return f"{self.source}：{self.features:,} 个节点；{len(self.errors)} 处错误，{len(self.warnings)} 处提醒"
        verb = "试运行，将写入" if self.dry_run and self.ok else ("已写入" if self.written else "未写入任何数据")
        counts = f"新增 {self.inserted:,}，修改 {self.updated:,}，未变 {self.unchanged:,}，撤销 {self.retired:,}"
        return (
            f"{self.source}：{self.features:,} 个要素（{self.crs}）；{len(self.errors)} 处错误，"
            f"{len(self.warnings)} 处提醒；{verb}" + (f"（{counts}）" if self.ok else "")
        )
