"""A local checkpoint folder -> the PyTorch token classifier and its fast tokenizer, checked."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .errors import CheckpointError

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


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load(folder: Path) -> Checkpoint:
    """Load and check a token-classification checkpoint from `folder`."""
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

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
    normalizer = json.loads(tokenizer.backend_tokenizer.to_str()).get("normalizer") or {}
    lowercase = bool(normalizer.get("lowercase", False))
    max_length = int(getattr(config, "max_position_embeddings", 512))
    files = {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in
             (".json", ".txt", ".bin", ".safetensors")}
    return Checkpoint(model, tokenizer, labels, max_length, lowercase, files)
