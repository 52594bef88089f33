"""Which export should be the default? Each candidate measured on both parity corpora with the decisive-flip gate.

Candidates: fp16 embedding tables + float projection (default), `--per-channel`, `--int8-projection`,
`--int8-embeddings`, `--int8-embeddings --int8-projection`. For each: model size (graph + weights file),
p50 of one ~50-token sentence (1 thread), peak RSS of a process that loads it and runs a sentence and a
512-token window, and on the parity corpus (585 texts) and the outside corpus (1,156 texts never used to
tune or check an export): texts with identical `simple` entities, token agreement, flips that are decisive
(PyTorch's margin ≥ 0.1 logits) and the texts that differ decisively, and the largest flip margin.

Usage: python benchmarks/export_candidates.py [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "runtime"), str(ROOT / "export")]

from common import save_results  # noqa: E402

CANDIDATES = {
    "default (fp16 tables, float projection)": {},
    "--per-channel": {"per_channel": True},
    "--int8-projection": {"float_projection": False},
    "--int8-embeddings": {"embeddings": "int8"},
    "--int8-embeddings --int8-projection": {"embeddings": "int8", "float_projection": False},
}
SENTENCE = ("2023년 3월 15일 오후 3시에 서울 서초구 삼성전자 본사에서 이재용 회장이 기자회견을 열고 "
            "반도체 투자 계획을 발표했으며, 이 자리에는 100여 명의 기자가 참석했다.")
RSS_CODE = """
import sys
sys.path.insert(0, {runtime!r})
from koner import NER
from koner.system import peak_rss_mb
ner = NER.load({folder!r}, workers=1)
ner({sentence!r})
ner("서울역으로 안내해줘. " * 90)
print(peak_rss_mb())
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    from koner import NER
    from koner_export.checkpoint import load
    from koner_export.corpus import DATA, PARITY_CORPUS
    from koner_export.export import export_model
    from koner_export.parity import run_parity
    from koner_export.quantize import QuantOptions

    ckpt = load(ROOT / "standin" / "model")
    result = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "candidates": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, opts) in enumerate(CANDIDATES.items()):
            folder = Path(tmp) / f"c{k}"
            export_model(str(ROOT / "standin" / "model"), folder, quant=QuantOptions(**opts), parity=False,
                         progress=lambda m: None)
            size = sum(p.stat().st_size for p in folder.glob("model.onnx*")) / 1e6
            ner = NER.load(folder, threads=1, workers=1)
            for _ in range(20):
                ner(SENTENCE)
            times = []
            for _ in range(300):
                s = time.perf_counter()
                ner(SENTENCE)
                times.append(time.perf_counter() - s)
            rss = float(subprocess.run([sys.executable, "-c", RSS_CODE.format(runtime=str(ROOT / "runtime"),
                                                                                folder=str(folder), sentence=SENTENCE)],
                                       capture_output=True, text=True, check=True).stdout)
            row = {"size_mb": round(size, 2), "sentence_p50_ms": round(1000 * statistics.median(times), 3),
                   "peak_rss_mb": round(rss, 1), "corpora": {}}
            for corpus_name, corpus in (("parity", PARITY_CORPUS), ("outside", DATA / "outside-corpus.jsonl")):
                rep = run_parity(ckpt, folder, corpus=corpus, strategies=("simple",))
                s = rep["summary"]
                row["corpora"][corpus_name] = {
                    "texts": s["texts"], "passed": rep["passed"], "failures": rep["failures"],
                    "simple_identical": s["strategies"]["simple"]["int8_identical"],
                    "token_agreement": s["int8_token_agreement"],
                    "flips": s["int8_flips"]["tokens"], "decisive_flips": s["int8_flips"]["decisive_tokens"],
                    "decisive_texts": len(s["int8_decisive_text_ids"]),
                    "max_flip_margin": s["int8_flips"]["max_pytorch_logit_margin"]}
            result["candidates"][name] = row
            print(f"[candidates] {name}: {json.dumps(row)}", file=sys.stderr, flush=True)
    lines = ["| export | size MB | sentence p50 ms | peak RSS MB | parity corpus: identical `simple` / decisive flips "
             "(texts) / largest flip margin | outside corpus: identical / decisive (texts) / largest margin |",
             "|---|---|---|---|---|---|"]
    for name, r in result["candidates"].items():
        cells = []
        for c in ("parity", "outside"):
            x = r["corpora"][c]
            cells.append(f"{x['simple_identical']:.2%} / {x['decisive_flips']} ({x['decisive_texts']}) / "
                         f"{x['max_flip_margin']}")
        lines.append(f"| {name} | {r['size_mb']} | {r['sentence_p50_ms']} | {r['peak_rss_mb']} | {cells[0]} | {cells[1]} |")
    save_results(args.out, "candidates", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
