"""Entities as HTML: NER.render for notebooks and files, `koner ner --format html`; text is escaped, never run."""
import html
import re
import subprocess
import sys

import pytest

from koner.render import TAG_NAMES, Palette, marked

pytestmark = pytest.mark.lean

ATTACK = '<script>alert(1)</script><img src=x onerror="alert(2)"> 아이유 & "서울역"'


def _visible(fragment: str) -> str:
    """The text a browser shows for the marked-up text: tags and label chips removed, entities unescaped."""
    no_labels = re.sub(r'<span class="koner-label">.*?</span>', "", fragment)
    return html.unescape(re.sub(r"<[^>]+>", "", no_labels))


def test_render_highlights_each_entity_with_its_label(ner):
    text = "어제 아이유가 서울역에서 삼성전자 직원 김민수 씨를 만났다."
    view = ner.render(text)
    page = view.html
    assert page.startswith("<!doctype html>") and "<script" not in page and "://" not in page  # no assets
    marks = re.findall(r'<mark class="koner-t-[0-9a-f]+" data-label="(\w+)"[^>]*>([^<]*)<span', page)
    assert marks == [(e.label, e.text) for e in ner(text)] and len(marks) >= 4
    for tag, name in TAG_NAMES.items():  # the legend names every type of the model
        assert f"<b>{tag}</b> {name}" in page
    assert view._repr_html_().startswith('<div class="koner-view"><style>') and "아이유" in view._repr_html_()
    assert repr(view) == f"Rendered(1 text(s), {len(marks)} entities)"


def test_markup_in_the_text_is_escaped_exactly(ner):
    page = ner.render([ATTACK, ""]).html
    body = page.split("</ul>", 1)[1]
    assert "<script" not in body and "<img" not in body and body.count("&lt;") == 3  # each < shown as text
    blocks = re.findall(r'<div class="koner-text">(.*?)</div>', ner.render(ATTACK)._repr_html_(), re.S)
    assert _visible(blocks[0]) == ATTACK  # every character shown, nothing lost or added
    palette = Palette(("PS",))
    assert "".join(marked("a<b", [], palette)) == "a&lt;b"


def test_labels_limit_the_highlights_and_the_legend(ner):
    page = ner.render("어제 아이유가 서울역에서 김민수 씨를 만났다.", labels="PS").html
    assert set(re.findall(r'data-label="(\w+)"', page)) == {"PS"}
    assert "<b>PS</b> PERSON" in page and "<b>LC</b>" not in page


def test_koner_ner_format_html_writes_one_page_in_input_order(tmp_path, ner):
    lines = ["아이유 노래 검색해줘.", ATTACK, "", "서울역으로 안내해줘."]
    out = subprocess.run([sys.executable, "-m", "koner.cli", "ner", "--format", "html"], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    page = out.stdout
    assert page.count("<!doctype html>") == 1 and page.rstrip().endswith("</html>")
    blocks = re.findall(r'<div class="koner-text" id="text-(\d+)">(.*?)</div>', page, re.S)
    assert [int(n) for n, _ in blocks] == [1, 2, 3, 4]
    assert [_visible(b).replace("(empty)", "") for _, b in blocks] == lines
    for (_, b), text in zip(blocks, lines):
        assert re.findall(r'data-label="(\w+)"[^>]*>([^<]*)<span', b) == [(e.label, e.text) for e in ner(text)]


def test_a_long_text_renders_to_a_file_in_bounded_memory(tmp_path):
    code = f"""
import subprocess, sys
unit = "국립중앙박물관은 10월 1일부터 고려청자 특별전을 연다. 어제 아이유가 서울역에서 노래했다. "
text = unit * (600_000 // len(unit))
open({str(tmp_path / 'in.txt')!r}, "w", encoding="utf-8").write(text + "\\n" + "부산 날씨 알려줘.\\n" * 3000)
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    res = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "koner.cli", "ner", "--format", "html",
                          "--input", str(tmp_path / "in.txt"), "--output", str(tmp_path / "out.html")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    peak_mb = int(res.stderr.strip().splitlines()[-1]) / 1024
    page = (tmp_path / "out.html").read_text("utf-8")
    assert page.count('class="koner-text"') == 3001 and page.count('data-label="PS"') > 10_000
    print(f"\n600,000-character line + 3,000 lines as HTML: peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 400  # the text and its entities are never all held (holding them took far more)



def test_each_type_keeps_its_colour_whatever_the_view_and_the_aggregation(ner):
    text = "어제 아이유가 서울역에서 김민수 씨를 만났다."
    from koner.render import type_class

    for view in (ner.render(text), ner.render(text, aggregation="none"), ner.render(text, labels="LC")):
        classes = dict(re.findall(r'<mark class="([\w-]+)" data-label="([\w-]+)"', view.html))
        assert all(c == type_class(lab.split("-")[-1]) for c, lab in classes.items()), classes
        assert f".{type_class('PS')}{{background:#ffd6a5}}" in view.html or "PS" not in str(classes.values())
    assert ".koner-view ." + type_class("LC") + "{background:#b9fbc0}" in ner.render(text, labels="LC").html
