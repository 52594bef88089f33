"""Same labels on other CPUs? The bundled int8 model under qemu user-mode, against this host and PyTorch.

`run CPU` answers the parity corpus and the outside corpus (1,741 texts) on one CPU model with
portability_worker.py, appending to benchmarks/results/cpu-portability/CPU.jsonl (a stopped run resumes
where it stopped; emulation is ~100x slower than the host). `host` runs natively. x86 models run under
`qemu-x86_64-static -cpu MODEL`; ARM64 models under `qemu-aarch64-static -cpu MODEL` inside an arm64
Debian root (benchmarks/arm64_root.sh builds one; --root names it). `run host:ulp+1` / `host:ulp-1` answer on this host with the
bundled model's embedding LayerNorm scale moved by one float32 ulp: the noise floor any float rounding
difference meets. `run native:NAME` answers natively on the machine it runs on (your own server), as NAME. `report` compares every CPU's answers
with the host's (identical `simple` entity lists, token agreement) and with PyTorch's logits by the parity
gate's rule (a flip is decisive when PyTorch preferred its own label by >= 0.1 logits), for the texts each
CPU has answered so far, and writes cpu-portability-DATE.md/.json.

Usage:
  python benchmarks/cpu_portability.py run host
  python benchmarks/cpu_portability.py run x86:EPYC-Rome [--limit 200]
  python benchmarks/cpu_portability.py run arm64:neoverse-n1 --root /srv/arm64
  python benchmarks/cpu_portability.py run host:ulp+1        # and host:ulp-1
  python benchmarks/cpu_portability.py run native:my-server   # on another machine, natively
  python benchmarks/cpu_portability.py report
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "runtime"), str(ROOT / "export")]
STATE = ROOT / "benchmarks" / "results" / "cpu-portability"
DATA = ROOT / "export" / "koner_export" / "data"
CORPORA = [DATA / "parity-corpus.jsonl", DATA / "outside-corpus.jsonl"]
MODEL = ROOT / "runtime" / "koner" / "models" / "default"
CPUS = ["x86:Haswell", "x86:EPYC-Rome", "x86:EPYC-Milan", "x86:Skylake-Server", "x86:Cascadelake-Server",
        "arm64:cortex-a72", "arm64:neoverse-n1", "arm64:max"]
TIE_MARGIN = 0.1


def state_file(cpu: str) -> Path:
    """Where one CPU's answers accumulate (`x86:EPYC-Rome` -> x86-EPYC-Rome.jsonl)."""
    return STATE / (cpu.replace(":", "-", 1) + ".jsonl")


