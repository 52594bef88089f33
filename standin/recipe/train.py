"""Step 2 of the stand-in recipe: optional encoder pretraining, then NER fine-tuning and held-out evaluation.

Reads what `prepare` wrote (pretrain.npy, ner.npz, tokenizer/) and, with --init-embeddings, the word-piece
vectors of the `embeddings` step; writes, under OUT:
  pretrain.ckpt / finetune.ckpt   resumable checkpoints (model, optimizer, step)
  pretrain-stable.ckpt            masked-LM only: the weights where the learning-rate decay began (a longer
                                  budget continues from here)
  ner_model.safetensors           the fine-tuned ElectraForTokenClassification state dict
  metrics.json                    held-out entity P/R/F1 (overall, per tag) and token accuracy
  train.log                       progress

Deterministic for a given --seed on CPU (each step's batch is drawn from its own seeded generator).

Usage:
  python -m standin.recipe.train --data DIR -o OUT --no-pretrain --init-embeddings DIR/embeddings.npy  # CPU
  python -m standin.recipe.train --data DIR -o OUT2 --no-pretrain --init-from OUT --ft-lr 3e-4  # a second cycle
  python -m standin.recipe.train --data DIR -o OUT --no-pretrain --warm-layers 3 ...  # 3 layers first, then grow
  python -m standin.recipe.train --data DIR -o OUT --device cuda --pretrain-seconds 330   # RTD pretraining
  python -m standin.recipe.train --data DIR -o PRE --objective mlm --pretrain-only --pretrain-seconds 6000 \
      --init-embeddings DIR/embeddings.npy --threads 1     # masked-LM pretraining; run again to resume, with a
                                                           # larger --pretrain-seconds to continue further
  python -m standin.recipe.train --data DIR -o OUT --init-encoder PRE/pretrain.ckpt   # fine-tune from it
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

try:
    from .evaluate import entity_scores  # package run
except ImportError:  # run as a plain script
    from evaluate import entity_scores  # type: ignore

LABELS_JSON = Path(__file__).resolve().parent.parent / "data" / "koelectra-small-v3-modu-ner.labels.json"
CLS, SEP, MASK, PAD = 2, 3, 4, 0
PARTIAL_O = -2  # target "O or any tag the labelling does not mark" (KLUE's O)
KLUE_TAGS = ("PS", "LC", "OG", "DT", "TI", "QT")
N_SPECIAL = 5  # [PAD] [UNK] [CLS] [SEP] [MASK]


class Log:
    def __init__(self, path: Path):
        self.f = open(path, "a", encoding="utf-8")

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, file=sys.stderr, flush=True)
        self.f.write(line + "\n")
        self.f.flush()


def labels_spec():
    spec = json.loads(LABELS_JSON.read_text("utf-8"))
    id2label = {int(k): v for k, v in spec["id2label"].items()}
    return id2label, spec["config"]


def make_configs():
    from transformers import ElectraConfig

    id2label, arch = labels_spec()
    common = dict(vocab_size=arch["vocab_size"], embedding_size=arch["embedding_size"],
                  max_position_embeddings=arch["max_position_embeddings"], hidden_act=arch["hidden_act"],
                  type_vocab_size=2, layer_norm_eps=1e-12, initializer_range=arch["initializer_range"],
                  pad_token_id=PAD)
    disc = ElectraConfig(hidden_size=arch["hidden_size"], num_hidden_layers=arch["num_hidden_layers"],
                         num_attention_heads=arch["num_attention_heads"],
                         intermediate_size=arch["intermediate_size"],
                         hidden_dropout_prob=arch["hidden_dropout_prob"],
                         attention_probs_dropout_prob=arch["attention_probs_dropout_prob"], **common)
    # ELECTRA-small's generator: a quarter of the discriminator's width
    gen = ElectraConfig(hidden_size=64, num_hidden_layers=arch["num_hidden_layers"], num_attention_heads=1,
                        intermediate_size=256, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                        **common)
    ner = ElectraConfig(hidden_size=arch["hidden_size"], num_hidden_layers=arch["num_hidden_layers"],
                        num_attention_heads=arch["num_attention_heads"],
                        intermediate_size=arch["intermediate_size"],
                        hidden_dropout_prob=arch["hidden_dropout_prob"],
                        attention_probs_dropout_prob=arch["attention_probs_dropout_prob"],
                        classifier_dropout=arch.get("classifier_dropout"),
                        id2label=id2label, label2id={v: k for k, v in id2label.items()},
                        architectures=["ElectraForTokenClassification"], **common)
    return disc, gen, ner


def lr_at(step: int, total: int, peak: float, warmup: float) -> float:
    w = max(1, int(total * warmup))
    if step < w:
        return peak * (step + 1) / w
    return peak * max(0.0, (total - step) / max(1, total - w))


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def autocast(device: str):
    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


# ---------------------------------------------------------------- pretraining

def pretrain_batch(stream: np.ndarray, seed: int, step: int, batch: int, seq: int) -> np.ndarray:
    """A batch of random crops of the token stream, each framed by [CLS] ... [SEP]."""
    rng = np.random.default_rng([seed, 1, step])
    starts = rng.integers(0, stream.size - seq, size=batch)
    body = np.stack([stream[s:s + seq - 2] for s in starts]).astype(np.int64)
    out = np.empty((batch, seq), np.int64)
    out[:, 0] = CLS
    out[:, 1:-1] = body
    out[:, -1] = SEP
    return out


def pretrain(args, log: Log) -> dict:
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    dev = args.device
    ckpt_path = args.out / "pretrain.ckpt"
    disc_cfg, gen_cfg, _ = make_configs()
    torch.manual_seed(args.seed)
    disc = ElectraForPreTraining(disc_cfg)
    gen = ElectraForMaskedLM(gen_cfg)
    gen.electra.embeddings = disc.electra.embeddings  # shared token/position embeddings
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
    disc.to(dev), gen.to(dev)
    params = list({id(p): p for p in list(disc.parameters()) + list(gen.parameters())}.values())
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01,
                            **({"fused": True} if dev == "cuda" else {}))
    step, total, seconds = 0, args.pretrain_steps, 0.0
    if ckpt_path.exists():
        st = torch.load(ckpt_path, map_location=dev, weights_only=False)
        disc.load_state_dict(st["disc"]), gen.load_state_dict(st["gen"], strict=False)
        gen.electra.embeddings = disc.electra.embeddings
        gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
        opt.load_state_dict(st["opt"])
        step, total, seconds = st["step"], st["total"], st.get("seconds", 0.0)
        log(f"pretrain: resumed at step {step}/{total}")
        if st.get("done"):
            return {"steps": total, "seconds": seconds, "disc": disc}
    stream = np.load(args.data / "pretrain.npy")
    log(f"pretrain: {stream.size} tokens, batch {args.batch}x{args.seq}, long share {args.long_share}")
    gen_t = torch.Generator(device=dev)
    disc.train(), gen.train()
    t0 = time.time()
    calib_from = None
    while step < total or total == 0:
        long_phase = total and step >= int(total * (1 - args.long_share))
        b, s = (args.batch // 4, 512) if long_phase else (args.batch, args.seq)
        ids = torch.from_numpy(pretrain_batch(stream, args.seed, step, b, s)).to(dev)
        gen_t.manual_seed(args.seed * 1_000_003 + step)
        special = ids < N_SPECIAL
        probs = torch.full(ids.shape, 0.15, device=dev)
        masked = (torch.bernoulli(probs, generator=gen_t) > 0) & ~special
        inp = ids.masked_fill(masked, MASK)
        for g in opt.param_groups:  # while calibrating, warm up as if over 1,000 steps
            g["lr"] = lr_at(step, total, args.lr, args.warmup) if total else args.lr * (step + 1) / 1000
        with autocast(dev):
            g_logits = gen(input_ids=inp).logits[masked].float()
            g_loss = F.cross_entropy(g_logits, ids[masked])
            with torch.no_grad():
                u = torch.rand(g_logits.shape, generator=gen_t, device=dev).clamp_(1e-9, 1.0)
                sampled = (g_logits - torch.log(-torch.log(u))).argmax(-1)
            fake = ids.clone()
            fake[masked] = sampled
            is_replaced = (fake != ids).float()
            d_logits = disc(input_ids=fake).logits.float()
            d_loss = F.binary_cross_entropy_with_logits(d_logits[~special], is_replaced[~special])
            loss = g_loss + 50.0 * d_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if total == 0:  # time-budgeted: calibrate the step count after a short warm-up
            if step == 10:
                if dev == "cuda":
                    torch.cuda.synchronize()
                calib_from = time.time()
            elif step == 60:
                if dev == "cuda":
                    torch.cuda.synchronize()
                per = (time.time() - calib_from) / 50
                left = args.pretrain_seconds - (time.time() - t0)
                total = step + max(1, int(left / (per * (1 + 0.6 * args.long_share))))
                log(f"pretrain: {per * 1000:.1f} ms/step -> {total} steps in {args.pretrain_seconds:.0f}s")
        if step % args.log_every == 0 or step == total:
            log(f"pretrain step {step}/{total} loss {loss.item():.4f} gen {g_loss.item():.4f} "
                f"disc {d_loss.item():.4f} lr {opt.param_groups[0]['lr']:.2e} seq {s}")
        if total and (step % args.ckpt_every == 0 or step == total):
            save_atomic({"disc": disc.state_dict(), "gen": gen.state_dict(), "opt": opt.state_dict(),
                         "step": step, "total": total, "done": step == total,
                         "seconds": seconds + time.time() - t0}, ckpt_path)
    seconds += time.time() - t0
    log(f"pretrain: done, {total} steps in {seconds:.0f}s")
    return {"steps": total, "seconds": seconds, "disc": disc}


# ---------------------------------------------------------------- masked-LM pretraining

def mask_tokens(ids: torch.Tensor, seed: int, step: int, share: float = 0.15):
    """BERT's masking: `share` of the non-special tokens are targets; 80% of them become [MASK], 10% a random
    token of the batch (unigram draw), 10% stay. Returns (input ids, boolean target mask); seeded by step."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    special = ids < N_SPECIAL
    masked = (torch.rand(ids.shape, generator=g) < share) & ~special
    if not masked.any():  # a tiny batch: still one target
        masked.view(-1)[int(torch.nonzero(~special.view(-1))[0])] = True
    r = torch.rand(ids.shape, generator=g)
    inp = ids.masked_fill(masked & (r < 0.8), MASK)
    swap = masked & (r >= 0.8) & (r < 0.9)
    pool = ids[~special]
    inp[swap] = pool[torch.randint(pool.numel(), (int(swap.sum()),), generator=g)]
    return inp, masked


