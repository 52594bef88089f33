"""ARCHITECTURE.md names every module of both packages, so a reader can find where each job lives and where a
change goes (lean: base install)."""
import re

import pytest

from support import ROOT

pytestmark = pytest.mark.lean


def _modules(package_dir):
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir).as_posix()
        if path.name in ("__init__.py", "__main__.py") or "/models/" in rel:
            continue
        yield rel


def test_every_module_is_named_in_the_architecture_page():
    text = (ROOT / "ARCHITECTURE.md").read_text("utf-8")
    named = set(re.findall(r"`([\w/]+\.py)`", text))
    missing = [f"{pkg.name}/{rel}" for pkg in (ROOT / "runtime" / "koner", ROOT / "export" / "koner_export")
               for rel in _modules(pkg) if rel not in named]
    assert not missing, f"ARCHITECTURE.md does not name: {missing}"
