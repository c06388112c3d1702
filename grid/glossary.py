"""The county's words, each said once: the Chinese name a person reads for every code
the API, the database and the ledger use (tiers, states, actions, sections, roles).

Every surface takes its names from here: the API's `*_name` fields and its catalogue,
the map page (through the catalogue), the inbox and push texts, and the notes the
server writes into the ledger. Codes stay English; no other module spells these
names (tests/unit/test_glossary.py looks). Levels are named in grid/levels.py and
categories and severities in grid/cases/catalogue.py.

Keyed by the codes themselves, so the grid outside `grid.cases` may use it too; the
same test checks every tier, state, section and action of grid.cases has its name.
"""

from __future__ import annotations

from collections.abc import Mapping

# 小事不出村、大事不出镇、矛盾不上交: the grid's chiefs, then the three mediation rooms.
TIER_NAMES: Mapping[str, str] = {
    "chief": "五长",
    "village_house": "和事屋",
    "township_hall": "和事堂",
    "county_center": "调处中心",
}

STATE_NAMES: Mapping[str, str] = {
    "reported": "已上报",
    "assigned": "待受理",
    "accepted": "已受理",
    "mediating": "调解中",
    "resolved": "已化解",
    "failed": "调解未成",
    "return_visit": "回访中",
    "closed": "已结案",
    "escalated": "已上交",
    "returned": "已退回",
    "reopened": "重新办理",
    "terminated": "依法终结",
}

# 一事一案六公开.
SECTION_NAMES: Mapping[str, str] = {
    "investigation": "调查",
    "facts": "事实",
    "policy": "政策",
    "reasoning": "评理",
    "disposition": "处罚",
    "return_visit": "回访",
}

# The workflow's actions (grid.cases.workflow.Action), then the steps the ledger records
# besides them; a section written is `file_<section>` (see `action_name`).
ACTION_NAMES: Mapping[str, str] = {
    "accept": "受理",
    "start_mediation": "开始调解",
    "resolve": "化解",
    "fail": "调解未成",
    "escalate": "上交",
    "return": "退回",
    "return_visit": "回访",
    "close": "结案",
    "reopen": "重新办理",
    "extend": "延期",
    "report": "上报",
    "assign": "分派",
    "attach": "上传照片",
    "deadline_warning": "临期提醒",
    "deadline_missed": "已超期",
    "push_unreachable": "提醒未送达",
    "take_ownership": "包案",
    # 坐班接访 and 零倒流 (grid/leadership/visits.py, backlog.py)
    "register_visit": "来访登记",
    "settle": "当场化解",
    "route_to_tier": "交办网格",
    "assign_unit": "交办部门",
    "reflow": "倒流",
    # 包案 (grid.leadership.ownership): the server lists a case that reached the county
    # centre as hard; its owners tick the five duties, hand it on, note progress, conclude it.
    "mark_hard": "列为疑难案件",
    "five_duty": "落实五包",
    "direct": "交办",
    "note": "记录进展",
    "conclude": "包案办结",
    # The county centre's steps (grid/leadership/centre.py), the hall's team, social assistance.
    "terminate": "依法终结",
    "centre_overdue": "超期督促",
    "joint_assign": "联合办理",
    "joint_done": "联合办理完成",
    "supervise": "纪检监督",
    "refer_assistance": "救助转介",
    "assistance_outcome": "救助结果",
}
SECTION_ACTION_PREFIX = "file_"

# Roles of accounts and of a case's holders (post roles: chief, deputy).
ROLE_NAMES: Mapping[str, str] = {
    "chief": "五长",
    "deputy": "副职",
    "mediator": "调解员",
    "dispatcher": "调度员",
    "leader": "领导",
    "admin": "管理员",
    "department_staff": "部门工作人员",
    "reception": "接访人员",
    "supervisor": "纪检监督员",
    "city": "市级",
    "staff": "部门承办人",  # a department's staff holding a case (坐班接访: 交办部门)
}

# Why push could not ring a person (app/push.py), for the ledger's note.
UNREACHABLE_REASONS: Mapping[str, str] = {
    "no registered device": "没有登记手机",
    "every device token is dead": "登记的手机都已失效",
}


# How a mediation ended (grid.cases.enums.Outcome), as a notice or agreement says it.
OUTCOME_NAMES: Mapping[str, str] = {
    "agreement": "调解成功，达成协议",
    "failed": "调解未成",
}

# What a progress notice to the reporter or a previous holder says happened
# (grid.cases.service.follow_notice): its title, and the phrase for the other steps.
NOTICE_TITLES: Mapping[str, str] = {
    "escalate": "案件已上交",
    "return": "案件已退回",
    "resolve": "案件已调解成功",
    "close": "案件已结案",
    "terminate": "案件已依法终结",
}
PROGRESS_DONE: Mapping[str, str] = {
    "accept": "已受理",
    "start_mediation": "已开始调解",
    "fail": "调解未成",
    "return_visit": "已回访",
    "extend": "已延期",
    "terminate": "依法终结，转入法定途径",
}

