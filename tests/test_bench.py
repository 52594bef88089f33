"""`koner bench` runs every system and workload in --quick mode (no timing is asserted)."""
import json
import subprocess
import sys

import pytest


pytest.importorskip("optimum.onnxruntime")


def test_quick_benchmark_writes_results(tmp_path):
    res = subprocess.run([sys.executable, "-m", "koner.cli", "bench", "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    files = sorted(p.suffix for p in tmp_path.iterdir())
    assert files == [".json", ".md", ".png"]
    result = json.loads(next(tmp_path.glob("*.json")).read_text())
    runs = result["runs"]["1"]
    assert set(runs) == set("abcde")
    for r in runs.values():
        assert set(r["latency"]) == {"short", "sentence", "paragraph", "document"}
        assert set(r["throughput"]) == {"1", "8", "32"}
        assert r["cold_start_s"] > 0 and r["peak_rss_mb"] > 0
    assert result["machine"]["cpus"] and result["versions"]["onnxruntime"]
    assert "| short p50 ms |" in res.stdout
    from koner.cpu import int8_path

    assert result["machine"]["int8_path"] == int8_path() and f"int8 path {int8_path()}" in res.stdout


def test_bench_help_lists_the_benchmark_options():
    res = subprocess.run([sys.executable, "-m", "koner.cli", "bench", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0
    for opt in ("--quick", "--systems", "--threads", "--reps", "--compare", "--out"):
        assert opt in res.stdout
