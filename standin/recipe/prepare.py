"""Step 1 of the stand-in recipe: tokenizer, labelled splits and packed pretraining text.

Writes, under WORK_DIR:
  tokenizer/           the WordPiece tokenizer (vocab.txt, tokenizer.json, configs)
  ner.npz              token ids and aligned BIO label ids of the train and held-out splits
  heldout_ids.txt      the held-out sentence ids (never trained on)
  ner.npz also holds   klue_train_* / klue_heldout_*: the KLUE-NER v1.1 dev labels (6 tags) of the same
                       sentences (KLUE dev is the text konec re-annotated, so konec's held-out ids are held
                       out under both labellings); unlabelled_ids: the KLUE train sentences, for self-training
  pretrain.npy         unlabelled text as uint16 token ids, sentences joined by [SEP]

Usage:
  python -m standin.recipe.prepare --text NSMC.txt.xz --text KLUE.tsv -o .work/standin
"""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data"
CHECK_SENTENCE = "한국어 ELECTRA를 공유합니다."
CHECK_IDS = [11229, 29173, 13352, 25541, 4110, 7824, 17788, 18]
HELDOUT_SHARE = 10  # percent


def load_labels() -> list[str]:
    """The real model's 31 labels in id order."""
    spec = json.loads((DATA / "koelectra-small-v3-modu-ner.labels.json").read_text("utf-8"))
    return [spec["id2label"][str(i)] for i in range(len(spec["id2label"]))]


def load_subtype_map() -> dict[str, str]:
    """NIKL 150-subtype name -> its 15-tag level1."""
    out = {}
    lines = (DATA / "NIKL_NE_2021_TAGSET_150.tsv").read_text("utf-8").splitlines()
    for line in lines[1:]:
        cols = line.split("\t")
        if len(cols) >= 2 and cols[0]:
            out[cols[0]] = cols[1]
    return out


def read_konec(path: Path, subtypes: dict[str, str]) -> list[tuple[str, str, list[str]]]:
    """(id, sentence, per-character 15-tag BIO labels) for every sentence of a konec TSV."""
    sentences = []
    sid = text = None
    chars: list[str] = []
    labels: list[str] = []

    def flush():
        if sid is not None:
            got = "".join(chars)
            if got != text:
                raise ValueError(f"{path}: characters of {sid} do not spell its sentence")
            sentences.append((sid, text, list(labels)))

    for line in path.read_text("utf-8").split("\n"):
        if line.startswith("## "):
            if "\t" not in line or " " in line[3:].split("\t", 1)[0]:
                continue  # file comment (sentence ids have no spaces)
            flush()
            sid, text = line[3:].split("\t", 1)
            chars, labels = [], []
        elif line == "":
            continue
        elif sid is not None:
            ch, tag = line.rsplit("\t", 1)
            chars.append(ch if ch else " ")
            if tag == "O":
                labels.append("O")
            else:
                prefix, sub = tag.split("-", 1)
                labels.append(f"{prefix}-{subtypes[sub]}")
    flush()
    return sentences


def read_text(path: Path) -> str:
    """A UTF-8 file's text; a .xz file is decompressed."""
    if path.suffix == ".xz":
        with lzma.open(path, "rt", encoding="utf-8") as f:
            return f.read()
    return path.read_text("utf-8")


def read_klue(path: Path) -> list[tuple[str, str, list[str]]]:
    """(id, sentence, per-character BIO labels over PS LC OG DT TI QT) for every sentence of KLUE-NER's TSV."""
    sentences = []
    sid = None
    chars: list[str] = []
    labels: list[str] = []

    def flush():
        if sid is not None:
            sentences.append((sid, "".join(chars), list(labels)))

    for line in read_text(path).split("\n"):
        if line.startswith("## "):
            if "\t" not in line or " " in line[3:].split("\t", 1)[0]:
                continue  # file comment
            flush()
            sid, chars, labels = line[3:].split("\t", 1)[0], [], []
        elif line == "":
            continue
        elif sid is not None:
            ch, tag = line.rsplit("\t", 1)
            chars.append(ch if ch else " ")
            labels.append(tag)
    flush()
    return sentences


