"""The category catalogue the phone app's report form offers, and what severity means.

Seeded into the `category` table by a migration; the county can add or rename
categories there. These are the defaults and the source of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    code: str
    name_zh: str
    name_en: str


CATEGORIES: tuple[Category, ...] = (
    Category("neighbours", "邻里纠纷", "neighbours"),
    Category("marriage_family", "婚姻家庭", "marriage and family"),
    Category("land_forest", "土地山林", "land and forest"),
    Category("homestead", "宅基地", "homestead"),
    Category("unpaid_wages", "劳资纠纷", "unpaid wages"),
    Category("property_management", "物业纠纷", "property management"),
    Category("land_acquisition", "征地拆迁", "land acquisition"),
    Category("safety_hazard", "安全隐患", "safety hazard"),
    Category("other", "其他", "other"),
)

# What a reporter means by each severity; shown on the form next to the choice.
SEVERITIES: dict[int, tuple[str, str]] = {
    1: ("一般", "minor: a quarrel between a few people; can be settled on the spot by the chief"),
    2: ("较大", "significant: several households or a family matter that needs the village's harmony house"),
    3: ("重大", "serious: many people, money or land at stake, or a risk of violence; needs the township hall"),
    4: ("特别重大", "critical: a group incident, a threat to life or safety, or a matter for several departments"),
}