def unigram_entropy(stream: np.ndarray) -> float:
    """Cross-entropy (nats) of the best constant guess for a masked token: the entropy of the non-special pieces."""
    counts = np.bincount(stream.astype(np.int64))[N_SPECIAL:].astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def wsd_lr(step: int, peak: float, warmup: int, total: int | None, decay_from: int | None) -> float:
    """Warm-up, stable, decay: linear warm-up over `warmup` steps, then `peak` until `decay_from`, then linear to 0
    at `total`. The stable part does not depend on the total, so a run can be extended before its decay."""
    lr = peak * min(1.0, (step + 1) / max(1, warmup))
    if decay_from is None or total is None or step < decay_from:
        return lr
    lr = peak * min(1.0, (decay_from + 1) / max(1, warmup))
    return lr * max(0.0, (total - step) / max(1, total - decay_from))


class StopRequest:
    """SIGTERM/SIGINT ask the training loop to checkpoint and stop after its current step."""

    def __init__(self):
        self.asked = False
        self.before = {sig: signal.signal(sig, self._ask) for sig in (signal.SIGTERM, signal.SIGINT)}

    def _ask(self, signum, frame):
        self.asked = True

    def release(self) -> None:
        """Give the signals back their earlier handlers."""
        for sig, handler in self.before.items():
            signal.signal(sig, handler)


