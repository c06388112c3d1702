"""What a case publishes, as plain data (pure): the public notice (公示), with personal data
taken out, and the mediation agreement (人民调解协议书). Each is hashed over its canonical
JSON (grid.cases.ledger.canonical_json), the hash the ledger's step signs.

The notice shows the six sections (六公开) and who handled the case; never a party's full
name (张三 → 张*), a phone number (a party's, or any mobile or landline number written in
a section's text), nor where the parties live (no located node, no report text).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from grid import people_time
from grid.cases.enums import Section, Tier
from grid.cases.ledger import canonical_json
from grid.glossary import outcome_name, tier_name

PHONE_HIDDEN = "（电话已隐去）"
# An 11-digit mobile (optionally +86, optionally split by spaces or dashes), and a
# landline with its area code; neither inside a longer run of digits.
_MOBILE = re.compile(r"(?<![\d])(?:\+?86[-\s]?)?1[3-9]\d(?:[-\s]?\d){8}(?![\d])")
_LANDLINE = re.compile(r"(?<![\d])0\d{2,3}[-\s]?\d{7,8}(?![\d])")


def county_time(at: datetime) -> str:
    """A time on a printed notice or agreement, in the county's zone (WUZHANG_TIME_ZONE)."""
    return people_time.local(at).strftime("%Y年%m月%d日 %H:%M")


def county_date(at: datetime) -> str:
    return people_time.local(at).strftime("%Y年%m月%d日")


def mask_name(name: str) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧*: the first character only."""
    name = name.strip()
    return f"{name[0]}*" if name else "*"


def redact(text: str, parties: Sequence[Mapping[str, Any]]) -> str:
    """`text` with the parties' names masked and every phone number taken out."""
    for party in sorted(parties, key=lambda p: -len(p["name"] or "")):
        name = (party["name"] or "").strip()
        if len(name) > 1:  # a one-character name would mask that character everywhere
            text = text.replace(name, mask_name(name))
        phone = (party.get("phone") or "").strip()
        if len(phone) >= 5:
            text = text.replace(phone, PHONE_HIDDEN)
    text = _MOBILE.sub(PHONE_HIDDEN, text)
    return _LANDLINE.sub(PHONE_HIDDEN, text)


def handled_by(case: Mapping[str, Any]) -> str:
    """Who handled it, without pointing at anyone's home: a chief's node can be a household,
    so the chiefs' tier is named alone."""
    tier = Tier(case["tier"])
    return tier_name(tier.value) if tier is Tier.chief else f"{case['handling_node_name']}{tier_name(tier.value)}"


def notice_content(
    *, case: Mapping[str, Any], parties: Sequence[Mapping[str, Any]], sections: Mapping[str, str],
    category_name: str, county_name: str, published_at: datetime,
) -> dict[str, Any]:  # fmt: skip
    return {
        "kind": "notice",
        "case_id": case["id"],
        "county": county_name,
        "handled_by": handled_by(case),
        "category": category_name,
        "reported_on": county_date(case["reported_at"]),
        "outcome": outcome_name(case["outcome"]) if case["outcome"] else "办理中",
        "parties": [f"{mask_name(p['name'])}（{redact(p['role'], parties)}）" for p in parties],
        "sections": [
            {"section": s.value, "title": s.name_zh, "body": redact(sections[s.value], parties)}
            for s in Section
            if sections.get(s.value, "").strip()
        ],
        "published_at": published_at.isoformat(),
    }


def agreement_content(
    *, case: Mapping[str, Any], parties: Sequence[Mapping[str, Any]], dispute: str, terms: str, performance: str,
    due: str, mediator: str, county_name: str, issued_at: datetime,
) -> dict[str, Any]:  # fmt: skip
    """The agreement as issued: it names the parties in full (it is theirs to sign); only
    its hash and the ledger's state are public (the verify page)."""
    return {
        "kind": "agreement",
        "case_id": case["id"],
        "county": county_name,
        "committee": f"{case['handling_node_name']}人民调解委员会",
        "parties": [{"name": p["name"], "role": p["role"], "phone": p.get("phone") or ""} for p in parties],
        "dispute": dispute,
        "terms": terms,
        "performance": performance,
        "due": due,
        "mediator": mediator,
        "issued_at": issued_at.isoformat(),
    }


def digest(content: Mapping[str, Any]) -> str:
    """The sha256 of the content's canonical JSON: what the ledger signs, what anyone recomputes."""
    return hashlib.sha256(canonical_json(dict(content))).hexdigest()
