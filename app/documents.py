"""The printable and public forms of what a case publishes: the notice (公示) and the
mediation agreement (人民调解协议书) as PDF (reportlab, a CJK TrueType font from Debian)
and as HTML pages, each with a QR code (segno) of its public URL.

The HTML pages load only /static/public/public.css and carry no script, so they work
under the strict Content-Security-Policy of app/headers.py; the QR code is inline SVG.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from grid.cases.notice import county_date, county_time
from grid.glossary import figure_name

# Debian's CJK fonts that reportlab can embed (TrueType outlines; Noto CJK is CFF and cannot).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # fonts-wqy-zenhei
    "/usr/share/fonts/truetype/arphic/uming.ttc",  # fonts-arphic-uming
    "/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf",  # fonts-arphic-gbsn00lp
)
FONT = "wuzhang-cjk"


class FontMissing(RuntimeError):
    """No font with Chinese glyphs: a PDF would show empty boxes, so none is made."""


@lru_cache(maxsize=4)
def _font(configured: str) -> str:
    """Register the CJK font once per process; its path. WUZHANG_PDF_FONT first, then the
    known Debian paths, then whatever fontconfig offers for Chinese in a TrueType file."""
    found = [configured] if configured else [p for p in FONT_CANDIDATES if Path(p).is_file()]
    if not found and shutil.which("fc-list"):
        listed = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10).stdout
        found = sorted(
            line.split(":")[0] for line in listed.splitlines() if line.split(":")[0].endswith((".ttf", ".ttc"))
        )
    for path in found:
        try:
            pdfmetrics.registerFont(TTFont(FONT, path, subfontIndex=0))
            return path
        except Exception:  # reportlab raises its own TTFError and OSError; try the next
            if configured:
                raise FontMissing(f"WUZHANG_PDF_FONT={configured} 不是可嵌入的 TrueType 字体") from None
    raise FontMissing("找不到含中文字形的 TrueType 字体：请安装 fonts-wqy-microhei，或设置 WUZHANG_PDF_FONT")


def qr_svg(url: str) -> str:
    return segno.make(url, error="m").svg_inline(scale=5, border=4, title="二维码")


# --- PDF -------------------------------------------------------------------------------


class _QR(Flowable):
    """A QR code drawn as squares, sharp at any scale and readable after printing."""

    def __init__(self, url: str, size: float = 40 * mm) -> None:
        super().__init__()
        self.matrix = segno.make(url, error="m").matrix
        self.size = size
        self.width = self.height = size

    def draw(self) -> None:
        n, quiet = len(self.matrix), 4
        cell = self.size / (n + 2 * quiet)
        c = self.canv
        c.setFillColorRGB(0, 0, 0)
        for y, row in enumerate(self.matrix):
            for x, dark in enumerate(row):
                if dark:
                    c.rect((x + quiet) * cell, self.size - (y + quiet + 1) * cell, cell, cell, stroke=0, fill=1)


def _styles(font: str) -> dict[str, ParagraphStyle]:
    _font(font)  # registered before any Paragraph is made: they look their font up at once
    base = ParagraphStyle("body", fontName=FONT, fontSize=11, leading=17, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=20, leading=28, alignment=1, spaceAfter=4 * mm),
        "sub": ParagraphStyle("sub", parent=base, alignment=1, spaceAfter=4 * mm),
        "h": ParagraphStyle("h", parent=base, fontSize=13, leading=20, spaceBefore=3 * mm, spaceAfter=1 * mm),
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=11),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    # Paragraph reads a little markup: escape the text, keep its line breaks.
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _pdf(story: list[Flowable], *, title: str) -> bytes:
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title=title, leftMargin=20 * mm, rightMargin=20 * mm,
                            topMargin=18 * mm, bottomMargin=18 * mm, invariant=True)  # fmt: skip
    doc.build(story)
    return out.getvalue()


def _qr_block(url: str, caption: str, s: dict[str, ParagraphStyle]) -> Flowable:
    table = Table([[_QR(url), [_p(caption, s["body"]), Spacer(1, 2 * mm), _p(url, s["small"])]]],
                  colWidths=[45 * mm, None])  # fmt: skip
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    return KeepTogether([Spacer(1, 6 * mm), table])


def notice_pdf(content: Mapping[str, Any], *, sha256: str, url: str, font: str = "") -> bytes:
    s = _styles(font)
    story: list[Flowable] = [
        _p(f"{content['county']}矛盾纠纷调处结果公示", s["title"]),
        _p("一事一案 · 六公开", s["sub"]),
        *[_p(line, s["body"]) for line in _notice_facts(content)],
    ]
    for section in content["sections"]:
        story += [_p(section["title"], s["h"]), _p(section["body"], s["body"])]
    story += [
        Spacer(1, 4 * mm),
        _p(f"公示时间：{county_time(datetime.fromisoformat(content['published_at']))}", s["body"]),
        _p(f"本公示内容的 SHA-256：{sha256}（已签入本案台账）", s["small"]),
        _qr_block(url, "扫描二维码查看网上公示", s),
    ]
    return _pdf(story, title=f"案件 {content['case_id']} 公示")


def _notice_facts(content: Mapping[str, Any]) -> list[str]:
    return [
        f"案件编号：{content['case_id']}",
        f"纠纷类别：{content['category']}",
        f"承办单位：{content['handled_by']}",
        f"当事人：{'、'.join(content['parties']) or '（未登记）'}",
        f"受理日期：{content['reported_on']}",
        f"处理结果：{content['outcome']}",
    ]


def agreement_pdf(content: Mapping[str, Any], *, sha256: str, verify_url: str, font: str = "") -> bytes:
    s = _styles(font)
    issued = datetime.fromisoformat(content["issued_at"])
    story: list[Flowable] = [
        _p("人民调解协议书", s["title"]),
        _p(f"{content['committee']}　　案件编号：{content['case_id']}", s["sub"]),
        _p("当事人", s["h"]),
    ]
    story += [_p(f"{p['role']}：{p['name']}　　联系电话：{p['phone'] or '—'}", s["body"]) for p in content["parties"]]
    story += [
        _p("纠纷主要事实、争议事项", s["h"]), _p(content["dispute"], s["body"]),
        _p("经调解，当事人自愿达成如下协议", s["h"]), _p(content["terms"], s["body"]),
        _p("履行方式", s["h"]), _p(content["performance"], s["body"]),
        _p("履行期限", s["h"]), _p(content["due"], s["body"]),
        Spacer(1, 3 * mm),
        _p("本协议经当事人签名、人民调解员签名并加盖人民调解委员会印章后生效。当事人应当按照约定履行。"
           "本协议书一式三份，当事人各执一份，人民调解委员会留存一份。", s["body"]),
        Spacer(1, 6 * mm),
    ]  # fmt: skip
    signatures = [
        [_p(f"{p['role']}（签名）：", s["body"]), "", _p("日期：", s["body"]), ""] for p in content["parties"]
    ]
    signatures.append([_p("人民调解员（签名）：", s["body"]), "", _p("日期：", s["body"]), ""])
    sign = Table(signatures, colWidths=[40 * mm, 55 * mm, 15 * mm, 40 * mm], rowHeights=12 * mm)
    sign.setStyle(TableStyle([("LINEBELOW", (1, 0), (1, -1), 0.5, (0, 0, 0)),
                              ("LINEBELOW", (3, 0), (3, -1), 0.5, (0, 0, 0)),
                              ("VALIGN", (0, 0), (-1, -1), "BOTTOM")]))  # fmt: skip
    seal = Table([[_p(f"{content['committee']}（印章）\n\n\n{county_date(issued)}", s["body"])]],
                 colWidths=[70 * mm], rowHeights=40 * mm)  # fmt: skip
    seal.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.5, (0.5, 0.5, 0.5)), ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                              ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))  # fmt: skip
    story += [
        KeepTogether([sign, Spacer(1, 6 * mm), Table([["", seal]], colWidths=[100 * mm, 70 * mm])]),
        Spacer(1, 2 * mm),
        _p(f"人民调解员：{content['mediator']}　　出具时间：{county_time(issued)}", s["small"]),
        _p(f"本协议书内容的 SHA-256：{sha256}（已签入本案台账）", s["small"]),
        _qr_block(verify_url, "扫描二维码核验本协议书：核验页显示协议书的哈希与本案台账是否完整，不含个人信息", s),
    ]
    return _pdf(story, title=f"人民调解协议书（案件 {content['case_id']}）")


def figures_pdf(report: Any, *, font: str = "") -> bytes:
    """The quarterly report (grid.stats.report.QuarterReport) for the county joint meeting:
    the headline figures, then a table per view; every time in the county's zone."""
    from grid.stats import report as figures

    s = _styles(font)
    cell = ParagraphStyle("cell", parent=s["small"], fontSize=7.5, leading=10)

    def grid_table(rows: list[list[str]]) -> Table:
        t = Table([[_p(v, cell) for v in row] for row in rows], repeatRows=1, hAlign="LEFT")
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, (0.6, 0.6, 0.6)),
                               ("BACKGROUND", (0, 0), (-1, 0), (0.9, 0.92, 0.95)),
                               ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))  # fmt: skip
        return t

    r = report
    story: list[Flowable] = [
        _p(r.title, s["title"]),
        _p(r.quarter.title, s["sub"]),
        _p(
            f"生成时间：{county_time(r.generated_at)}"
            + ("（本季度尚未结束，数字截至生成时间）" if r.unfinished else ""),
            s["small"],
        ),
        _p("一、主要指标", s["h"]),
        grid_table([[figure_name("figure"), figure_name("value")], *([n, v] for n, v in figures.headline(r))]),
        _p(
            "调解成功率 = 调解成功数 ÷ 有调解结果数（本季度内有调解结果的案件，不含按设置不计入的）；"
            "小事不出村、大事不出镇、矛盾不上交的比例均以化解案件数为分母。",
            s["small"],
        ),
        _p("二、各层级办理情况", s["h"]),
        grid_table(figures.printed(r.tiers["items"], figures.TIER_PRINTED[1:], first="tier_name")),
        _p("三、各镇街", s["h"]),
        grid_table(figures.printed(r.townships["items"], figures.PRINTED)),
        _p("四、各类别", s["h"]),
        grid_table(figures.printed(r.categories["items"], figures.PRINTED)),
        _p("五、逐月", s["h"]),
        grid_table(figures.printed(r.monthly["items"], figures.PRINTED, first="month")),
        _p("六、超期情况", s["h"]),
        *(item for rows in figures.printed_lateness(r) for item in (grid_table(rows), Spacer(1, 3 * mm))),
        _p("七、领导机制", s["h"]),
        grid_table(
            [[figure_name("figure"), figure_name("value")], *([n, v] for n, v in figures.leadership_headline(r))]
        ),
        Spacer(1, 3 * mm),
        grid_table(figures.printed_visits(r)),
        _p(
            "按期办结率 = 按期办结 ÷（已办结 + 已超期未办结）：本季度内到期的督办事项；"
            "包案按本季度收案的疑难案件计，结果为现状；倒流、依法终结、救助转介按发生时间计。",
            s["small"],
        ),
    ]
    return _pdf(story, title=f"{r.title} {r.quarter.code}")


