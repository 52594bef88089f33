"""Tiny random-weight token classifiers of each architecture koner supports, saved as transformers saves them,
with a tokenizer of each family: the bundled WordPiece vocabulary, and a byte-level BPE and a Unigram trained
here on Korean text with the `tokenizers` trainers. Each builds in a few seconds (needs torch and transformers).
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VOCAB = ROOT / "standin" / "data" / "koelectra-v3-vocab.txt"
CORPUS = ROOT / "export" / "koner_export" / "data" / "parity-corpus.jsonl"
TTA = ["O"] + [f"{p}-{t}" for t in "PS FD TR AF OG LC CV DT TI QT EV AM PT MT TM".split() for p in "BI"]
ARCHITECTURES = ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "deberta-v2")
SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def korean_texts() -> list[str]:
    """The parity corpus's texts: Korean news, reviews, commands, numbers and long paragraphs."""
    return [json.loads(line)["text"] for line in CORPUS.read_text("utf-8").splitlines()]


def _wordpiece(out: Path, arch: str, bert_tokenizer: bool = False):
    from transformers import BertTokenizerFast, DistilBertTokenizerFast

    # no token_type_ids for DistilBERT, unless it is saved with a BERT tokenizer, as some fine-tunes are
    cls = DistilBertTokenizerFast if arch == "distilbert" and not bert_tokenizer else BertTokenizerFast
    tok = cls(vocab_file=str(VOCAB), do_lower_case=False, strip_accents=False, tokenize_chinese_chars=True)
    tok.save_pretrained(str(out))
    return tok


def _byte_bpe(out: Path, texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import RobertaTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                                      ("<s>", tok.token_to_id("<s>")), trim_offsets=True,
                                                      add_prefix_space=False)
    fast = RobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                add_prefix_space=False, trim_offsets=True)
    fast.save_pretrained(str(out))
    return fast


def _unigram(out: Path, texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=3000, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                      unk_token="<unk>")
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    fast = XLMRobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    fast.save_pretrained(str(out))
    return fast


def tokenizer_family(arch: str) -> str:
    """The tokenizer family a tiny model of `arch` gets."""
    return {"roberta": "byte-level BPE", "xlm-roberta": "Unigram"}.get(arch, "WordPiece")


def build(arch: str, out: Path, labels: list[str] = TTA, seed: int = 0, size: dict = SIZE,
          bert_tokenizer: bool = False) -> Path:
    """Save a random-weight `arch` token classifier with `labels` and its tokenizer to `out`; returns `out`.

    `size`: hidden_size, num_hidden_layers, num_attention_heads, intermediate_size (tiny by default).
    `bert_tokenizer`: a WordPiece model gets BERT's tokenizer class, which returns token_type_ids whether or not
    the model takes them (a DistilBERT fine-tune saved with its teacher's tokenizer)."""
    import torch
    import transformers as tf

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    texts = korean_texts()
    tok = {"roberta": lambda: _byte_bpe(out, texts), "xlm-roberta": lambda: _unigram(out, texts)}.get(
        arch, lambda: _wordpiece(out, arch, bert_tokenizer))()
    label_maps = dict(id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    vocab = len(tok)
    if arch == "bert":
        cfg = tf.BertConfig(vocab_size=vocab, max_position_embeddings=512, **size, **label_maps)
        cls = tf.BertForTokenClassification
    elif arch in ("roberta", "xlm-roberta"):
        conf = tf.RobertaConfig if arch == "roberta" else tf.XLMRobertaConfig
        cfg = conf(vocab_size=vocab, max_position_embeddings=514, pad_token_id=tok.pad_token_id,
                   bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, type_vocab_size=1, **size,
                   **label_maps)
        cls = tf.RobertaForTokenClassification if arch == "roberta" else tf.XLMRobertaForTokenClassification
    elif arch == "distilbert":
        cfg = tf.DistilBertConfig(vocab_size=vocab, max_position_embeddings=512, dim=size["hidden_size"],
                                  n_layers=size["num_hidden_layers"], n_heads=size["num_attention_heads"],
                                  hidden_dim=size["intermediate_size"], **label_maps)
        cls = tf.DistilBertForTokenClassification
    elif arch == "electra":
        cfg = tf.ElectraConfig(vocab_size=vocab, embedding_size=max(16, size["hidden_size"] // 2),
                               max_position_embeddings=512, **size, **label_maps)
        cls = tf.ElectraForTokenClassification
    elif arch == "deberta-v2":  # DeBERTa-v2/v3: relative positions, no absolute position table
        cfg = tf.DebertaV2Config(vocab_size=vocab, max_position_embeddings=512, relative_attention=True,
                                 position_buckets=64, pos_att_type=["p2c", "c2p"], position_biased_input=False,
                                 **size, **label_maps)
        cls = tf.DebertaV2ForTokenClassification
    else:
        raise ValueError(f"unknown architecture {arch!r}")
    tok.model_max_length = 512  # as hub tokenizers record it: the pipeline's `stride` chunks need it
    tok.save_pretrained(str(out))
    torch.manual_seed(seed)
    model = cls(cfg).eval()
    with torch.no_grad():  # random weights give near-uniform labels; a sharper head gives real entity spans
        model.classifier.weight.mul_(40.0)
    model.save_pretrained(str(out))
    return out
