"""Big inputs on one machine: texts/s and RSS over 100,000 real Korean lines, and one 1 MB text.

Runs, each in a fresh process, one after another, on the same lines:
  batch        NER.batch(all lines) with the default workers (the whole list and its results held)
  pipe-1       NER.pipe(generator, workers=1)
  pipe-2       NER.pipe(generator, workers=2)
  cli-2        koner ner --workers 2 --input FILE --output FILE
  1mb          one 1 MB text, entities streamed (NER.iter_entities), default workers
RSS is sampled every 0.25 s; "growth" is the last sample minus the sample after the first 5% of the run
(the stream starts with two of the corpus's documents past 512 tokens, so the arena has met the longest
inputs by then); the series is kept in the JSON.
The lines: the stand-in's 5,000 konec sentences and koner's parity and calibration corpora, repeated in a
fixed shuffled order to the count asked.

Usage: python benchmarks/stream.py [--lines 100000] [--runs batch,pipe-1,pipe-2,cli-2,1mb] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "runtime"), str(ROOT / "export")]

from common import save_results  # noqa: E402
from koner.system import peak_rss_mb, rss_mb  # noqa: E402
from koner_export.corpus import CALIBRATION, PARITY_CORPUS, texts as corpus_texts  # noqa: E402
from koner_export.environment import machine, versions  # noqa: E402

RUNS = ("batch", "pipe-1", "pipe-2", "cli-2", "1mb")
UNIT = "국립중앙박물관은 10월 1일부터 고려청자 특별전을 연다. 관람료는 5,000원이다. "


def lines(n: int, seed: int = 0) -> list[str]:
    """`n` real Korean lines (no newlines inside), repeated in a fixed shuffled order; the first 50 hold two
    of the corpus's documents past 512 tokens, so that warm-up has seen the longest inputs."""
    konec = [l.split("\t", 1)[1].strip() for l in open(ROOT / "standin" / "data" / "konec-dev.tsv", encoding="utf-8")
             if l.startswith("## klue") and "\t" in l]
    pool = [t.replace("\n", " ") for t in konec + corpus_texts(PARITY_CORPUS) + corpus_texts(CALIBRATION)]
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        rng.shuffle(pool)
        out += pool
    longest = sorted(pool, key=len)[-2:]
    out[10:10] = longest
    return out[:n]


class Sampler:
    """RSS of a process (this one, or a pid) every `every` seconds, on a thread."""

    def __init__(self, pid: int | None = None, every: float = 0.25):
        self.pid, self.every, self.samples, self._stop = pid, every, [], threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _read(self) -> float | None:
        if self.pid is None:
            return rss_mb()
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def _loop(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.is_set():
            r = self._read()
            if r:
                self.samples.append((round(time.perf_counter() - t0, 2), round(r, 1)))
            self._stop.wait(self.every)

    def __enter__(self) -> "Sampler":
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def rss_summary(samples: list, seconds: float) -> dict:
    """Peak, the sample after warm-up (5% of the run), the last sample, and the growth between them."""
    if not samples:
        return {}
    warm = next((r for t, r in samples if t >= 0.05 * seconds), samples[0][1])
    step = max(1, len(samples) // 40)
    return {"peak_mb": max(r for _, r in samples), "after_warmup_mb": warm, "end_mb": samples[-1][1],
            "growth_mb": round(samples[-1][1] - warm, 1), "n_samples": len(samples),
            "series": samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])}


def child(run: str, n: int) -> dict:
    """One measurement inside this (fresh) process."""
    from koner import NER

    if run == "1mb":
        ner = NER.load()
        text = UNIT * (1_000_000 // len(UNIT.encode("utf-8")) + 1)
        with Sampler() as s:
            t0 = time.perf_counter()
            ents = sum(1 for _ in ner.iter_entities(text))
            secs = time.perf_counter() - t0
        return {"run": run, "chars": len(text), "bytes": len(text.encode("utf-8")), "entities": ents,
                "seconds": round(secs, 2), "peak_rss_mb": round(peak_rss_mb(), 1), **rss_summary(s.samples, secs)}
    data = lines(n)
    workers = {"batch": None, "pipe-1": 1, "pipe-2": 2}[run]
    ner = NER.load(workers=workers)
    ner.batch(data[:200])  # warm-up: the first 200 lines, two long documents among them
    with Sampler() as s:
        t0 = time.perf_counter()
        if run == "batch":
            ents = sum(len(e) for e in ner.batch(data, batch_size=32))
        else:
            ents = sum(len(e) for e in ner.pipe((t for t in data), batch_size=32))
        secs = time.perf_counter() - t0
    return {"run": run, "texts": n, "workers": ner.workers, "entities": ents, "seconds": round(secs, 2),
            "texts_per_s": round(n / secs, 1), "peak_rss_mb": round(peak_rss_mb(), 1), **rss_summary(s.samples, secs)}


def cli(n: int, tmp: Path) -> dict:
    """`koner ner --workers 2` over a file of the lines, RSS sampled from outside."""
    src, dst = tmp / "lines.txt", tmp / "out.jsonl"
    src.write_text("\n".join(lines(n)) + "\n", "utf-8")
    cmd = [sys.executable, "-m", "koner.cli", "ner", "--workers", "2", "--input", str(src), "--output", str(dst)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "runtime")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    with Sampler(proc.pid) as s:
        _, err = proc.communicate()
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"koner ner failed: {err[-2000:]}")
    ents = sum(len(json.loads(l)["entities"]) for l in open(dst, encoding="utf-8"))
    return {"run": "cli-2", "texts": n, "workers": 2, "entities": ents, "seconds": round(secs, 2),
            "texts_per_s": round(n / secs, 1), "note": "whole command: start-up and model load included",
            **rss_summary(s.samples, secs)}


def table(result: dict) -> str:
    rows = result["runs"]
    base = next((r["texts_per_s"] for r in rows if r["run"] == "pipe-1"), None)
    out = ["| run | texts/s | vs pipe-1 | RSS after warm-up → end (growth) | peak RSS | entities |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        if r["run"] == "1mb":
            continue
        ratio = f"{r['texts_per_s'] / base:.2f}×" if base else "–"
        out.append(f"| {r['run']} | {r['texts_per_s']:.0f} | {ratio} | {r.get('after_warmup_mb')} → {r.get('end_mb')} MB "
                   f"({r.get('growth_mb'):+} MB) | {r.get('peak_mb')} MB | {r['entities']:,} |")
    for r in rows:
        if r["run"] == "1mb":
            out += ["", f"1 MB text ({r['chars']:,} characters): {r['seconds']} s, {r['entities']:,} entities, "
                        f"peak RSS {r['peak_rss_mb']} MB"]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.lines)))
        return
    result = {"machine": machine(), "versions": versions(("onnxruntime", "tokenizers", "numpy")),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "lines": args.lines, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for run in args.runs.split(","):
            print(f"[stream] {run}", file=sys.stderr, flush=True)
            if run == "cli-2":
                r = cli(args.lines, Path(tmp))
            else:
                res = subprocess.run([sys.executable, __file__, "--child", run, "--lines", str(args.lines)],
                                     capture_output=True, text=True)
                if res.returncode != 0:
                    raise SystemExit(f"{run} failed: {res.stderr[-2000:]}")
                r = json.loads(res.stdout.splitlines()[-1])
            print(f"[stream] {json.dumps({k: v for k, v in r.items() if k != 'series'})}", file=sys.stderr)
            result["runs"].append(r)
    save_results(args.out, "stream", result, table(result))


if __name__ == "__main__":
    main()