def run(cpu: str, root: Path | None) -> int:
    """Answer the corpora on `cpu` (resuming); returns the worker's exit code."""
    STATE.mkdir(parents=True, exist_ok=True)
    corpora = [str(c) for c in CORPORA]
    worker = [str(ROOT / "benchmarks" / "portability_worker.py"), str(MODEL)]
    out = ["--out", str(state_file(cpu))]
    if cpu == "host" or cpu.startswith("native:"):  # the reference answers, or another machine's, natively
        cmd = [sys.executable, *worker, *corpora, *out]
    elif cpu in ("host:ulp+1", "host:ulp-1"):  # this host, one weight vector moved by one float32 ulp
        with tempfile.TemporaryDirectory(prefix="koner-ulp") as tmp:
            worker[1] = str(ulp_model(+1 if cpu.endswith("+1") else -1, Path(tmp)))
            cmd = [sys.executable, *worker, *corpora, *out, "--variant", cpu[5:]]
            print(f"[portability] {cpu}: {' '.join(cmd)}", file=sys.stderr, flush=True)
            return subprocess.run(cmd).returncode
    elif cpu.startswith("x86:"):
        qemu = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")
        if not qemu:
            raise SystemExit("cpu_portability: needs qemu user-mode (apt-get install qemu-user-static)")
        cmd = [qemu, "-cpu", cpu[4:], sys.executable, *worker, *corpora, *out]
    elif cpu.startswith("arm64:"):
        if root is None or not (root / "opt" / "venv" / "bin" / "python").exists():
            raise SystemExit("cpu_portability: ARM64 needs --root, an arm64 Debian root (benchmarks/arm64_root.sh)")
        inside = Path("/koner")
        cmd = ["chroot", str(root), "/usr/bin/qemu-aarch64-static", "-cpu", cpu[6:], "/opt/venv/bin/python",
               str(inside / "benchmarks" / "portability_worker.py"), str(inside / "runtime" / "koner" / "models" / "default"),
               *[str(inside / c.relative_to(ROOT)) for c in CORPORA],
               "--out", str(inside / state_file(cpu).relative_to(ROOT)), "--runtime", str(inside / "runtime")]
    else:
        raise SystemExit(f"cpu_portability: unknown CPU {cpu!r}; use host, host:ulp+1, host:ulp-1, native:NAME, "
                         "x86:MODEL or arm64:MODEL")
    print(f"[portability] {cpu}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    return subprocess.run(cmd).returncode


def ulp_model(direction: int, out: Path) -> Path:
    """A copy of the bundled model in `out` whose embeddings' LayerNorm scale is moved by one float32 ulp
    (`direction` +1: up, -1: down): the size of difference another CPU's float kernels make (ARM64's round
    that LayerNorm's output differently in the last bits), on this host. How often it changes an entity list is
    the int8 model's own noise floor."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    for name in ("koner.json", "tokenizer.json", "model.onnx.data"):
        shutil.copy(MODEL / name, out / name)
    model = onnx.load(str(MODEL / "model.onnx"), load_external_data=False)
    scales = {n.input[1] for n in model.graph.node if n.op_type == "LayerNormalization"}
    found = [i for i in model.graph.initializer if i.name in scales and i.name.endswith("embeddings.LayerNorm.weight")]
    if len(found) != 1:
        raise SystemExit("cpu_portability: the bundled model has no single embeddings LayerNorm scale to move")
    scale = found[0]
    moved = np.nextafter(numpy_helper.to_array(scale), np.float32(direction * np.inf)).astype(np.float32)
    scale.CopyFrom(numpy_helper.from_array(moved, scale.name))
    onnx.save(model, str(out / "model.onnx"))  # small tensors are stored inline; the big ones stay in model.onnx.data
    from koner.manifest import ManifestDraft, read_manifest

    manifest = read_manifest(out)  # koner.json records the moved graph's sha256, or the runtime would refuse it
    ManifestDraft.of(manifest).write(out, [n for n in manifest.files if (out / n).is_file()])
    return out


def _answers(cpu: str) -> tuple[dict, dict]:
    path = state_file(cpu)
    rows, meta = {}, {}
    if path.exists():
        for line in path.read_text("utf-8").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("id") == "#cpu":
                meta = r
            else:
                rows[r["id"]] = r
    return rows, meta


def _pytorch_logits(keys: set[str]) -> dict:
    """PyTorch's logits for the texts in `keys`, chunked as the worker chunks them (cached beside the answers,
    per checkpoint and model)."""
    import hashlib

    import numpy as np

    ident = hashlib.sha256((ROOT / "standin" / "model" / "model.safetensors").read_bytes() +
                           (MODEL / "koner.json").read_bytes()).hexdigest()[:16]
    cache = STATE / f"pytorch-logits-{ident}.npz"
    if cache.exists():
        held = dict(np.load(cache))
        if keys <= set(held):
            return {k: held[k] for k in keys}
    out = _pytorch_logits_computed(keys)
    for old in STATE.glob("pytorch-logits-*.npz"):
        old.unlink()
    np.savez_compressed(cache, **out)
    return out


def _pytorch_logits_computed(keys: set[str]) -> dict:
    """PyTorch's logits, one thread: beside an emulated CPU's run, torch's two spinning threads on a 2-core
    machine were 80x slower than one."""
    import torch
    from portability_worker import token_rows

    torch.set_num_threads(1)

    from koner import NER
    from koner_export.checkpoint import load

    ckpt = load(ROOT / "standin" / "model")
    ner = NER.load(MODEL, workers=1)
    out = {}
    for corpus in CORPORA:
        for line in corpus.read_text("utf-8").splitlines():
            row = json.loads(line)
            key = f"{corpus.stem}:{row['id']}"
            if key not in keys:
                continue
            with torch.no_grad():
                rows = token_rows(ner, row["text"],
                                  lambda ids: ckpt.model(input_ids=torch.from_numpy(ids)).logits[0].numpy())
            out[key] = rows[1:-1]
    return out


def report(out: Path) -> None:
    """Compare every CPU's answers with the host's and PyTorch's; write the table."""
    host, host_meta = _answers("host")
    if not host:
        raise SystemExit("cpu_portability: run `host` first (the reference answers)")
    cpus = sorted(p.stem.replace("-", ":", 1) for p in STATE.glob("*.jsonl") if p.stem != "host")
    keys = set(host)
    logits = _pytorch_logits(keys)
    result = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": host_meta, "texts_total": len(keys), "cpus": {}}
    for cpu in ["host"] + cpus:
        rows, meta = _answers(cpu)
        same_ents = tok_same = tok_n = decisive = decisive_texts = 0
        for key, r in rows.items():
            h = host.get(key)
            if h is None:
                continue
            same_ents += [e[:3] for e in r["entities"]] == [e[:3] for e in h["entities"]]
            tok_same += sum(a == b for a, b in zip(r["labels"], h["labels"]))
            tok_n += len(h["labels"])
            lg = logits[key]
            flips = 0
            for i, lab in enumerate(r["labels"]):
                own = int(lg[i].argmax())
                if lab != own and lg[i][own] - lg[i][lab] >= TIE_MARGIN:
                    flips += 1
            decisive += flips
            decisive_texts += flips > 0
        n = sum(1 for k in rows if k in host)
        result["cpus"][cpu] = {"int8_path": meta.get("int8_path"), "texts": n,
                               "identical_entity_lists": round(same_ents / n, 5) if n else None,
                               "token_agreement_vs_host": round(tok_same / tok_n, 6) if tok_n else None,
                               "decisive_flips_vs_pytorch": decisive, "texts_with_decisive_flips": decisive_texts}
    lines = [f"Host: {host_meta.get('int8_path')}; {len(keys)} texts answered by the host (parity + outside corpora)",
             "", "| CPU (qemu -cpu) | int8 path | texts answered | identical entity lists vs host | "
             "token agreement vs host | decisive flips vs PyTorch (texts) |", "|---|---|---|---|---|---|"]
    for cpu, r in result["cpus"].items():
        same = f"{r['identical_entity_lists']:.2%}" if r["texts"] else "–"
        agree = f"{r['token_agreement_vs_host']:.4%}" if r["texts"] else "–"
        lines.append(f"| {cpu} | {r['int8_path']} | {r['texts']} | {same} | {agree} | "
                     f"{r['decisive_flips_vs_pytorch']} ({r['texts_with_decisive_flips']}) |")
    from common import save_results

    save_results(out, "cpu-portability", result, "\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run")
    r.add_argument("cpu", help="host, host:ulp+1, host:ulp-1, x86:MODEL or arm64:MODEL (e.g. " + ", ".join(CPUS[:3]) + ")")
    r.add_argument("--limit", type=int, help="only the first N texts (the parity corpus first)")
    r.add_argument("--root", type=Path, help="the arm64 Debian root for arm64:MODEL")
    p = sub.add_parser("report")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    if args.verb == "run":
        if args.limit:
            raise SystemExit(run_limited(args.cpu, args.limit, args.root))
        raise SystemExit(run(args.cpu, args.root))
    report(args.out)


def run_limited(cpu: str, limit: int, root: Path | None) -> int:
    """`run` over the first `limit` texts only (the state file is the same: a later full run continues it)."""
    global CORPORA
    rows = [(c, l) for c in CORPORA for l in c.read_text("utf-8").splitlines()][:limit]
    kept = []
    for c in CORPORA:
        mine = [l for cc, l in rows if cc == c]
        if mine:
            path = STATE / f".{c.stem}.first{limit}" / c.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(mine) + "\n", "utf-8")
            kept.append(path)
    full, CORPORA = CORPORA, kept
    try:
        return run(cpu, root)
    finally:
        CORPORA = full
        for path in kept:
            shutil.rmtree(path.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
