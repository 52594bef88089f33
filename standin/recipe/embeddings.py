"""Optional step of the stand-in recipe: distributional word-piece embeddings for a cheap pretraining phase.

Counts which word pieces occur near each other in the unlabelled text (`pretrain.npy`), turns the counts
into positive pointwise mutual information (context distribution smoothed, alpha 0.75) and keeps the top
singular vectors of that matrix as 128-dimensional embeddings (Levy & Goldberg's PPMI-SVD). Pieces that
never occur keep their random initialisation. A few minutes of CPU instead of hours of masked-LM
pretraining; `train --init-embeddings FILE` starts the encoder from them.

Usage:
  python -m standin.recipe.embeddings --data .devdata -o .devdata/embeddings.npy
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

N_SPECIAL = 5  # [PAD] [UNK] [CLS] [SEP] [MASK]


def cooccurrence(stream: np.ndarray, vocab: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric co-occurrence counts within `window` pieces, weighted 1/distance; never across [SEP]."""
    ids = stream.astype(np.int64)
    sentence = np.cumsum(ids == 3)  # [SEP] closes a sentence
    keys, weights = [], []
    for k in range(1, window + 1):
        a, b = ids[:-k], ids[k:]
        keep = (a >= N_SPECIAL) & (b >= N_SPECIAL) & (sentence[:-k] == sentence[k:])
        a, b = a[keep], b[keep]
        for x, y in ((a, b), (b, a)):
            keys.append(x * vocab + y)
            weights.append(np.full(x.size, 1.0 / k, np.float32))
    key = np.concatenate(keys)
    weight = np.concatenate(weights)
    order = np.argsort(key, kind="stable")
    key, weight = key[order], weight[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.add.reduceat(weight, starts)
    uniq = key[starts]
    return uniq // vocab, uniq % vocab, counts


def ppmi_svd(rows, cols, counts, vocab: int, dim: int, alpha: float = 0.75, seed: int = 0) -> np.ndarray:
    """Rows of U·sqrt(S) from a rank-`dim` SVD of the PPMI matrix (randomised, via torch)."""
    import torch

    row_sum = np.bincount(rows, weights=counts, minlength=vocab)
    ctx = np.bincount(cols, weights=counts, minlength=vocab) ** alpha
    total = counts.sum()
    pmi = np.log(counts * (ctx.sum() / total)) - np.log(row_sum[rows]) + np.log(total) - np.log(ctx[cols])
    pos = pmi > 0
    m = torch.sparse_coo_tensor(np.stack([rows[pos], cols[pos]]), pmi[pos].astype(np.float32),
                                (vocab, vocab)).coalesce()
    torch.manual_seed(seed)
    u, s, _ = torch.svd_lowrank(m, q=dim + 16, niter=4)
    return (u[:, :dim] * s[:dim].sqrt()).numpy(), row_sum


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the prepare step's output (pretrain.npy)")
    ap.add_argument("-o", "--out", type=Path, required=True, help="where to write the (vocab, dim) .npy")
    ap.add_argument("--vocab", type=int, default=35000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--window", type=int, default=4)
    ap.add_argument("--min-count", type=float, default=5.0, help="pieces seen less often keep random vectors")
    args = ap.parse_args(argv)
    t0 = time.time()
    stream = np.load(args.data / "pretrain.npy")
    rows, cols, counts = cooccurrence(stream, args.vocab, args.window)
    print(f"embeddings: {counts.size} co-occurring pairs from {stream.size} pieces "
          f"({time.time() - t0:.0f}s)", file=sys.stderr)
    vecs, freq = ppmi_svd(rows, cols, counts, args.vocab, args.dim)
    seen = freq >= args.min_count
    vecs[~seen] = np.nan  # the trainer keeps its random rows where the file has NaN
    np.save(args.out, vecs.astype(np.float32))
    print(f"embeddings: {int(seen.sum())} of {args.vocab} pieces get vectors; wrote {args.out} "
          f"({time.time() - t0:.0f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