def mlm_model(args):
    """ElectraForMaskedLM over the discriminator's config (the real encoder); its head is tied to the embeddings."""
    from transformers import ElectraForMaskedLM

    disc_cfg, _, _ = make_configs()
    if args.pretrain_dropout is not None:
        disc_cfg.hidden_dropout_prob = disc_cfg.attention_probs_dropout_prob = args.pretrain_dropout
    torch.manual_seed(args.seed)
    model = ElectraForMaskedLM(disc_cfg)
    assert model.generator_lm_head.weight is model.electra.embeddings.word_embeddings.weight
    return model


def pretrain_mlm(args, log: Log) -> dict:
    """Masked-LM pretraining of the real encoder, budgeted in steps or seconds, checkpointed and resumable.

    The step count is --pretrain-steps, or fitted to --pretrain-seconds (re-estimated from the measured speed
    until the decay begins, the last --decay-share of the steps). Running again with the same -o resumes; with a
    larger budget, a run that had begun its decay continues from pretrain-stable.ckpt (the weights before it).
    """
    dev = args.device
    out = args.out
    ckpt_path, stable_path = out / "pretrain.ckpt", out / "pretrain-stable.ckpt"
    model = mlm_model(args).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01)
    budget_steps = args.pretrain_steps if not args.pretrain_seconds else None
    step, seconds, total, decay_from, cpu = 0, 0.0, budget_steps, None, 0.0

    def load(path: Path) -> dict:
        st = torch.load(path, map_location=dev, weights_only=False)
        model.load_state_dict(st["mlm"]), opt.load_state_dict(st["opt"])
        return st

    if ckpt_path.exists():
        st = load(ckpt_path)
        step, seconds, total, decay_from = st["step"], st["seconds"], st["total"], st["decay_from"]
        cpu = st.get("cpu_seconds", 0.0)
        bigger = (budget_steps > total if budget_steps is not None
                  else args.pretrain_seconds > (st["budget_seconds"] or seconds))
        if decay_from is not None and bigger:
            kept = out / f"pretrain-{step}.ckpt"
            if not stable_path.exists():
                raise SystemExit(f"{ckpt_path} has begun its learning-rate decay and {stable_path} is missing: "
                                 "start a new run folder to pretrain further")
            os.replace(ckpt_path, kept)
            st = load(stable_path)
            step, seconds, total, decay_from = st["step"], st["seconds"], budget_steps, None
            cpu = st.get("cpu_seconds", 0.0)
            log(f"pretrain: larger budget; the decayed run is kept as {kept.name}, continuing from "
                f"{stable_path.name} at step {step}")
        else:
            if decay_from is None:  # before the decay the budget sets the total (a time budget: estimated anew)
                total = budget_steps
            log(f"pretrain: resumed at step {step} ({seconds:.0f}s trained)")
        if (total is not None and step >= total) or (budget_steps is None and seconds >= args.pretrain_seconds):
            log(f"pretrain: already done ({step} steps, {seconds:.0f}s); a larger budget continues it")
            return {"steps": step, "seconds": seconds, "disc": model}
    elif args.init_embeddings:
        init_embeddings(model, args.init_embeddings, args.embedding_std, log, "pretrain")
    stream = np.load(args.data / "pretrain.npy")
    guess = unigram_entropy(stream)
    long_every = round(1 / args.long_share) if args.long_share > 0 else 0
    long_b = max(1, args.batch * args.seq // 512)
    log(f"pretrain (masked LM): {stream.size} tokens, batch {args.batch}x{args.seq}"
        f"{f', every {long_every}th step {long_b}x512' if long_every else ''}, peak lr {args.lr}, "
        f"warm-up {args.warmup_steps} steps, decay over the last {args.decay_share:.0%}, "
        f"budget {f'{budget_steps} steps' if budget_steps is not None else f'{args.pretrain_seconds:.0f}s'}")
    log(f"pretrain: constant guess (unigram entropy of the maskable pieces) {guess:.4f} nats")
    stop = StopRequest()
    model.train()
    t_mark, c_mark, step_mark, losses, hits, n_tgt = time.time(), time.process_time(), step, [], 0, 0

    def save(path: Path) -> None:
        save_atomic({"mlm": model.state_dict(), "opt": opt.state_dict(), "step": step, "seconds": seconds,
                     "total": total, "decay_from": decay_from, "objective": "mlm",
                     "budget_seconds": args.pretrain_seconds or None, "cpu_seconds": cpu}, path)

    while total is None or step < total:
        t_step, c_step = time.time(), time.process_time()
        long_step = long_every and step % long_every == long_every - 1
        b, s = (long_b, 512) if long_step else (args.batch, args.seq)
        ids = torch.from_numpy(pretrain_batch(stream, args.seed, step, b, s))
        inp, masked = mask_tokens(ids, args.seed, step)
        inp, masked, ids = inp.to(dev), masked.to(dev), ids.to(dev)
        if decay_from is None and total is not None and step >= int(total * (1 - args.decay_share)):
            decay_from = step
            save(stable_path)
            log(f"pretrain: decay from step {decay_from} to {total}; weights before it in {stable_path.name}")
        for g in opt.param_groups:
            g["lr"] = wsd_lr(step, args.lr, args.warmup_steps, total, decay_from)
        torch.manual_seed(args.seed * 7919 + step)  # dropout, reproducible on resume
        with autocast(dev):
            hidden = model.electra(input_ids=inp).last_hidden_state[masked]
            logits = model.generator_lm_head(model.generator_predictions(hidden)).float()
        target = ids[masked]
        loss = F.cross_entropy(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seconds += time.time() - t_step
        cpu += time.process_time() - c_step
        losses.append(loss.item())
        hits += int((logits.argmax(-1) == target).sum())
        n_tgt += int(target.numel())
        if budget_steps is None and decay_from is None and (step - step_mark == 20 or step % args.log_every == 0):
            per = (time.time() - t_mark) / max(1, step - step_mark)
            total = step + max(1, int((args.pretrain_seconds - seconds) / per))
        if step % args.log_every == 0 or step == total or stop.asked:
            per = (time.time() - t_mark) / max(1, step - step_mark)
            per_cpu = (time.process_time() - c_mark) / max(1, step - step_mark)
            log(f"pretrain step {step}/{total} loss {np.mean(losses):.4f} (constant guess {guess:.4f}) "
                f"acc {hits / max(1, n_tgt):.3f} lr {opt.param_groups[0]['lr']:.2e} {per * 1000:.0f} ms/step "
                f"(cpu {per_cpu * 1000:.0f}) {seconds:.0f}s (cpu {cpu:.0f}s)")
            t_mark, c_mark, step_mark, losses, hits, n_tgt = time.time(), time.process_time(), step, [], 0, 0
        if step % args.ckpt_every == 0 or step == total or stop.asked:
            save(ckpt_path)
        if stop.asked:
            log(f"pretrain: stopped at step {step}; run the same command again to resume")
            raise SystemExit(0)
    stop.release()
    log(f"pretrain: done, {step} steps in {seconds:.0f}s")
    return {"steps": step, "seconds": seconds, "disc": model}


def encoder_state(path: Path) -> dict:
    """The pretrained model's state dict (its `electra.` keys are the encoder) from a pretrain checkpoint."""
    st = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("mlm", "disc"):
        if key in st:
            return st[key]
    raise SystemExit(f"{path} is not a pretrain checkpoint (no 'mlm' or 'disc' weights): "
                     "give --init-encoder a pretrain.ckpt written by this script")


# ---------------------------------------------------------------- fine-tuning

def ner_examples(ids, labels, seed: int, epoch: int, pack_share: float, max_len: int = 512):
    """The epoch's examples: shuffled sentences, some packed together into long sequences."""
    rng = np.random.default_rng([seed, 2, epoch])
    order = rng.permutation(len(ids))
    out, i = [], 0
    while i < len(order):
        if rng.random() < pack_share:
            body_i, body_l = [], []
            while i < len(order) and len(body_i) + len(ids[order[i]]) - 2 <= max_len - 2:
                body_i.extend(ids[order[i]][1:-1]), body_l.extend(labels[order[i]][1:-1])
                i += 1
            if not body_i:  # a single sentence longer than the budget
                body_i, body_l = list(ids[order[i]][1:-1]), list(labels[order[i]][1:-1])
                i += 1
            out.append(([CLS] + body_i + [SEP], [-100] + body_l + [-100]))
        else:
            out.append((list(ids[order[i]]), list(labels[order[i]])))
            i += 1
    return out


def length_batches(examples, batch: int, seed: int, epoch: int):
    """Batches of similar length (little padding), in a seeded random order."""
    order = sorted(range(len(examples)), key=lambda k: len(examples[k][0]))
    batches = [[examples[k] for k in order[j:j + batch]] for j in range(0, len(order), batch)]
    rng = np.random.default_rng([seed, 3, epoch])
    return [batches[k] for k in rng.permutation(len(batches))]


def pad(rows, value):
    n = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (n - len(r)) for r in rows], dtype=torch.long)