# --- HTML --------------------------------------------------------------------------------


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="stylesheet" href="/static/public/public.css"></head>'
        f"<body><main>{body}</main></body></html>\n"
    )


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{escape(line)}</p>" for line in text.splitlines() if line.strip())


def notice_html(content: Mapping[str, Any], *, sha256: str, url: str, pdf_url: str, superseded: bool) -> str:
    facts = "".join(f"<li>{escape(line)}</li>" for line in _notice_facts(content))
    sections = "".join(
        f"<section><h2>{escape(s['title'])}</h2>{_paragraphs(s['body'])}</section>" for s in content["sections"]
    )
    note = '<p class="warn">本案此后又发布了新的公示，这里是较早的一份。</p>' if superseded else ""
    published = county_time(datetime.fromisoformat(content["published_at"]))
    body = (
        f'<h1>{escape(content["county"])}矛盾纠纷调处结果公示</h1><p class="sub">一事一案 · 六公开</p>{note}'
        f'<ul class="facts">{facts}</ul>{sections}'
        f'<footer><p>公示时间：{escape(published)}</p><p class="hash">SHA-256：{escape(sha256)}（已签入本案台账）</p>'
        f'<div class="qr">{qr_svg(url)}<p><a href="{escape(url)}">{escape(url)}</a></p>'
        f'<p><a href="{escape(pdf_url)}">下载可打印的 PDF</a></p></div></footer>'
    )
    return _page(f"案件 {content['case_id']} 公示", body)


def verify_html(*, check: Any, url: str, messages: Sequence[str]) -> str:
    """`check`: grid.cases.publishing.AgreementCheck. No personal data: hashes and verdicts."""
    verdict = "有效" if check.valid else "无效"
    css = "ok" if check.valid else "bad"
    lines = "".join(f"<li>{escape(m)}</li>" for m in messages)
    body = (
        f'<h1>人民调解协议书核验</h1><p class="verdict {css}">核验结果：{verdict}</p><ul class="facts">'
        f"<li>出具单位：{escape(check.committee)}</li><li>案件编号：{check.case_id}</li>"
        f"<li>出具时间：{escape(county_time(check.issued_at))}</li>"
        f'<li class="hash">协议书 SHA-256：{escape(check.sha256)}</li></ul><ul>{lines}</ul>'
        f'<footer><div class="qr">{qr_svg(url)}<p><a href="{escape(url)}">{escape(url)}</a></p></div>'
        "<p>核验页不显示当事人的任何个人信息。请将纸质协议书上印的 SHA-256 与上面的值逐字核对。</p></footer>"
    )
    return _page("人民调解协议书核验", body)
