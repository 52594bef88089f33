"""Helpers every test folder shares (importable as `support`: pytest puts tests/ on the path, see pyproject.toml).

`support` holds no tests: paths of the checkout, model-folder and table helpers, the extras' skips, the tiny
models, the emulated CPUs, the server process and the golden answers (`golden/`)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "standin" / "model"
EXAMPLES = ["서울역으로 안내해줘.", "에어컨 온도 3도 올려줘.", "아이유 노래 검색해줘."]
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