def predict(model, ids, dev: str, batch: int = 64):
    model.eval()
    preds = []
    order = sorted(range(len(ids)), key=lambda k: len(ids[k]))
    by_idx = {}
    with torch.no_grad():
        for k in range(0, len(order), batch):
            idx = order[k:k + batch]
            x = pad([ids[j] for j in idx], PAD).to(dev)
            m = (x != PAD).long()
            with autocast(dev):
                logits = model(input_ids=x, attention_mask=m).logits.float()
            am = logits.argmax(-1).cpu().numpy()
            for r, j in enumerate(idx):
                by_idx[j] = am[r, : len(ids[j])]
    for j in range(len(ids)):
        preds.append(by_idx[j])
    return preds


def init_embeddings(model, path: Path, std: float, log: Log, tag: str = "finetune") -> None:
    """Word-piece embeddings from the `embeddings` step (rows of NaN keep their random values)."""
    vecs = np.load(path)
    seen = ~np.isnan(vecs).any(axis=1)
    v = vecs[seen]
    v = (v - v.mean(axis=0)) * (std / v.std())
    with torch.no_grad():
        w = model.electra.embeddings.word_embeddings.weight
        w[torch.from_numpy(np.flatnonzero(seen))] = torch.from_numpy(v).to(w.dtype)
    log(f"{tag}: word-piece embeddings for {int(seen.sum())} pieces from {path} (std {std})")


