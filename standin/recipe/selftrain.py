"""Self-training step of the stand-in recipe: pseudo-label the unlabelled KLUE train sentences.

Tags `unlabelled_ids` of the prepare step's ner.npz with a trained model (fp32 PyTorch), and keeps the
sentences the model is sure of: every token's highest label probability at least --threshold and a valid
BIO sequence (no I-X that does not continue an X). `train --pseudo OUT` then trains on them as if labelled.
The per-sentence predictions are cached next to OUT (OUT.scores.npz), so another threshold costs nothing.

Usage:
  python -m standin.recipe.selftrain --data .work/standin --model .work/standin/run2 -o .work/standin/pseudo.npz
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

PAD = 0


def load_model(folder: Path):
    """An ElectraForTokenClassification with the real model's config and the weights in `folder`."""
    from safetensors.torch import load_file
    from transformers import ElectraForTokenClassification

    from .train import make_configs

    model = ElectraForTokenClassification(make_configs()[2])
    names = [folder / n for n in ("ner_model.safetensors", "model.safetensors")]
    model.load_state_dict(load_file(str(next((n for n in names if n.exists()), names[-1]))))
    return model.eval()


def tag_all(model, ids: list, batch: int = 64) -> tuple[list, np.ndarray]:
    """Argmax label ids per sentence and each sentence's lowest per-token top probability ([CLS]/[SEP] left out)."""
    import torch

    labels: list = [None] * len(ids)
    low = np.zeros(len(ids), np.float32)
    order = sorted(range(len(ids)), key=lambda k: len(ids[k]))
    with torch.no_grad():
        for k in range(0, len(order), batch):
            idx = order[k:k + batch]
            n = max(len(ids[j]) for j in idx)
            x = torch.tensor([list(ids[j]) + [PAD] * (n - len(ids[j])) for j in idx], dtype=torch.long)
            probs = model(input_ids=x, attention_mask=(x != PAD).long()).logits.float().softmax(-1)
            top, arg = probs.max(-1)
            for r, j in enumerate(idx):
                m = len(ids[j])
                lab = arg[r, :m].numpy().astype(np.int32)
                lab[0] = lab[-1] = -100
                labels[j] = lab
                low[j] = float(top[r, 1:m - 1].min()) if m > 2 else 1.0
    return labels, low


def object_array(rows: list) -> np.ndarray:
    """A 1-D object array of variable-length rows."""
    out = np.empty(len(rows), dtype=object)
    out[:] = rows
    return out


def valid_bio(labels: np.ndarray, id2label: dict) -> bool:
    """True when every I-X continues a B-X or I-X."""
    prev = "O"
    for v in labels:
        if v == -100:
            continue
        lab = id2label[int(v)]
        if lab.startswith("I-") and prev[2:] != lab[2:]:
            return False
        prev = lab
    return True


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the prepare step's output")
    ap.add_argument("--model", type=Path, required=True, help="a train run folder or a packaged model folder")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--limit", type=int, default=0, help="tag only the first N unlabelled sentences (0: all)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    from .train import labels_spec

    if args.threads:
        torch.set_num_threads(args.threads)
    id2label, _ = labels_spec()
    ids = list(np.load(args.data / "ner.npz", allow_pickle=True)["unlabelled_ids"])
    if args.limit:
        ids = ids[: args.limit]
    cache = args.out.with_suffix(".scores.npz")
    if cache.exists():
        got = np.load(cache, allow_pickle=True)
        labels, low = list(got["labels"]), got["low"]
    else:
        labels, low = tag_all(load_model(args.model), ids)
        np.savez(cache, labels=object_array(labels), low=low, allow_pickle=True)
    keep = [j for j in range(len(ids)) if low[j] >= args.threshold and valid_bio(labels[j], id2label)]
    with_entity = sum(any(id2label[int(v)].startswith("B-") for v in labels[j] if v != -100) for j in keep)
    n_ent = sum(sum(id2label[int(v)].startswith("B-") for v in labels[j] if v != -100) for j in keep)
    np.savez(args.out, ids=object_array([ids[j] for j in keep]),
             labels=object_array([labels[j] for j in keep]), allow_pickle=True)
    qs = np.quantile(low, [0.1, 0.25, 0.5, 0.75]).round(3).tolist()
    print(f"kept {len(keep)} of {len(ids)} sentences (lowest token probability >= {args.threshold}, valid BIO); "
          f"{with_entity} with an entity, {n_ent} entities; lowest-probability quartiles {qs}", file=sys.stderr)


if __name__ == "__main__":
    main()
