"""A local checkpoint folder -> the PyTorch token classifier and its fast tokenizer, checked."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from koner.manifest import sha256
from koner.tokens import normalizer_flags
from koner.verify import OFFSET_POSITIONS  # position ids start after the padding index: 514 positions, 512 tokens

from .errors import CheckpointError

# the inputs an exported graph may take, in its input order
GRAPH_INPUTS = ["input_ids", "attention_mask", "token_type_ids"]

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass
class Checkpoint:
    """The loaded model, its fast tokenizer, labels in id order and the source files' sha256."""

    model: object
    tokenizer: object
    labels: list[str]
    max_length: int
    lowercase: bool
    files: dict
    architecture: dict  # model type, class and tokenizer family, as the manifest records them


def graph_inputs(model) -> list[str]:
    """The inputs the exported graph takes: those of GRAPH_INPUTS the model's forward accepts, and token_type_ids
    only when the model has more than one segment type (RoBERTa-style models have one: its ids are all 0)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    names = [k for k in GRAPH_INPUTS if k in params]
    if "token_type_ids" in names and int(getattr(model.config, "type_vocab_size", 2) or 0) <= 1:
        names.remove("token_type_ids")
    return names


def torch_logits(model, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """PyTorch logits [batch, seq, labels] for int64 ids and mask, fed as the exported graph is fed
    (token_type_ids all zero, one segment, where the graph takes them)."""
    import torch

    ids_t = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))
    feed = {"input_ids": ids_t, "attention_mask": torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64)),
            "token_type_ids": torch.zeros_like(ids_t)}
    names = graph_inputs(model)
    with torch.no_grad():
        return model(**{k: v for k, v in feed.items() if k in names}).logits.numpy()


def forward_inputs(model) -> Optional[set[str]]:
    """The keyword inputs the model's forward takes; None when it takes any keyword (`**kwargs`)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def pipeline_tokenizer(model, tokenizer) -> tuple[object, list[str]]:
    """The tokenizer to give the transformers pipeline: `tokenizer`, or a copy that returns only the inputs the
    model's forward takes (koner feeds only its graph's inputs), and the names it leaves out.

    The pipeline passes every array the tokenizer returns to the model, so a DistilBERT saved with a BERT
    tokenizer (which returns token_type_ids) fails in it; the copy is what that pipeline would need to run."""
    import copy

    takes = forward_inputs(model)
    names = list(getattr(tokenizer, "model_input_names", []) or [])
    dropped = [] if takes is None else [n for n in names if n not in takes]
    if not dropped:
        return tokenizer, []
    fed = copy.copy(tokenizer)  # shares the backend tokenizer; only the copy's list of inputs changes
    fed.model_input_names = [n for n in names if n not in dropped]
    return fed, dropped


# model types koner exports and runs (README "Other models" lists what was tested)
SUPPORTED = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "distilbert", "deberta-v2")
SUPPORTED_NAMES = ("BERT", "RoBERTa", "XLM-RoBERTa", "CamemBERT", "ELECTRA", "DistilBERT", "DeBERTa-v2/v3")


def max_tokens(config) -> int:
    """The most tokens (special ones included) the model's position table holds."""
    positions = int(getattr(config, "max_position_embeddings", 512))
    if config.model_type in OFFSET_POSITIONS:
        return positions - int(getattr(config, "pad_token_id", 1) or 0) - 1
    return positions


def load(folder: Path) -> Checkpoint:
    """Load and check a token-classification checkpoint from `folder`."""
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # transformers' own chatter ("Device set to use cpu", sequence-length notices for long parity texts)
    # says nothing to a koner user; koner's progress lines stay
    hf_logging.set_verbosity_error()

    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{folder}: no config.json; give the folder of a saved transformers model")
    weights = [folder / w for w in WEIGHT_FILES if (folder / w).is_file()]
    if not weights:
        raise CheckpointError(f"{folder}: no weights ({' or '.join(WEIGHT_FILES)}); copy the model's weights there")
    has_tok = (folder / "tokenizer.json").is_file() or (folder / "vocab.txt").is_file()
    if not has_tok:
        raise CheckpointError(f"{folder}: no tokenizer (tokenizer.json, or vocab.txt with tokenizer_config.json); "
                              "copy the model's tokenizer files there")
    try:
        config = AutoConfig.from_pretrained(str(folder))
    except Exception as exc:
        raise CheckpointError(f"{cfg_path}: cannot be read ({exc})") from None
    archs = config.architectures or []
    if config.model_type not in SUPPORTED:
        raise CheckpointError(f"{folder}: koner cannot export a {config.model_type} model "
                              f"({', '.join(archs) or 'no architecture named'}); it exports token classifiers of "
                              f"{', '.join(SUPPORTED_NAMES)}")
    if not any(a.endswith("ForTokenClassification") for a in archs):
        raise CheckpointError(f"{folder}: the model is {', '.join(archs) or config.model_type}, not a token "
                              "classifier; export a *ForTokenClassification checkpoint")
    labels = [config.id2label[i] for i in range(config.num_labels)]
    try:
        model = AutoModelForTokenClassification.from_pretrained(str(folder), dtype=torch.float32).eval()
    except Exception as exc:
        raise CheckpointError(f"{weights[0]}: cannot be loaded ({str(exc).splitlines()[0][:200]})") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    except Exception as exc:
        raise CheckpointError(f"{folder}: the tokenizer cannot be loaded ({str(exc).splitlines()[0][:200]})") from None
    if not getattr(tokenizer, "is_fast", False):
        raise CheckpointError(f"{folder}: no fast tokenizer could be built; add a tokenizer.json")
    if len(tokenizer) > config.vocab_size:
        raise CheckpointError(f"{folder}: the tokenizer has {len(tokenizer)} tokens but the model's embedding table "
                              f"only {config.vocab_size}; use the tokenizer the model was trained with")
    backend = json.loads(tokenizer.backend_tokenizer.to_str())  # the whole tokenizer.json, read once
    flags = normalizer_flags(backend.get("normalizer"))
    if flags.strips_accents:
        raise CheckpointError(f"{folder}: the tokenizer's {flags.strips_accents} normalizer strips accents, which "
                              "decomposes Hangul into jamo; set \"strip_accents\": false in tokenizer_config.json "
                              "(and in tokenizer.json's normalizer) and export again")
    lowercase = flags.lowercase
    max_length = max_tokens(config)
    files = {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in
             (".json", ".txt", ".bin", ".safetensors")}
    positions = int(getattr(config, "max_position_embeddings", max_length))
    architecture = {"model_type": config.model_type, "class": type(model).__name__,
                    "tokenizer": (backend.get("model") or {}).get("type"), "positions": positions,
                    "position_offset": max(0, positions - max_length)}
    return Checkpoint(model, tokenizer, labels, max_length, lowercase, files, architecture)