# The county's figures (grid/stats, docs/statistics.md): the name of each figure and of
# each column of the stats API's tables, as the CSV and XLSX headers show them.
FIGURE_NAMES: Mapping[str, str] = {
    "received": "收案数",
    "concluded": "有调解结果数",
    "succeeded": "调解成功数",
    "excluded": "不计入成功率数",
    "success_rate": "调解成功率",
    "settled": "化解案件数",
    "settled_in_village": "小事不出村",
    "settled_in_township": "大事不出镇",
    "settled_below_county": "矛盾不上交",
    "settled_in_village_rate": "小事不出村比例",
    "settled_in_township_rate": "大事不出镇比例",
    "settled_below_county_rate": "矛盾不上交比例",
    "escalated_cases": "上交案件数",
    "escalations": "上交次数",
    "escalations_by_deadline": "超期自动上交次数",
    "escalations_by_person": "主动上交次数",
    "returned_cases": "退回案件数",
    "returns": "退回次数",
    "reopened_cases": "重新办理案件数",
    "reopens": "重新办理次数",
    "extensions": "延期次数",
    "late_cases": "曾超期案件数",
    "missed_deadlines": "超期次数",
    "still_late": "仍未办结的超期",
    "late_hours_median": "超期时长中位数（小时）",
    "late_hours_max": "最长超期（小时）",
    "accept_hours_median": "受理用时中位数（小时）",
    "resolve_hours_median": "化解用时中位数（小时）",
    "visited": "回访数",
    "satisfaction_scored": "有满意度评分数",
    "satisfaction_mean": "平均满意度",
    "satisfied": "满意数（4至5分）",
    "satisfaction_rate": "满意率",
    "cases": "到达案件数",
    "assignments": "分派次数",
    "accepted": "受理数",
    "failed": "调解未成数",
    "escalated": "上交数",
    "returned": "退回数",
    "reports": "上报数",
    "last_report_at": "最近上报时间",
    "silent": "90天无上报",
    "month": "月份",
    "tier": "层级",
    "tier_name": "层级名称",
    "code": "编码",
    "name": "名称",
    "township_code": "镇街编码",
    "township_name": "镇（街道）",
    "figure": "指标",
    "value": "数值",
    "numerator": "分子",
    "denominator": "分母",
    "period_start": "统计起始日",
    "period_end": "统计截止日",
    "generated_at": "生成时间",
    "yes": "是",
    "no": "否",
    # The leadership figures (/stats/leadership, grid/stats/leadership.py).
    "section": "分项",
    "total": "合计",
    "item": "对象",
    "visits": "接访数",
    "leader_name": "坐班领导",
    "undecided": "尚未处理",
    "resolved_later": "后续化解",
    "hard": "包案案件数",
    "owned": "已落实包案领导",
    "unowned": "未落实包案领导",
    "hard_open": "尚未办结",
    "closed_otherwise": "按一般程序结案",
    "batches": "积案批次数",
    "batches_cleared": "已清零批次数",
    "batch_total": "积案数",
    "batch_resolved": "已化解积案",
    "batch_open": "未化解积案",
    "batch_owned": "已包案积案",
    "cleared": "清零",
    "reflows": "倒流次数",
    "tasks_due": "期内到期督办事项",
    "on_time_rate": "按期办结率",
    "referred": "转介数",
    "amount": "批准金额（元）",
    "lawful_closures": "依法终结数",
}
# The title of each view of the figures (the XLSX sheet's name, the file's name).
FIGURE_VIEWS: Mapping[str, str] = {
    "summary": "总体指标",
    "tiers": "各层级",
    "monthly": "逐月",
    "townships": "各镇街",
    "categories": "各类别",
    "nodes": "各网格",
    "lateness": "超期情况",  # a sheet of the quarterly report (grid/stats/report.py)
    "leadership": "领导机制",
}
# The parts of the leadership figures (/stats/leadership).
LEADERSHIP_SECTIONS: Mapping[str, str] = {
    "visits": "坐班接访",
    "ownership": "领导包案",
    "batches": "积案清零",
    "reflows": "零倒流",
    "tasks": "督办落实",
    "referrals": "社会救助转介",
    "closures": "依法终结情况",
}
# The dashboard's section of those figures (/dashboard).
LEADERSHIP_WORK = "领导工作"


def figure_name(key: str) -> str:
    return FIGURE_NAMES.get(key, key)


# --- the leadership mechanisms (grid/leadership) ----------------------------------------

# Where a case came from (case_file.source).
SOURCE_NAMES: Mapping[str, str] = {
    "grid": "网格上报",
    "visit": "来访",
    "hotline": "12345热线",
    "online": "网上信访",
    "handed_down": "中省交办",
}

# How a hard case (包案) ended (case_file.hard_outcome).
HARD_OUTCOME_NAMES: Mapping[str, str] = {
    "case_closed": "案结事了",
    "complaint_withdrawn": "息诉罢访",
    "heart_settled": "事心双结",
}

