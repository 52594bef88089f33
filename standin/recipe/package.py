"""Step 3 of the stand-in recipe: write the checkpoint folder in the real model's file layout.

Usage:
  python -m standin.recipe.package --data .work/standin --run .work/standin/run -o standin/model
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from .train import make_configs



def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the prepare step's output")
    ap.add_argument("--run", type=Path, required=True, help="the train step's output")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)

    from safetensors.torch import load_file
    from transformers import AutoTokenizer, ElectraForTokenClassification

    _, _, cfg = make_configs()
    model = ElectraForTokenClassification(cfg)
    model.load_state_dict(load_file(str(args.run / "ner_model.safetensors")), strict=True)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.out), safe_serialization=True)
    tok = AutoTokenizer.from_pretrained(str(args.data / "tokenizer"))
    tok.save_pretrained(str(args.out))
    metrics = json.loads((args.run / "metrics.json").read_text("utf-8"))
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1, ensure_ascii=False) + "\n", "utf-8")
    shutil.copy(args.run / "train.log", args.out / "train.log")
    print(f"wrote {args.out}; held-out micro F1 {metrics['heldout']['micro']['f1']}")


if __name__ == "__main__":
    main()