def scale_residual_branches(model, scale: float, log: Log) -> None:
    """Shrink each layer's residual-branch output projections so a fresh deep post-LN stack starts near identity."""
    with torch.no_grad():
        for layer in model.electra.encoder.layer:
            layer.attention.output.dense.weight.mul_(scale)
            layer.output.dense.weight.mul_(scale)
    log(f"finetune: residual-branch output weights scaled by {scale}")


def bare_ner_model(args, layers: int):
    """A randomly initialised token classifier with `layers` encoder layers (the real model has 12), seeded."""
    from transformers import ElectraForTokenClassification

    _, _, ner_cfg = make_configs()
    ner_cfg.num_hidden_layers = layers
    torch.manual_seed(args.seed + 1)
    return ElectraForTokenClassification(ner_cfg)


def start_weights(model, args, log: Log, disc_state: dict | None = None):
    """The pretrained encoder if there is one, then --init-embeddings (not over a masked-LM encoder, which started
    from them); --residual-scale on a random encoder."""
    if disc_state is not None:
        enc = {k[len("electra."):]: v for k, v in disc_state.items() if k.startswith("electra.")}
        model.electra.load_state_dict(enc)
    if args.init_embeddings and (disc_state is None or args.objective == "rtd"):  # masked LM started from them
        init_embeddings(model, args.init_embeddings, args.embedding_std, log)
    if disc_state is None and args.residual_scale != 1.0:
        scale_residual_branches(model, args.residual_scale, log)
    return model


