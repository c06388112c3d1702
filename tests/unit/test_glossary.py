"""One set of words: every code has its Chinese name in grid/glossary.py, and no other
module spells those names; one time zone for people (grid/people_time.py)."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import PROJECT_ROOT, Settings
from grid import glossary, people_time
from grid.cases.enums import Section, State, Tier
from grid.cases.workflow import Action

GLOSSARY = PROJECT_ROOT / "grid" / "glossary.py"
SOURCE_DIRS = ("app", "grid", "geo", "migrations", "scripts", "bench")
SOURCE_SUFFIXES = {".py", ".js", ".html", ".css", ".sh"}
# Names the map once used for the tiers, which differed from everyone else's.
DIVERGENT = ("村和事堂", "镇和事堂", "县矛调中心", "矛调中心")


def source_files() -> list[Path]:
    return [
        p
        for d in SOURCE_DIRS
        for p in sorted((PROJECT_ROOT / d).rglob("*"))
        if p.suffix in SOURCE_SUFFIXES and p != GLOSSARY and "vendor" not in p.parts
    ]


def all_names() -> set[str]:
    return {
        *glossary.TIER_NAMES.values(),
        *glossary.STATE_NAMES.values(),
        *glossary.ACTION_NAMES.values(),
        *glossary.SECTION_NAMES.values(),
        *glossary.ROLE_NAMES.values(),
    }


# The leadership mechanisms' words (grid/leadership): spelled only in the glossary too.
LEADERSHIP_LISTS = (
    glossary.SOURCE_NAMES,
    glossary.HARD_OUTCOME_NAMES,
    glossary.FIVE_DUTY_NAMES,
    glossary.UNIT_PART_NAMES,
    glossary.LEADER_BODY_NAMES,
    glossary.MEETING_LEVEL_NAMES,
    glossary.TASK_STATE_NAMES,
    glossary.ASSISTANCE_GROUP_NAMES,
    glossary.ASSISTANCE_TYPE_NAMES,
    glossary.REFERRAL_OUTCOME_NAMES,
    glossary.CLOSURE_CHANNEL_NAMES,
    glossary.TEAM_MEMBER_KIND_NAMES,
    glossary.TASK_OWNER_KIND_NAMES,
    glossary.TASK_TIMELINESS_NAMES,
)


def leadership_names() -> set[str]:
    return {name for names in LEADERSHIP_LISTS for name in names.values()}


def test_the_leadership_words_cover_their_codes():
    from grid.leadership.models import HARD_OUTCOMES, SOURCES, UNIT_PARTS

    assert set(glossary.SOURCE_NAMES) == set(SOURCES)
    assert set(glossary.HARD_OUTCOME_NAMES) == set(HARD_OUTCOMES)
    assert set(glossary.UNIT_PART_NAMES) == set(UNIT_PARTS)
    assert list(glossary.HARD_OUTCOME_NAMES.values()) == ["案结事了", "息诉罢访", "事心双结"]
    assert len(glossary.FIVE_DUTY_NAMES) == 5
    assert glossary.word(glossary.SOURCE_NAMES, "visit") == "来访"
    assert glossary.word(glossary.SOURCE_NAMES, "later") == "later"


def test_every_tier_state_section_and_action_has_a_chinese_name():
    assert set(glossary.TIER_NAMES) == {t.value for t in Tier}
    assert set(glossary.STATE_NAMES) == {s.value for s in State}
    assert set(glossary.SECTION_NAMES) == {s.value for s in Section}
    assert {a.value for a in Action} <= set(glossary.ACTION_NAMES)
    han = re.compile(r"^[\u4e00-\u9fff]+$")
    assert all(han.match(n) for n in all_names()), all_names()
    assert [glossary.tier_name(t) for t in Tier] == ["五长", "和事屋", "和事堂", "调处中心"]
    assert glossary.action_name("file_facts") == "填写事实"
    assert glossary.action_name("a_step_added_later") == "a_step_added_later"  # shown, never a failed read


def test_the_tier_names_are_spelled_only_in_the_glossary():
    """Not even in a comment: one place to change them."""
    tiers = [n for n in glossary.TIER_NAMES.values() if n != "五长"]  # 五长 also names the system itself
    found = [(str(p.relative_to(PROJECT_ROOT)), n) for p in source_files() for n in tiers if n in p.read_text()]
    assert found == []


def test_the_divergent_tier_names_are_gone_from_the_whole_project():
    this = Path(__file__).resolve()
    paths = [*source_files(), *(PROJECT_ROOT / "docs").glob("*.md"), PROJECT_ROOT / "README.md",
             *(p for p in (PROJECT_ROOT / "tests").rglob("*.py") if p.resolve() != this)]  # fmt: skip
    found = [(str(p.relative_to(PROJECT_ROOT)), n) for p in paths for n in DIVERGENT if n in p.read_text()]
    assert found == []


def test_no_other_module_carries_a_name_of_the_glossary_as_a_literal():
    """Python: a string constant that is exactly a name; the page: a name in quotes."""
    names = all_names() | leadership_names()
    found = []
    for path in source_files():
        text = path.read_text()
        where = str(path.relative_to(PROJECT_ROOT))
        if path.suffix == ".py":
            found += [(where, node.value) for node in ast.walk(ast.parse(text))
                      if isinstance(node, ast.Constant) and node.value in names]  # fmt: skip
        else:
            found += [(where, n) for n in names if f"'{n}'" in text or f'"{n}"' in text or f">{n}<" in text]
    assert found == []


def test_a_time_for_a_person_is_in_the_county_zone():
    deadline = datetime(2026, 12, 3, 14, 36, tzinfo=UTC)
    assert people_time.for_person(deadline) == "12月03日 22:36"
    assert people_time.for_person(datetime(2026, 12, 31, 16, 5, tzinfo=UTC)) == "01月01日 00:05"  # the next day there
    assert people_time.for_person(None) == "—"
    try:
        people_time.use_zone("Asia/Urumqi")  # a county that keeps Xinjiang time
        assert people_time.for_person(deadline) == "12月03日 20:36"
    finally:
        people_time.use_zone(people_time.DEFAULT_ZONE)


def test_the_time_zone_is_one_setting_and_a_typo_stops_the_start():
    assert Settings().time_zone == "Asia/Shanghai"
    assert Settings(WUZHANG_TIME_ZONE="Asia/Urumqi").time_zone == "Asia/Urumqi"  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="not a time zone"):
        Settings(WUZHANG_TIME_ZONE="Asia/Beijing")  # type: ignore[call-arg]


def test_an_exported_start_date_is_the_county_calendar_day(tmp_path):
    """16:30 UTC on 1 March is half past midnight on 2 March in the county."""
    from openpyxl import load_workbook

    from grid.roster import _write_roster_workbook

    started = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
    path = tmp_path / "roster.xlsx"
    _write_roster_workbook([{"node_code": "610827", "role": "chief", "name": "张三", "phone": "13800000001",
                             "started_at": started}], path)  # fmt: skip
    rows = list(load_workbook(path).active.iter_rows(values_only=True))
    assert rows[1][4].date().isoformat() == "2026-03-02"
