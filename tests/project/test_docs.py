"""The documentation site builds with `mkdocs build --strict` (no broken link, anchor or API reference)."""
import os
import subprocess
import sys

from support.extras import needs

needs("mkdocs")
needs("mkdocstrings")

from support import ROOT  # noqa: E402


def test_the_site_builds_strictly(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    page = (tmp_path / "site" / "python" / "index.html").read_text("utf-8")
    assert "koner.NER" in page and "iter_entities" in page and "render" in page  # the API reference is there
    assert (tmp_path / "site" / "images" / "demo-page.png").is_file()
