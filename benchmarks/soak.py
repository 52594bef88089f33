"""Soak: many calls on mixed inputs; reports RSS growth and the p99 drift from the first to the last calls.

Usage: python benchmarks/soak.py [--calls 50000] [--threads 1] [--out benchmarks/results/soak-DATE.json]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "runtime"), str(ROOT / "export")]

from koner.system import rss_mb  # noqa: E402
from koner_export.corpus import PARITY_CORPUS, texts as corpus_texts  # noqa: E402


def inputs(seed: int = 0) -> list[str]:
    """Mixed inputs: real sentences, commands, empty, emoji, control characters, long paragraphs."""
    texts = corpus_texts(PARITY_CORPUS)
    rng = random.Random(seed)
    odd = ["", "   ", "😀👨‍👩‍👧 서울", "\x00\x01가\u202e나", "e\u0301" * 50, "ㅋ" * 300, "[CLS] [SEP] ##"]
    return texts + odd + [" ".join(rng.sample(texts, 5)) for _ in range(20)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=50_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, help="NER.load(workers=...); default: usable CPUs")
    ap.add_argument("--window", type=int, default=5_000, help="calls in the first and last windows compared")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from koner import NER

    ner = NER.load(threads=args.threads, workers=args.workers)
    pool = inputs()
    rng = random.Random(1)
    order = [rng.randrange(len(pool)) for _ in range(args.calls)]
    for t in pool:  # warm-up: every input once
        ner(t)
    rss0 = rss_mb()
    times = []
    t0 = time.time()
    for n, k in enumerate(order, 1):
        s = time.perf_counter()
        ner(pool[k])
        times.append(time.perf_counter() - s)
        if n % 10_000 == 0:
            print(f"[soak] {n}/{args.calls} calls, RSS {rss_mb():.1f} MB, {time.time() - t0:.0f}s", file=sys.stderr)
    rss1 = rss_mb()

    def p99(xs):
        xs = sorted(xs)
        return 1000 * xs[int(0.99 * (len(xs) - 1))]

    w = min(args.window, len(times) // 2)
    result = {"calls": args.calls, "threads": args.threads, "workers": ner.workers, "rss_after_warmup_mb": round(rss0, 1),
              "rss_end_mb": round(rss1, 1), "rss_growth_mb": round(rss1 - rss0, 1),
              "p99_first_ms": round(p99(times[:w]), 3), "p99_last_ms": round(p99(times[-w:]), 3),
              "seconds": round(time.time() - t0, 1)}
    result["p99_drift"] = round(result["p99_last_ms"] / result["p99_first_ms"] - 1, 4)
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