def grow(small, args, log: Log):
    """The 12-layer model that computes what `small` computes: its layers first, then identity layers.

    Each added layer's residual branches start at zero and its LayerNorms at (1, 0); the last trained
    layer's LayerNorm scale and shift move into the classifier, so the added layers see normalised
    input and pass it through unchanged until training moves them.
    """
    model = bare_ner_model(args, make_configs()[2].num_hidden_layers)
    k = len(small.electra.encoder.layer)
    own = model.state_dict()
    own.update({n: v for n, v in small.state_dict().items() if n in own})
    model.load_state_dict(own)
    with torch.no_grad():
        last_ln = model.electra.encoder.layer[k - 1].output.LayerNorm
        head = model.classifier
        head.bias.add_(head.weight @ last_ln.bias)
        head.weight.mul_(last_ln.weight)
        last_ln.weight.fill_(1.0), last_ln.bias.zero_()
        for layer in model.electra.encoder.layer[k:]:
            for dense in (layer.attention.output.dense, layer.output.dense):
                dense.weight.zero_(), dense.bias.zero_()
            for ln in (layer.attention.output.LayerNorm, layer.output.LayerNorm):
                ln.weight.fill_(1.0), ln.bias.zero_()
    log(f"finetune: grew {k} trained layers to {len(model.electra.encoder.layer)}")
    return model


def finetune(args, disc_state: dict | None, log: Log):
    """Fine-tune for --ft-epochs; with --warm-layers K, first train a K-layer model for --warm-epochs and grow it."""
    ckpt_path = args.out / "finetune.ckpt"
    resuming = ckpt_path.exists()  # a fine-tune checkpoint holds the whole 12-layer model
    if args.warm_layers and disc_state is None:
        small = start_weights(bare_ner_model(args, args.warm_layers), args, log)
        if not resuming:
            train_epochs(small, args, args.warm_epochs, args.out / "warm.ckpt", "warm", log, args.warm_lr or args.ft_lr)
        model = grow(small, args, log)
        if args.eval_every and not resuming:
            log(f"grown, before further training: held-out {summary(evaluate_heldout(model, args))}")
    else:
        model = bare_ner_model(args, make_configs()[2].num_hidden_layers)
        if args.init_from:
            from safetensors.torch import load_file

            names = [args.init_from / n for n in ("ner_model.safetensors", "model.safetensors")]
            model.load_state_dict(load_file(str(next((n for n in names if n.exists()), names[-1]))))
            log(f"finetune: continuing from {args.init_from}")
        else:
            start_weights(model, args, log, disc_state)
    return train_epochs(model, args, args.ft_epochs, ckpt_path, "finetune", log, args.ft_lr)


def partial_log_mask(id2label: dict, dev: str) -> torch.Tensor:
    """0 for the labels a KLUE `O` allows (O, and B-/I- of the 9 tags KLUE does not mark), -inf elsewhere."""
    ok = [lab == "O" or lab.split("-", 1)[1] not in KLUE_TAGS for _, lab in sorted(id2label.items())]
    return torch.tensor([0.0 if o else float("-inf") for o in ok], device=dev)


def token_loss(logits, y, log_mask, smoothing: float = 0.0):
    """Mean over labelled tokens of -log p(target); a PARTIAL_O target scores the summed probability of its set."""
    lp = logits.log_softmax(-1)
    nll = torch.zeros(y.shape, dtype=lp.dtype, device=lp.device)
    full = y >= 0
    if full.any():
        lpf = lp[full]
        hit = -lpf.gather(-1, y[full][:, None]).squeeze(-1)
        nll[full] = (1 - smoothing) * hit - smoothing * lpf.mean(-1) if smoothing else hit
    part = y == PARTIAL_O
    if part.any():
        nll[part] = -torch.logsumexp(lp[part] + log_mask, -1)
    return nll[y != -100].mean()


def training_sentences(args, data, epoch: int, log: Log | None = None):
    """konec train, then (--klue-partial) KLUE's labels of the same sentences, then (--pseudo) pseudo-labelled ones."""
    ids, labs = list(data["train_ids"]), list(data["train_labels"])
    if args.klue_partial:
        k_ids, k_lab = list(data["klue_train_ids"]), list(data["klue_train_labels"])
        ids += k_ids
        labs += [np.where(l == 0, PARTIAL_O, l).astype(np.int32) for l in k_lab]
    if args.pseudo:
        ps = np.load(args.pseudo, allow_pickle=True)
        p_ids, p_lab = list(ps["ids"]), list(ps["labels"])
        if args.pseudo_per_epoch and args.pseudo_per_epoch < len(p_ids):
            pick = np.random.default_rng([args.seed, 4, epoch]).choice(len(p_ids), args.pseudo_per_epoch, replace=False)
            p_ids, p_lab = [p_ids[k] for k in pick], [p_lab[k] for k in pick]
        ids += p_ids
        labs += p_lab
    if log is not None:
        log(f"training sentences: {len(ids)} (konec {len(data['train_ids'])}"
            f"{', KLUE partial ' + str(len(data['klue_train_ids'])) if args.klue_partial else ''}"
            f"{', pseudo ' + str(len(ids) - len(data['train_ids']) - (len(data['klue_train_ids']) if args.klue_partial else 0)) if args.pseudo else ''})")
    return ids, labs


def train_epochs(model, args, epochs: int, ckpt_path: Path, tag: str, log: Log, lr: float):
    """Token-classification training with linear warm-up and decay, resumable from `ckpt_path` after any epoch."""
    dev = args.device
    if args.ft_dropout is not None:  # training only: the packaged config keeps the real model's values
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = args.ft_dropout
    model.to(dev)
    data = np.load(args.data / "ner.npz", allow_pickle=True)
    log_mask = partial_log_mask(model.config.id2label, dev)
    tr_ids, tr_lab = training_sentences(args, data, 0, log)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, eps=1e-6, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(ner_examples(tr_ids, tr_lab, args.seed, 0, args.pack_share)) / args.ft_batch)
    total = steps_per_epoch * epochs
    epoch0, step = 0, 0
    if ckpt_path.exists():
        st = torch.load(ckpt_path, map_location=dev, weights_only=False)
        model.load_state_dict(st["model"]), opt.load_state_dict(st["opt"])
        epoch0, step = st["epoch"], st["step"]
        log(f"{tag}: resumed after epoch {epoch0}")
    for epoch in range(epoch0, epochs):
        model.train()
        tr_ids, tr_lab = training_sentences(args, data, epoch)
        ex = ner_examples(tr_ids, tr_lab, args.seed, epoch, args.pack_share)
        t_epoch = time.time()
        torch.manual_seed(args.seed * 7919 + epoch)
        losses = []
        for rows in length_batches(ex, args.ft_batch, args.seed, epoch):
            x = pad([r[0] for r in rows], PAD).to(dev)
            y = pad([r[1] for r in rows], -100).to(dev)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, lr, 0.1)
            with autocast(dev):
                logits = model(input_ids=x, attention_mask=(x != PAD).long()).logits.float()
            loss = token_loss(logits, y, log_mask, args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            losses.append(loss.item())
        log(f"{tag} epoch {epoch + 1}/{epochs} loss {np.mean(losses):.4f} ({time.time() - t_epoch:.0f}s)")
        if args.eval_every and (epoch + 1) % args.eval_every == 0 and epoch + 1 < epochs:
            log(f"{tag} epoch {epoch + 1}: held-out {summary(evaluate_heldout(model, args))}; "
                f"KLUE held-out 6-tag F1 {evaluate_klue(model, args)['micro']['f1']:.4f}")
        save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1, "step": step},
                    ckpt_path)
    return model


def summary(scores: dict) -> str:
    """One log line's worth of held-out scores: strict F1/P/R, then the lenient F1."""
    m = scores["micro"]
    return (f"F1 {m['f1']:.4f} P {m['precision']:.4f} R {m['recall']:.4f} "
            f"(lenient F1 {scores['lenient']['micro']['f1']:.4f})")


def evaluate_heldout(model, args) -> dict:
    data = np.load(args.data / "ner.npz", allow_pickle=True)
    ids, gold = list(data["heldout_ids"]), list(data["heldout_labels"])
    preds = predict(model, ids, args.device)
    id2label = model.config.id2label
    g_seqs, p_seqs = [], []
    for g, p in zip(gold, preds):
        keep = g != -100
        g_seqs.append([id2label[int(v)] for v in g[keep]])
        p_seqs.append([id2label[int(v)] for v in p[keep]])
    return entity_scores(g_seqs, p_seqs)


def evaluate_klue(model, args) -> dict:
    """Entity scores against KLUE's 6-tag labels of the konec held-out sentences; other predicted tags count as O."""
    data = np.load(args.data / "ner.npz", allow_pickle=True)
    ids, gold = list(data["klue_heldout_ids"]), list(data["klue_heldout_labels"])
    preds = predict(model, ids, args.device)
    id2label = model.config.id2label

    def six(v: int) -> str:
        lab = id2label[int(v)]
        return lab if lab == "O" or lab.split("-", 1)[1] in KLUE_TAGS else "O"

    g_seqs, p_seqs = [], []
    for g, p in zip(gold, preds):
        keep = g != -100
        g_seqs.append([id2label[int(v)] for v in g[keep]])
        p_seqs.append([six(v) for v in p[keep]])
    return entity_scores(g_seqs, p_seqs)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    ap.add_argument("--pretrain-steps", type=int, default=1000)
    ap.add_argument("--pretrain-seconds", type=float, default=0.0,
                    help="instead of --pretrain-steps: fit the step count to this time budget")
    ap.add_argument("--no-pretrain", action="store_true", help="fine-tune from random initialisation")
    ap.add_argument("--objective", choices=("rtd", "mlm"), default="rtd",
                    help="pretraining objective: ELECTRA's replaced-token detection or a masked LM (15%%, 80/10/10)")
    ap.add_argument("--pretrain-only", action="store_true", help="stop after pretraining (no fine-tuning)")
    ap.add_argument("--init-encoder", type=Path,
                    help="fine-tune from this pretrain.ckpt's encoder (a copy of a running pretraining's is fine)")
    ap.add_argument("--warmup-steps", type=int, default=500, help="masked LM: learning-rate warm-up steps")
    ap.add_argument("--decay-share", type=float, default=0.2,
                    help="masked LM: share of the steps at the end with linearly decaying learning rate")
    ap.add_argument("--pretrain-dropout", type=float, default=0.0,
                    help="masked LM: dropout while pretraining (the saved config keeps the real model's 0.1)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--long-share", type=float, default=0.1,
                    help="share of steps at 512 tokens (RTD: the final ones; masked LM: every 1/share-th step)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=float, default=0.06)
    ap.add_argument("--ft-epochs", type=int, default=20)
    ap.add_argument("--ft-lr", type=float, default=1e-3)
    ap.add_argument("--ft-batch", type=int, default=16)
    ap.add_argument("--pack-share", type=float, default=0.25)
    ap.add_argument("--init-embeddings", type=Path, help="word-piece vectors from the embeddings step")
    ap.add_argument("--embedding-std", type=float, default=0.05, help="scale of those vectors")
    ap.add_argument("--ft-dropout", type=float, help="dropout while fine-tuning (default: the config's 0.1)")
    ap.add_argument("--residual-scale", type=float, default=1.0,
                    help="scale of the residual-branch output weights at random initialisation")
    ap.add_argument("--init-from", type=Path,
                    help="continue training from this run folder (ner_model.safetensors) or checkpoint folder")
    ap.add_argument("--warm-layers", type=int, default=0,
                    help="first train a model this many layers deep, then grow it to the full depth")
    ap.add_argument("--warm-epochs", type=int, default=10, help="epochs of that shallow stage")
    ap.add_argument("--warm-lr", type=float, help="peak learning rate of that stage (default: --ft-lr)")
    ap.add_argument("--eval-every", type=int, default=0, help="log held-out F1 every N fine-tune epochs")
    ap.add_argument("--eval-only", action="store_true", help="only score --init-from on the held-out sets")
    ap.add_argument("--klue-partial", action="store_true",
                    help="also train on KLUE's 6-tag labels of the training sentences (its O: O or an unmarked tag)")
    ap.add_argument("--pseudo", type=Path, help="pseudo-labelled sentences from `selftrain` (ids, labels)")
    ap.add_argument("--pseudo-per-epoch", type=int, default=0, help="draw this many of them each epoch (0: all)")
    ap.add_argument("--label-smoothing", type=float, default=0.0, help="on full (not partial) targets")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--ckpt-every", type=int, default=250)
    args = ap.parse_args(argv)
    if args.pretrain_seconds:
        args.pretrain_steps = 0
    if args.init_encoder and args.init_embeddings:
        ap.error("--init-encoder's checkpoint holds its own embeddings: drop --init-embeddings")
    if args.init_encoder and not args.init_encoder.is_file():
        ap.error(f"--init-encoder {args.init_encoder}: no such file (give a pretrain.ckpt)")
    if args.pretrain_only and (args.no_pretrain or args.init_encoder or args.eval_only):
        ap.error("--pretrain-only runs pretraining alone: drop --no-pretrain / --init-encoder / --eval-only")
    args.out.mkdir(parents=True, exist_ok=True)
    log = Log(args.out / "train.log")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        torch.use_deterministic_algorithms(True)
    import transformers

    log(f"torch {torch.__version__} transformers {transformers.__version__} device {args.device} "
        f"args {vars(args)}")
    if args.eval_only:
        args.ft_epochs = 0
    if args.init_encoder and not args.eval_only:
        pre = {"steps": 0, "seconds": 0.0, "disc": None}
        disc_state = encoder_state(args.init_encoder)
        log(f"finetune: encoder from {args.init_encoder}")
    elif args.no_pretrain or args.eval_only:
        pre = {"steps": 0, "seconds": 0.0, "disc": None}
        disc_state = None
    else:
        pre = (pretrain_mlm if args.objective == "mlm" else pretrain)(args, log)
        disc_state = pre["disc"].state_dict()
    if args.pretrain_only:
        return
    model = finetune(args, disc_state, log)
    metrics = evaluate_heldout(model, args)
    klue = evaluate_klue(model, args)
    from safetensors.torch import save_file

    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(args.out / "ner_model.safetensors"))
    recipe = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    recipe["pretrain_steps"] = pre["steps"]
    metrics = {"heldout": metrics, "klue_heldout": klue, "recipe": recipe, "pretrain_seconds": round(pre["seconds"], 1),
               "torch": torch.__version__, "transformers": transformers.__version__}
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1, ensure_ascii=False), "utf-8")
    log(f"held-out entity micro {summary(metrics['heldout'])}, token acc {metrics['heldout']['token_accuracy']:.4f}; "
        f"KLUE held-out 6-tag {summary(klue)}")


if __name__ == "__main__":
    main()
