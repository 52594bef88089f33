"""`koner bench` runs every system and workload in --quick mode (no timing is asserted)."""
import json
import subprocess
import sys

from support.extras import needs

needs("optimum.onnxruntime")


def test_quick_benchmark_writes_results(tmp_path):
    from koner.ner import DEFAULT_MODEL

    res = subprocess.run([sys.executable, "-m", "koner.cli", "bench", "--quick", "--out", str(tmp_path),
                          "--baseline-model", str(DEFAULT_MODEL)],
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    files = sorted(p.suffix for p in tmp_path.iterdir())
    assert files == [".json", ".md", ".png"]
    result = json.loads(next(tmp_path.glob("*.json")).read_text())
    runs = result["runs"]["1"]
    assert set(runs) == set("abfcdep")  # f: optimum's own int8 export on bare onnxruntime; p: the baseline model
    for r in runs.values():
        assert set(r["latency"]) == {"short", "sentence", "paragraph", "document"}
        assert set(r["throughput"]) == {"1", "8", "32"}
        assert r["cold_start_s"] > 0 and r["peak_rss_mb"] > 0
    assert result["machine"]["cpus"] and result["versions"]["onnxruntime"]
    assert "| short p50 ms |" in res.stdout
    assert "CPU budget 1, koner int8: sentence p50" in res.stdout and "× optimum int8 pipeline" in res.stdout
    assert result["sizes_mb"]["optimum int8 model_quantized.onnx"] > 1
    from koner.cpu import int8_path

    assert result["machine"]["int8_path"] == int8_path() and f"int8 path {int8_path()}" in res.stdout


def test_bench_help_lists_the_benchmark_options():
    res = subprocess.run([sys.executable, "-m", "koner.cli", "bench", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0
    for opt in ("--quick", "--systems", "--threads", "--reps", "--compare", "--out"):
        assert opt in res.stdout


def test_profile_names_the_ops_of_the_bundled_graph(tmp_path):
    res = subprocess.run([sys.executable, "-m", "koner.cli", "bench", "--profile", "--quick", "--threads", "1"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [l for l in res.stdout.splitlines() if l.startswith("- model")]
    assert len(lines) == 4, res.stdout  # short, sentence, paragraph, one 512-token window
    assert all("QAttention" in l and "DynamicQuantizeMatMul" in l for l in lines), lines
    assert "(512 tokens)" in lines[-1]


def test_system_p_without_a_baseline_model_is_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "koner.cli", "bench", "--quick", "--systems", "p"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.strip() == "koner: system p needs --baseline-model DIR (a koner model folder)"


def test_results_go_to_the_working_folder_without_out(tmp_path):
    """`koner bench` without --out writes ./koner-bench-results wherever koner is installed (never into the
    checkout the package was loaded from)."""
    res = subprocess.run([sys.executable, "-m", "koner.cli", "bench", "--profile", "--threads", "1"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    written = sorted(p.suffix for p in (tmp_path / "koner-bench-results").glob("profile-*"))
    assert written == [".json", ".md"], res.stderr[-2000:]
