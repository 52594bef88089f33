"""Per-operator profile of a model file: ms per call by op type, from onnxruntime's own profiler."""
from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np


def feed_for(input_names: list[str], ids: np.ndarray) -> dict:
    """The inputs a graph takes for a batch of token ids (all attended, segment 0)."""
    feed = {"input_ids": ids}
    if "attention_mask" in input_names:
        feed["attention_mask"] = np.ones_like(ids)
    if "token_type_ids" in input_names:
        feed["token_type_ids"] = np.zeros_like(ids)
    return feed


def op_profile(model: Path, ids: np.ndarray, *, threads: int = 1, calls: int = 20, level: str = "basic") -> dict:
    """Run `calls` calls of `ids` under onnxruntime's profiler; returns per-op-type ms per call and node counts.

    `{"ms_per_call": total kernel ms, "ops": {op: {"nodes": n, "ms": ms per call, "share": fraction}}}`,
    ops sorted by time. The first (warm-up) call is left out.
    """
    import onnxruntime as ort

    from koner.session import session_options

    with tempfile.TemporaryDirectory() as tmp:
        so = session_options(threads, level)
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "koner")
        sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        feed = feed_for([i.name for i in sess.get_inputs()], ids)
        for _ in range(calls + 1):
            sess.run(None, feed)
        trace = json.loads(Path(sess.end_profiling()).read_text())
    runs = [e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"]
    first_end = runs[0]["ts"] + runs[0]["dur"] if runs else 0
    per_op: dict = defaultdict(lambda: {"us": 0.0, "names": set()})
    for e in trace:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time") or e["ts"] < first_end:
            continue
        op = e.get("args", {}).get("op_name", "?")
        per_op[op]["us"] += e["dur"]
        per_op[op]["names"].add(e["name"])
    total = sum(v["us"] for v in per_op.values())
    ops = {op: {"nodes": len(v["names"]), "ms": round(v["us"] / calls / 1000, 4),
                "share": round(v["us"] / total, 4) if total else 0.0}
           for op, v in sorted(per_op.items(), key=lambda kv: -kv[1]["us"])}
    return {"calls": calls, "threads": threads, "tokens": int(ids.shape[1]), "batch": int(ids.shape[0]),
            "ms_per_call": round(total / calls / 1000, 4), "nodes": sum(v["nodes"] for v in ops.values()), "ops": ops}
