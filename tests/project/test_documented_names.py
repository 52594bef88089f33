"""Every koner name the docs show (README.md, docs/*.md: import lines and `koner.x.y` in code blocks and inline
code, `::: koner.x` API entries) imports as written: a renamed or removed name fails here, not in a user's script.
A name whose module needs an extra skips, naming it."""
import importlib
import re

import pytest

from support import ROOT
from support.extras import EXTRAS, reason

pytestmark = pytest.mark.lean

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_NAMES = {"koner.json"}  # the manifest's file name, not a Python name
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(koner(?:_export)?(?:\.\w+)*)[ \t]+import[ \t]+(?:\(([\w\s,]+)\)|([\w \t,]+))",
                         re.M)
IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w., \t]+)$", re.M)
DOTTED = re.compile(r"(?<![\w.\-/])(koner(?:_export)?(?:\.\w+)+)")
INLINE = re.compile(r"`([^`\n]+)`")
API = re.compile(r"^:::\s+(koner\S*)", re.M)


def _names_in_code(code: str) -> set:
    names = set(DOTTED.findall(code))
    for module, grouped, imported in FROM_IMPORT.findall(code):
        names |= {f"{module}.{n.split(' as ')[0].strip()}" for n in (grouped or imported).split(",") if n.strip()}
    for line in IMPORT.findall(code):
        names |= {m.split(" as ")[0].strip() for m in line.split(",") if m.strip().startswith("koner")}
    return names


def documented_names() -> dict:
    """Each koner name in the docs' code, with the first place (file:line) that shows it."""
    found: dict = {}
    for doc in DOCS:
        text = doc.read_text("utf-8")
        pieces = [(m.start(1), m.group(1)) for m in FENCE.finditer(text)]
        prose = FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)  # offsets kept
        pieces += [(m.start(1), m.group(1)) for m in INLINE.finditer(prose)]
        pieces += [(m.start(1), m.group(1)) for m in API.finditer(text)]
        for start, code in sorted(pieces):
            for name in sorted(_names_in_code(code)):
                name = name.rstrip(".")
                if name not in NOT_NAMES:
                    found.setdefault(name, f"{doc.relative_to(ROOT)}:{text.count(chr(10), 0, start) + 1}")
    return found


NAMES = documented_names()


def _resolve(name: str):
    """The object `name` names: its longest importable module prefix, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if missing.split(".")[0] in EXTRAS and not missing.startswith("koner"):
                pytest.skip(reason(missing))
            if missing != module:
                raise
            continue
        for k, attr in enumerate(parts[cut:], start=cut):
            if not hasattr(obj, attr):
                return None, f"{'.'.join(parts[:k])} has no {attr!r}"
            obj = getattr(obj, attr)
        return obj, ""
    return None, f"no module {parts[0]!r}"


def test_the_docs_show_koners_names():
    """The scan finds what the docs show (a scan that found nothing would pass every name below)."""
    assert len(NAMES) >= 10, NAMES
    assert {"koner.NER", "koner.check.check_model"} <= set(NAMES), NAMES
    assert NAMES["koner.NER"].startswith("README.md:")


@pytest.mark.parametrize("name", sorted(NAMES))
def test_a_documented_name_imports(name):
    obj, why = _resolve(name)
    assert obj is not None, (f"{NAMES[name]} shows `{name}`, which does not import ({why}): rename it in the docs "
                             "or keep the name importable")