# 五包: the owning leader's and unit's five duties on a hard case, in their order.
FIVE_DUTY_NAMES: Mapping[str, str] = {
    "know": "包掌握情况",
    "educate": "包思想教育",
    "solve": "包解决问题",
    "stabilise": "包稳控管理",
    "by_law": "包依法处理",
}

# What a department or township is to a case (case_unit.part).
UNIT_PART_NAMES: Mapping[str, str] = {
    "owner": "责任单位",
    "joint": "联合办理单位",
    "referral": "转介单位",
}

# The four county bodies a duty leader comes from (坐班接访).
LEADER_BODY_NAMES: Mapping[str, str] = {
    "party_committee": "县委",
    "peoples_congress": "县人大",
    "government": "县政府",
    "cppcc": "县政协",
}

# 联席会议 levels and the state of a supervised task (督办事项).
MEETING_LEVEL_NAMES: Mapping[str, str] = {
    "county": "县级联席会议",
    "township": "乡镇联席会议",
}
TASK_STATE_NAMES: Mapping[str, str] = {
    "open": "未办结",
    "done": "已办结",
    "overdue": "已超期",
}

# 社会救助: the county's catalogue of assistance, grouped, and a referral's outcome.
ASSISTANCE_GROUP_NAMES: Mapping[str, str] = {
    "basic_living": "基本生活救助",
    "special": "专项救助",
    "emergency": "急难社会救助",
    "social_forces": "社会力量参与",
}
ASSISTANCE_TYPE_NAMES: Mapping[str, str] = {
    "subsistence": "最低生活保障",
    "destitute": "特困人员救助供养",
    "medical": "医疗救助",
    "education": "教育救助",
    "housing": "住房救助",
    "employment": "就业救助",
    "disaster": "受灾人员救助",
    "emergency": "急难社会救助",
    "social_forces": "社会力量参与",
}
REFERRAL_OUTCOME_NAMES: Mapping[str, str] = {
    "approved": "已批准",
    "declined": "未批准",
}

# 依法终结: the legal channel a case is referred to when the centre closes it lawfully.
CLOSURE_CHANNEL_NAMES: Mapping[str, str] = {
    "litigation": "诉讼",
    "arbitration": "仲裁",
    "administrative_review": "行政复议",
}

# 五位一体: the kinds of member of a township hall's mediation team.
TEAM_MEMBER_KIND_NAMES: Mapping[str, str] = {
    "cadre": "镇村干部",
    "police": "派出所干警",
    "judicial": "司法所干部",
    "legal_adviser": "法律顾问",
    "social_worker": "社会工作者",
    "deputy": "两代表一委员",
}
# The members of the team who mediate one case.
WORK_GROUP = "工作组"

# 督办: who owns a supervised task, and how a done task stands against its due day.
TASK_OWNER_KIND_NAMES: Mapping[str, str] = {
    "department": "部门",
    "township": "乡镇（街道）",
    "person": "个人",
}
TASK_TIMELINESS_NAMES: Mapping[str, str] = {
    "on_time": "按期办结",
    "late": "逾期办结",
}
# 坐班接访: what the duty leader decided for a walk-in visit (case_visit.decision).
VISIT_DECISION_NAMES: Mapping[str, str] = {
    "settle": "当场化解",
    "route": "交办网格",
    "unit": "交办部门",
    "own": "领导包案",
}
# 零倒流: how a resolved backlog case came back (case_reflow.kind).
REFLOW_KIND_NAMES: Mapping[str, str] = {
    "reopen": "重新办理",
    "linked": "关联新案",
}


def word(names: Mapping[str, str], code: str) -> str:
    """The name of `code` in one of the lists above; a code it does not know is shown as it is."""
    return names.get(code, code)


def outcome_name(outcome: str) -> str:
    return OUTCOME_NAMES.get(outcome, outcome)


def notice_title(action: str) -> str:
    return NOTICE_TITLES.get(action, "案件进展")


def progress_done(action: str) -> str:
    return PROGRESS_DONE.get(action, "有新进展")


def tier_name(tier: str) -> str:
    return TIER_NAMES[tier]


def state_name(state: str) -> str:
    return STATE_NAMES[state]


def section_name(section: str) -> str:
    return SECTION_NAMES[section]


def action_name(action: str) -> str:
    """The name of a workflow action or ledger step; a code this glossary does not know
    yet (a step added later) is shown as it is rather than failing a read."""
    if action.startswith(SECTION_ACTION_PREFIX):
        section = action.removeprefix(SECTION_ACTION_PREFIX)
        if section in SECTION_NAMES:
            return f"填写{section_name(section)}"
    return ACTION_NAMES.get(action, action)


def role_name(role: str) -> str:
    return ROLE_NAMES.get(role, role)


def unreachable_reason(reason: str) -> str:
    return UNREACHABLE_REASONS.get(reason, reason)
