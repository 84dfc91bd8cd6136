"""The Chinese documents keep pace with the English ones.

A translated page (README.zh-CN.md, docs/zh-CN/NAME.md) has the same
section structure as its English page (heading levels in order) and the
same code blocks, byte for byte: a reader who follows either language types
the same commands. The two link to each other, and every relative link in a
Chinese page leads to a file that exists.

A new English page without its Chinese page fails.
"""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ZH = DOCS / "zh-CN"

FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def english_pages():
    return [ROOT / "README.md"] + sorted(DOCS.glob("*.md"))


def chinese_page(english):
    if english.parent == ROOT:
        return ROOT / "README.zh-CN.md"
    return ZH / english.name


def outline(text):
    """The page's headings (levels only) and its code blocks, in order."""
    levels, blocks, block = [], [], None
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            if block is None:
                block = []
            else:
                blocks.append("\n".join(block))
                block = None
            continue
        if block is not None:
            block.append(line)
        elif re.match(r"#{1,6} ", line):
            levels.append(len(line.split(" ", 1)[0]))
    assert block is None, "a code block is never closed"
    return levels, blocks


PAGES = english_pages()
IDS = [str(p.relative_to(ROOT)) for p in PAGES]


@pytest.mark.parametrize("english", PAGES, ids=IDS)
def test_every_english_page_has_a_chinese_page(english):
    assert chinese_page(english).is_file(), \
        f"{chinese_page(english).relative_to(ROOT)} is missing: translate the page too"


@pytest.mark.parametrize("english", PAGES, ids=IDS)
def test_same_sections_and_code_blocks(english):
    chinese = chinese_page(english)
    if not chinese.is_file():
        pytest.fail(f"{chinese.relative_to(ROOT)} is missing")
    en_levels, en_blocks = outline(english.read_text())
    zh_levels, zh_blocks = outline(chinese.read_text())
    assert zh_levels == en_levels, "heading levels differ"
    assert len(zh_blocks) == len(en_blocks), "a code block was added or lost"
    for number, (en, zh) in enumerate(zip(en_blocks, zh_blocks), 1):
        assert zh == en, f"code block {number} differs"


@pytest.mark.parametrize("english", PAGES, ids=IDS)
def test_the_languages_link_to_each_other(english):
    chinese = chinese_page(english)
    if not chinese.is_file():
        pytest.fail(f"{chinese.relative_to(ROOT)} is missing")
    to_zh = chinese.relative_to(english.parent) if english.parent == ROOT \
        else pathlib.Path("zh-CN") / chinese.name
    assert f"]({to_zh})" in english.read_text()
    to_en = "README.md" if english.parent == ROOT else f"../{english.name}"
    assert f"]({to_en})" in chinese.read_text()


def test_chinese_links_lead_somewhere():
    pages = [ROOT / "README.zh-CN.md"] + sorted(ZH.glob("*.md"))
    broken = []
    for page in pages:
        if not page.is_file():
            continue
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken
