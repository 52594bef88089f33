"""Load benchmark of `koner serve` on loopback: requests/s, latency percentiles, errors, server memory.

The server is a real `koner serve` process on 127.0.0.1 (ephemeral port); the client is a lean asyncio
HTTP/1.1 client with one keep-alive connection per concurrent user (so it takes little of the CPUs the
server shares). Every request loop is bounded in count and in time. Every 200 answer is checked
against `NER.batch` run in this process on the same texts.

Figures: for each concurrency (1, 4, 16, 64) on sentences, and at 16 on a mix with paragraphs:
requests/s, p50/p95/p99, share of each status, and the server's RSS (now and peak); the in-process
baseline (`NER.pipe` with the server's CPUs, and one call's p50); overload (a queue of 4 hit by 64
users): how fast 503s come back; idle CPU of the server over 5 s; sizing: the same sentences at
concurrency 16 with 2 slots x 1 thread, 1 slot x 2 threads, and on 1 core (taskset).

Usage: python benchmarks/serve_load.py [--requests 2000] [--seconds 30] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "runtime"), str(ROOT / "export")]

from common import save_results  # noqa: E402
from koner_export.corpus import CALIBRATION, PARITY_CORPUS, texts as corpus_texts  # noqa: E402
from koner_export.environment import machine, versions  # noqa: E402


def sentences() -> list[str]:
    skip = ("long", "paragraph", "unicode")
    return [t for t in corpus_texts(PARITY_CORPUS, skip_categories=skip) + corpus_texts(CALIBRATION) if t.strip()]


def paragraphs() -> list[str]:
    s = sentences()
    return [" ".join(s[i:i + 6]) for i in range(0, 600, 6)]


class Server:
    def __init__(self, *args: str, cpus: str | None = None):
        cmd = [sys.executable, "-m", "koner.cli", "serve", "--port", "0", "--no-access-log", *args]
        if cpus:
            cmd = ["taskset", "-c", cpus] + cmd
        env = {**os.environ, "PYTHONPATH": str(ROOT / "runtime")}
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        line = self.proc.stderr.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not m:
            raise SystemExit(f"koner serve did not start: {line}{self.proc.stderr.read()}")
        self.port = int(m.group(1))
        deadline = time.time() + 120
        while time.time() < deadline:
            status, _, _ = asyncio.run(_one(self.port, "GET", "/readyz", b""))
            if status == 200:
                return
            time.sleep(0.1)
        raise SystemExit("koner serve did not get ready")

    def status(self) -> dict:
        out = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
        return out

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


async def _request(reader, writer, method: str, path: str, body: bytes) -> tuple[int, dict, bytes]:
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    writer.write(head + body)
    await writer.drain()
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        k, v = line.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    data = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, data


async def _one(port: int, method: str, path: str, body: bytes) -> tuple[int, dict, bytes]:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return 0, {}, b""
    try:
        return await _request(reader, writer, method, path, body)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        return 0, {}, b""
    finally:
        writer.close()


async def load(port: int, texts: list[str], expected: dict, users: int, requests: int, seconds: float) -> dict:
    """`users` concurrent keep-alive connections send single-text requests until `requests` or `seconds`."""
    bodies = [json.dumps({"text": t}, ensure_ascii=False).encode() for t in texts]
    lat: list[float] = []
    busy: list[float] = []  # latencies of 503 answers
    statuses: dict[int, int] = {}
    wrong = 0
    sent = 0
    stop_at = time.perf_counter() + seconds

    async def user(k: int) -> None:
        nonlocal sent, wrong
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while sent < requests and time.perf_counter() < stop_at:
                i = sent % len(texts)
                sent += 1
                t0 = time.perf_counter()
                status, _, data = await _request(reader, writer, "POST", "/v1/ner", bodies[i])
                lat.append(time.perf_counter() - t0)
                if status == 503:
                    busy.append(lat[-1])
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200 and texts[i] in expected and json.loads(data)["entities"] != expected[texts[i]]:
                    wrong += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(user(k) for k in range(users)))
    wall = time.perf_counter() - t0
    lat.sort()
    q = lambda p: 1000 * lat[min(len(lat) - 1, int(p * len(lat)))]  # noqa: E731
    return {"users": users, "requests": len(lat), "seconds": round(wall, 2),
            "requests_per_s": round(statuses.get(200, 0) / wall, 1), "p50_ms": round(q(0.5), 2),
            "p95_ms": round(q(0.95), 2), "p99_ms": round(q(0.99), 2), "statuses": statuses,
            "wrong": wrong, "lost": len(lat) - sum(statuses.values()),
            "p99_503_ms": round(1000 * sorted(busy)[int(0.99 * (len(busy) - 1))], 2) if busy else None,
            "max_503_ms": round(1000 * max(busy), 2) if busy else None}


def in_process(texts: list[str], workers: int) -> dict:
    from koner import NER

    ner = NER.load(workers=workers)
    ner.batch(texts[:100])
    t0 = time.perf_counter()
    n = sum(1 for _ in ner.pipe(texts * 2))
    tput = n / (time.perf_counter() - t0)
    times = []
    for t in texts[:400]:
        s = time.perf_counter()
        ner(t)
        times.append(time.perf_counter() - s)
    return {"workers": workers, "texts_per_s": round(tput, 1), "p50_ms": round(1000 * statistics.median(times), 2)}


def expected_of(texts: list[str]) -> dict:
    from koner import NER

    ner = NER.load()
    return {t: json.loads(json.dumps([{**e.to_dict(), "text": e.text} for e in ents]))
            for t, ents in zip(texts, ner.batch(texts))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000, help="requests per level at most")
    ap.add_argument("--seconds", type=float, default=30, help="seconds per level at most")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    sent, mix = sentences(), None
    mix = [t for pair in zip(sentences()[:400], paragraphs() * 4) for t in pair]
    expected = expected_of(sorted(set(sent + mix)))
    result = {"machine": machine(), "versions": versions(("onnxruntime", "tokenizers", "numpy", "uvicorn",
                                                           "starlette")),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "levels": [], "sizing": []}
    print("[serve] in-process baseline", file=sys.stderr, flush=True)
    result["in_process"] = in_process(sent, workers=2)
    result["in_process_mix"] = in_process(mix, workers=2)
    srv = Server()
    try:
        for users in (1, 4, 16, 64):
            r = asyncio.run(load(srv.port, sent, expected, users, args.requests, args.seconds))
            r.update(workload="sentences", server_rss=srv.status())
            print(f"[serve] {json.dumps(r)}", file=sys.stderr, flush=True)
            result["levels"].append(r)
        r = asyncio.run(load(srv.port, mix, expected, 16, args.requests // 2, args.seconds))
        r.update(workload="sentences + paragraphs", server_rss=srv.status())
        print(f"[serve] {json.dumps(r)}", file=sys.stderr, flush=True)
        result["levels"].append(r)
        c0 = srv.cpu_seconds()
        time.sleep(5)
        result["idle_cpu_share"] = round((srv.cpu_seconds() - c0) / 5, 4)
    finally:
        srv.stop()
    srv = Server("--max-queue", "4")
    try:
        r = asyncio.run(load(srv.port, [t * 3 for t in sent[:200]], {}, 64, args.requests, args.seconds))
        result["overload"] = r
    finally:
        srv.stop()
    for label, extra, cpus in (("2 slots x 1 thread", ("--workers", "2", "--threads", "1"), None),
                               ("1 slot x 2 threads", ("--workers", "1", "--threads", "2"), None),
                               ("1 core: 1 slot x 1 thread (taskset -c 0)", (), "0")):
        srv = Server(*extra, cpus=cpus)
        try:
            r = asyncio.run(load(srv.port, sent, expected, 16, args.requests, args.seconds))
            r.update(config=label)
            print(f"[serve] {json.dumps(r)}", file=sys.stderr, flush=True)
            result["sizing"].append(r)
        finally:
            srv.stop()
    save_results(args.out, "serve", result, table(result))


def table(res: dict) -> str:
    base = res["in_process"]
    mix = res["in_process_mix"]
    out = [f"In-process `NER.pipe` with 2 workers: sentences {base['texts_per_s']} texts/s (one call p50 {base['p50_ms']} "
           f"ms); sentences + paragraphs {mix['texts_per_s']} texts/s.", "",
           "| workload | users | requests/s (vs in-process) | p50 / p95 / p99 ms | statuses | wrong / lost | server RSS now / peak |",
           "|---|---|---|---|---|---|---|"]
    for r in res["levels"]:
        ref = res["in_process_mix"] if "paragraphs" in r["workload"] else base
        out.append(f"| {r['workload']} | {r['users']} | {r['requests_per_s']} ({r['requests_per_s'] / ref['texts_per_s']:.2f}×) "
                   f"| {r['p50_ms']} / {r['p95_ms']} / {r['p99_ms']} | {r['statuses']} | {r['wrong']} / {r['lost']} "
                   f"| {r['server_rss'].get('VmRSS')} / {r['server_rss'].get('VmHWM')} MB |")
    o = res["overload"]
    out += ["", f"Overload (queue 4, 64 users, 3-sentence texts): statuses {o['statuses']}; 503 answers: p99 "
                f"{o['p99_503_ms']} ms, max {o['max_503_ms']} ms. Idle server CPU: {res['idle_cpu_share']:.2%} of a core.",
            "",
            "| sizing at 16 users | requests/s | p50 / p99 ms |", "|---|---|---|"]
    for r in res["sizing"]:
        out.append(f"| {r['config']} | {r['requests_per_s']} | {r['p50_ms']} / {r['p99_ms']} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