def heldout_ids(ids: list[str]) -> set[str]:
    """A fixed 10% of sentence ids: the smallest sha1 digests."""
    ranked = sorted(ids, key=lambda i: hashlib.sha1(i.encode("utf-8")).hexdigest())
    return set(ranked[: len(ids) * HELDOUT_SHARE // 100])


def build_tokenizer(out_dir: Path):
    """The KoELECTRA v3 WordPiece tokenizer: no lower-casing, accents kept."""
    from transformers import ElectraTokenizerFast

    tok = ElectraTokenizerFast(
        vocab_file=str(DATA / "koelectra-v3-vocab.txt"),
        do_lower_case=False,
        strip_accents=False,
        tokenize_chinese_chars=True,
        model_max_length=512,
    )
    got = tok(CHECK_SENTENCE)["input_ids"][1:-1]
    if got != CHECK_IDS:
        raise SystemExit(f"tokenizer check failed: {got} != {CHECK_IDS}")
    tok.save_pretrained(str(out_dir))
    return tok


def align(tok, text: str, char_labels: list[str], label2id: dict[str, int], max_len: int = 512):
    """Token ids (with [CLS]/[SEP]) and one label id per token, from character labels."""
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=True)
    ids = enc["input_ids"]
    labs = []
    for (s, e), tid in zip(enc["offset_mapping"], ids):
        if s == e:
            labs.append(-100)
            continue
        lab = char_labels[s]
        if lab == "O":
            # an entity that starts inside this token still marks the token
            inner = [char_labels[k] for k in range(s, e) if char_labels[k].startswith("B-")]
            lab = inner[0] if inner else "O"
        labs.append(label2id[lab])
    if len(ids) > max_len:
        ids = ids[: max_len - 1] + [ids[-1]]
        labs = labs[: max_len - 1] + [-100]
    return ids, labs


def iter_text(paths: list[Path]):
    """Lines of unlabelled text; a .tsv keeps its last column, .xz is decompressed."""
    for p in paths:
        opener = lzma.open if p.suffix == ".xz" else open
        with opener(p, "rt", encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if ".tsv" in p.name:
                    line = line.split("\t")[-1]
                line = line.strip()
                if line:
                    yield line


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--text", type=Path, action="append", default=[], help="unlabelled text file (.txt, .tsv, .xz)")
    ap.add_argument("--konec", type=Path, default=DATA / "konec-dev.tsv")
    ap.add_argument("--klue-dev", type=Path, default=DATA / "klue-ner-v1.1-dev.tsv.xz",
                    help="KLUE-NER dev: the konec sentences under KLUE's 6-tag labels")
    ap.add_argument("--unlabelled", type=Path, default=DATA / "klue-ner-train-sentences.tsv.xz",
                    help="id<TAB>sentence lines to pseudo-label (self-training)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    tok = build_tokenizer(args.out / "tokenizer")
    labels = load_labels()
    label2id = {l: i for i, l in enumerate(labels)}
    sents = read_konec(args.konec, load_subtype_map())
    held = heldout_ids([s[0] for s in sents])
    (args.out / "heldout_ids.txt").write_text("\n".join(sorted(held)) + "\n", "utf-8")

    arrays: dict[str, list] = {"train": [], "heldout": []}
    for sid, text, chars in sents:
        arrays["heldout" if sid in held else "train"].append(align(tok, text, chars, label2id))
    np_out = {}
    for split, rows in arrays.items():
        np_out[f"{split}_ids"] = np.array([np.array(r[0], np.int32) for r in rows], dtype=object)
        np_out[f"{split}_labels"] = np.array([np.array(r[1], np.int32) for r in rows], dtype=object)
    klue = {"klue_train": [], "klue_heldout": []}
    for sid, text, chars in read_klue(args.klue_dev):
        klue["klue_heldout" if sid in held else "klue_train"].append(align(tok, text, chars, label2id))
    for split, rows in klue.items():
        np_out[f"{split}_ids"] = np.array([np.array(r[0], np.int32) for r in rows], dtype=object)
        np_out[f"{split}_labels"] = np.array([np.array(r[1], np.int32) for r in rows], dtype=object)
    all_texts = {text for _, text, _ in sents}
    unl = [line.split("\t")[-1].strip() for line in read_text(args.unlabelled).splitlines()]
    unl = list(dict.fromkeys(t for t in unl if t and t not in all_texts))
    enc = tok(unl, add_special_tokens=True, truncation=True, max_length=512)["input_ids"]
    np_out["unlabelled_ids"] = np.array([np.array(r, np.int32) for r in enc], dtype=object)
    np.savez(args.out / "ner.npz", **np_out, allow_pickle=True)
    print(f"ner: {len(arrays['train'])} train, {len(arrays['heldout'])} held-out sentences; KLUE labels of "
          f"{len(klue['klue_train'])} + {len(klue['klue_heldout'])} of them; {len(unl)} unlabelled", file=sys.stderr)

    heldout_texts = {text for sid, text, _ in sents if sid in held}
    seen: set[str] = set()
    batch: list[str] = []
    chunks = []
    sep = tok.sep_token_id
    n_lines = 0

    def encode(lines):
        for ids in tok(lines, add_special_tokens=False)["input_ids"]:
            if ids:
                chunks.append(np.array(ids + [sep], dtype=np.uint16))

    for line in iter_text(args.text):
        if line in seen or line in heldout_texts:
            continue
        seen.add(line)
        batch.append(line)
        n_lines += 1
        if len(batch) == 10000:
            encode(batch)
            batch = []
    if batch:
        encode(batch)
    # the training split's own sentences are fair game for pretraining too
    encode([text for sid, text, _ in sents if sid not in held])
    stream = np.concatenate(chunks) if chunks else np.zeros(0, np.uint16)
    np.save(args.out / "pretrain.npy", stream)
    print(f"pretrain: {n_lines} lines, {stream.size} tokens", file=sys.stderr)


if __name__ == "__main__":
    main()
