"""Accuracy-aware quantization: keep the most sensitive layers in float until int8 agrees with PyTorch.

Sensitivity is measured, not guessed: each group of quantizable nodes (the embeddings, each encoder
layer, the classifier) is quantized alone and its effect on the logits of a calibration corpus is
measured against PyTorch. Groups are then kept in float, most sensitive first, until the int8 model's
token labels agree with PyTorch's at least `min_agreement` of the time and the sentences whose labels
all agree reach `min_sentence_agreement`.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .checkpoint import torch_logits
from .corpus import CALIBRATION, texts as corpus_texts
from .graph import build_int8
from .quantize import QuantOptions, float_nodes, layer_group, preprocess, quantizable_nodes


def check_agreement(value: float) -> float:
    """A --min-agreement value: a share above 0 and at most 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"min_agreement is a share of tokens, above 0 and at most 1 (e.g. 0.995), not {value!r}")
    return float(value)


def _batches(ckpt, texts: list[str]):
    enc = [ckpt.tokenizer(t, truncation=True, return_tensors="np") for t in texts]
    return [(e["input_ids"].astype(np.int64), e["attention_mask"].astype(np.int64)) for e in enc]


def _logits(path: Path, batches) -> list[np.ndarray]:
    from koner.session import ModelSession, SessionOptions
    from koner.system import usable_cpus

    sess = ModelSession(path, SessionOptions(threads=usable_cpus()))
    return [sess.run(i, m)[0] for i, m in batches]


def _agreement(ref: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, float]:
    tok = sent = n = 0
    for a, b in zip(ref, got):
        same = a[1:-1].argmax(-1) == b[1:-1].argmax(-1)
        tok += int(same.sum())
        n += same.size
        sent += bool(same.all())
    return tok / max(1, n), sent / max(1, len(ref))


def fit_exclusions(ckpt, fp32: Path, quant: QuantOptions, min_agreement: float, corpus: Optional[Path],
                   progress: Callable[[str], None], min_sentence_agreement: float = 0.99):
    """QuantOptions with the fewest sensitive groups excluded that meet the targets, and a report.

    The report's `met` says whether the targets were reached; when keeping every group in float does not
    reach them, the most faithful quantization found is returned with `met` false.
    """
    import onnx

    check_agreement(min_agreement)
    texts = corpus_texts(corpus or CALIBRATION)
    batches = _batches(ckpt, texts)
    ref = [torch_logits(ckpt.model, i, m)[0] for i, m in batches]
    report: dict = {"calibration_texts": len(texts), "targets": {"token": min_agreement,
                                                                 "sentence": min_sentence_agreement}}
    with tempfile.TemporaryDirectory() as tmp:
        out, pre = Path(tmp) / "q.onnx", Path(tmp) / "pre.onnx"
        preprocess(fp32, pre)  # once, for every trial below
        graph = onnx.load(str(pre)).graph  # once, for both lookups
        kept = set(quant.exclude) | set(float_nodes(graph, quant))
        nodes = [n for n in quantizable_nodes(graph, quant.op_types) if n not in kept]
        groups: dict[str, list[str]] = {}
        for n in nodes:
            groups.setdefault(layer_group(n), []).append(n)

        config = ckpt.model.config

        def measure(opts: QuantOptions):  # the graph export will write, not only its quantization
            build_int8(pre, out, opts, num_heads=getattr(config, "num_attention_heads", None),
                       hidden_size=getattr(config, "hidden_size", None), preprocessed=True)
            t0 = time.perf_counter()
            got = _logits(out, batches)
            secs = time.perf_counter() - t0
            return _agreement(ref, got), got, out.stat().st_size, secs

        (tok, sent), _, size0, secs0 = measure(quant)
        report["full_int8"] = {"token_agreement": round(tok, 5), "sentence_agreement": round(sent, 4),
                               "bytes": size0, "seconds": round(secs0, 2)}
        progress(f"int8: token agreement {tok:.4%}, sentences {sent:.2%}")
        if tok >= min_agreement and sent >= min_sentence_agreement:
            report["kept_in_float"] = []
            report["met"] = True
            return quant, report
        # sensitivity: quantize each group alone and measure its logit error
        sens = {}
        for g, members in groups.items():
            others = [n for n in nodes if n not in members]
            _, got, _, _ = measure(replace(quant, exclude=list(quant.exclude) + others))
            sens[g] = float(np.mean([np.abs(a - b).mean() for a, b in zip(ref, got)]))
        order = sorted(sens, key=lambda g: -sens[g])
        progress("sensitivity (mean |dlogit|): " + ", ".join(f"{g} {sens[g]:.4f}" for g in order[:6]))
        report["sensitivity"] = {g: round(sens[g], 5) for g in order}
        kept: list[str] = []
        best = quant
        for g in order:
            kept.append(g)
            best = replace(quant, exclude=list(quant.exclude) + [n for k in kept for n in groups[k]])
            (tok, sent), _, size, secs = measure(best)
            progress(f"float {', '.join(kept)}: token agreement {tok:.4%}, sentences {sent:.2%}")
            if tok >= min_agreement and sent >= min_sentence_agreement:
                break
        report["kept_in_float"] = kept
        report["met"] = tok >= min_agreement and sent >= min_sentence_agreement
        if not report["met"]:
            progress(f"the targets were not reached even with {len(kept)} groups in float; keeping that model")
        report["result"] = {"token_agreement": round(tok, 5), "sentence_agreement": round(sent, 4), "bytes": size,
                            "seconds": round(secs, 2),
                            "size_cost": round(size / size0 - 1, 4), "time_cost": round(secs / secs0 - 1, 4)}
        return best, report
