"""Per-token logits -> entities, by the rules of transformers' TokenClassificationPipeline.

Softmax in float32; special tokens dropped; a token is a subword when its vocabulary string and its
slice of the text differ in length ([UNK] never is); `simple` and `none` label each token by its
argmax, `first | average | max` first fuse subwords into words; B-/I- grouping, where an `O` or a
new `B-` closes a group, with the group's mean score; `O` is left out.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .entity import Entity
from .tokens import Tokens

STRATEGIES = ("none", "simple", "first", "average", "max")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed as the pipeline computes it."""
    maxes = np.max(logits, axis=-1, keepdims=True)
    shifted_exp = np.exp(logits - maxes)
    return shifted_exp / shifted_exp.sum(axis=-1, keepdims=True)


def _tag(label: str) -> tuple[str, str]:
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


def entities(text: str, tokens: Tokens, logits: np.ndarray, labels: tuple[str, ...], strategy: str,
             join: Callable[[list[str]], str], unk_id: int) -> list[Entity]:
    """The entities of one text from one logits row per token."""
    scores = softmax(logits.astype(np.float32, copy=False))
    if strategy in ("none", "simple"):
        return _token_entities(text, tokens, scores, labels, strategy, join, unk_id)
    pre = []  # (word, scores, start, end, index, is_subword)
    for idx in np.flatnonzero(~tokens.special):
        idx = int(idx)
        word = tokens.strings[idx]
        start, end = tokens.offsets[idx]
        word_ref = text[start:end]
        is_subword = len(word) != len(word_ref)
        if int(tokens.ids[idx]) == unk_id:
            word, is_subword = word_ref, False
        pre.append((word, scores[idx], start, end, idx, is_subword))

    return _group(_words(pre, strategy, labels, join), text, join)


def _token_entities(text, tokens, scores, labels, strategy, join, unk_id) -> list[Entity]:
    """`none` and `simple`: each token labelled by its argmax; only tokens not labelled O are visited."""
    visible = np.flatnonzero(~tokens.special)  # the pipeline drops special tokens before grouping
    best = scores[visible].argmax(-1)
    named = np.flatnonzero(np.asarray([lab != "O" for lab in labels])[best])
    ents: list[Entity] = []
    run: list[tuple] = []  # (label, score, word, start, end, index) of the open group
    prev = -2
    for j in named.tolist():
        idx = int(visible[j])
        k = int(best[j])
        label = labels[k]
        start, end = tokens.offsets[idx]
        word = text[start:end] if int(tokens.ids[idx]) == unk_id else tokens.strings[idx]
        item = (label, scores[idx, k], word, start, end, idx)
        if strategy == "none":
            ents.append(Entity(label=label, start=start, end=end, score=float(item[1]), text=text[start:end],
                               word=word, index=idx))
            continue
        # a token joins the open group when it follows it directly with an I- of the same tag
        if run and j == prev + 1 and _tag(label) == ("I", _tag(run[-1][0])[1]):
            run.append(item)
        else:
            if run:
                ents.append(_entity(run, text, join))
            run = [item]
        prev = j
    if run:
        ents.append(_entity(run, text, join))
    return ents


def _entity(run: list[tuple], text: str, join) -> Entity:
    """One group of tokens (or words) as an Entity with the group's mean score."""
    label = run[0][0].split("-", 1)[-1]
    if len(run) == 1:
        score = float(run[0][1])
    else:  # the pipeline's np.mean(np.nanmean(scores)); scores of finite logits have no NaN
        vals = [float(r[1]) for r in run]
        score = float(np.nanmean(vals)) if any(v != v for v in vals) else sum(vals) / len(vals)
    start, end = run[0][3], run[-1][4]
    return Entity(label=label, start=start, end=end, score=score, text=text[start:end],
                  word=join([r[2] for r in run]))


def _words(pre, strategy: str, labels, join) -> list[tuple]:
    groups: list[list[tuple]] = []
    for p in pre:
        if groups and p[5]:
            groups[-1].append(p)
        else:
            groups.append([p])
    out = []
    for g in groups:
        word = join([p[0] for p in g])
        if strategy == "first":
            sc = g[0][1]
            k = int(sc.argmax())
            score = sc[k]
        elif strategy == "max":
            sc = max(g, key=lambda p: p[1].max())[1]
            k = int(sc.argmax())
            score = sc[k]
        elif strategy == "average":
            avg = np.nanmean(np.stack([p[1] for p in g]), axis=0)
            k = int(avg.argmax())
            score = avg[k]
        else:
            raise ValueError(f"aggregation must be one of {STRATEGIES}, not {strategy!r}")
        out.append((labels[k], score, word, g[0][2], g[-1][3], None))
    return out


def _group(items: list[tuple], text: str, join) -> list[Entity]:
    """B-/I- grouping of labelled words: an O or a new B- (or another tag) closes a group; O groups are dropped."""
    runs: list[list[tuple]] = []
    for item in items:
        bi, tag = _tag(item[0])
        if runs and tag == _tag(runs[-1][-1][0])[1] and bi != "B":
            runs[-1].append(item)
        else:
            runs.append([item])
    return [_entity(run, text, join) for run in runs if run[0][0].split("-", 1)[-1] != "O"]
