"""What a message a county user reads must be: Chinese, with no English sentence in it.

Codes, field names, paths and a technical term or two in a message are fine (`crs=gcj02`,
`Authorization: Bearer`); three English words in a row are a sentence nobody translated."""

from __future__ import annotations

import re

HAN = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_RUN = re.compile(r"[A-Za-z]{2,}(?:[\s,;:.!?'\"()]+[A-Za-z]{2,}){2,}")


def english_run(message: str) -> str | None:
    """The first run of three or more English words, or None."""
    found = ENGLISH_RUN.search(message)
    return found.group(0) if found else None


def assert_chinese(message: str, what: object = "") -> None:
    assert HAN.search(message), (what, message)
    assert english_run(message) is None, (what, english_run(message), message)
