"""PyTorch token classifier -> ONNX (dynamic batch and sequence axes), validated against PyTorch."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .checkpoint import graph_inputs, torch_logits
from .errors import ValidationError

OPSET = 17
# Korean sentences of several lengths, for checking the conversion
CHECK_TEXTS = [
    "서울역으로 안내해줘.",
    "아이유 노래 검색해줘.",
    "2023년 3월 15일 오후 3시에 삼성전자 본사에서 이재용 회장이 기자회견을 열었다.",
    "국립중앙박물관은 오는 10월 1일부터 '고려청자 특별전'을 개최하며, 관람료는 성인 5,000원이다. " * 6,
]


def export(model, tokenizer, out: Path) -> list[str]:
    """Write `model` to `out` as ONNX with output logits; returns the graph's inputs (see `graph_inputs`)."""
    import torch

    names = graph_inputs(model)
    enc = tokenizer(CHECK_TEXTS[:2], padding=True, return_tensors="pt")
    feed = {k: enc[k] if k in enc else torch.zeros_like(enc["input_ids"]) for k in names}
    axes = {k: {0: "batch", 1: "sequence"} for k in names + ["logits"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(model, (), str(out), kwargs=feed, input_names=names, output_names=["logits"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    return names


def max_logit_diff(model, tokenizer, onnx_path: Path, texts=CHECK_TEXTS) -> float:
    """Largest |PyTorch logit - ONNX logit| over `texts`, each run alone."""
    from koner.session import ModelSession, SessionOptions
    from koner.system import usable_cpus

    sess = ModelSession(onnx_path, SessionOptions(threads=usable_cpus()), quantized=False)
    worst = 0.0
    for text in texts:
        enc = tokenizer(text, return_tensors="np", truncation=True)
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        worst = max(worst, float(np.abs(sess.run(ids, mask) - torch_logits(model, ids, mask)).max()))
    return worst


def validate(model, tokenizer, onnx_path: Path, tolerance: float = 1e-4) -> float:
    """Check the ONNX model against PyTorch; raise ValidationError beyond `tolerance`."""
    diff = max_logit_diff(model, tokenizer, onnx_path)
    if diff > tolerance:
        raise ValidationError(f"{onnx_path}: logits differ from PyTorch by {diff:.2e} (> {tolerance:.0e}); "
                              "the model uses an operation the exporter does not convert faithfully")
    return diff
