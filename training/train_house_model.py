#!/usr/bin/env python3
"""Train the house model on the GPU machine (torch, transformers, tokenizers; no network), within a time budget.

    python3 training/train_house_model.py --corpus training/corpus --out /tmp/house --minutes 8 \
        --report $OUT/train_report.json

Steps, all seeded (--seed): train a byte-level BPE tokenizer with Qwen2.5-Coder's special tokens on a sample of
the training split; lay the training repositories out as repo-level documents (repo_documents.py) with a share of
PSM fill-in-the-middle examples (--fim-rate) and a small share of synthetic recall documents (--recall-share);
encode and pack them into sequences of --seq-len tokens; train a Qwen2ForCausalLM of house_model_shape.py with
AdamW, bf16 autocast, warm-up then cosine decay, until the step count fits the time budget (--minutes counts from
the start of this script, tokenizer and packing included; --steps N fixes the count instead, for an exact rerun:
the count used is in the report); save a standard Hugging Face directory (config.json, model.safetensors,
generation_config.json, tokenizer.json, tokenizer_config.json with chat_template); then score held-out sequences
(loss by position, so the use of long context shows), reload the directory with transformers and check it
against the trained model. The report (--report) records all of it. GPU kernels are not bit-deterministic, so a
rerun matches to rounding, not bit for bit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from typing import Dict, List

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import corpus_reader  # noqa: E402
import house_model_shape  # noqa: E402
import house_tokenizer  # noqa: E402
import model_card  # noqa: E402
import repo_documents  # noqa: E402
import special_tokens as sp  # noqa: E402
import synthetic_recall  # noqa: E402
from token_packing import encode_documents, pack_windows  # noqa: E402

BYTES_PER_TOKEN_GUESS = 3.0   # code under a 16k byte-level BPE; sizes documents to about one sequence
POSITION_BUCKETS = [(0, 1024), (1024, 4096), (4096, 8192), (8192, 1 << 30)]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus"))
    ap.add_argument("--out", required=True, help="model directory to write")
    ap.add_argument("--report", help="JSON report (default OUT/train_report.json)")
    ap.add_argument("--minutes", type=float, default=8.0, help="whole-run budget, from this script's start")
    ap.add_argument("--steps", type=int, help="fixed optimizer steps (else as many as the budget allows)")
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--seq-len", type=int, default=8192)
    ap.add_argument("--batch-tokens", type=int, default=65536, help="tokens per optimizer step")
    ap.add_argument("--micro-batch", type=int, default=8, help="sequences per forward pass")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--fim-rate", type=float, default=0.4, help="share of documents that end in a FIM example")
    ap.add_argument("--recall-share", type=float, default=0.03, help="share of synthetic recall documents")
    ap.add_argument("--vocab", type=int, default=house_model_shape.SHAPE["vocab_size"])
    ap.add_argument("--tokenizer-sample-mb", type=float, default=30.0)
    ap.add_argument("--reserve-s", type=float, default=60.0, help="time kept for saving and checks")
    ap.add_argument("--eval-windows", type=int, default=48)
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (costs a minute up front)")
    return ap.parse_args()


def log(msg: str, t0: float) -> None:
    print(f"[{time.time() - t0:7.1f}s] {msg}", flush=True)


def tokenizer_sample(repos: List[dict], megabytes: float, seed: int):
    """File texts in a seeded order until `megabytes`: the BPE merges come from a cross-section of the corpus."""
    files = [f for r in repos for f in r["files"]]
    random.Random(seed).shuffle(files)
    budget = int(megabytes * 1e6)
    for f in files:
        if budget <= 0:
            return
        budget -= len(f["text"])
        yield f["text"]


def filler_lines(repos: List[dict], seed: int, files: int = 3000) -> List[str]:
    """Real code lines (of a seeded sample of files) for the synthetic recall documents."""
    rng = random.Random(seed)
    everything = [f for r in repos for f in r["files"]]
    chosen = rng.sample(everything, min(files, len(everything)))
    return [l.rstrip() for f in chosen for l in f["text"].split("\n") if 0 < len(l.strip()) < 120 and "KEY_" not in l]


def main() -> int:
    args = parse_args()
    t0 = time.time()
    deadline = t0 + args.minutes * 60
    report_file = args.report or os.path.join(args.out, "train_report.json")
    report: Dict[str, object] = {"args": vars(args)}

    import numpy as np
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    device = torch.device("cuda")
    import tokenizers
    report["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                          "tokenizers": tokenizers.__version__, "gpu": torch.cuda.get_device_name(0)}
    log(f"versions {report['versions']}", t0)

    train_repos = list(corpus_reader.read_repos(os.path.join(args.corpus, "train.jsonl.gz")))
    held_repos = list(corpus_reader.read_repos(os.path.join(args.corpus, "heldout.jsonl.gz")))
    log(f"corpus: {len(train_repos)} train and {len(held_repos)} held-out repositories", t0)

    # ---------------------------------------------------------------------------------------- tokenizer
    tok = house_tokenizer.train(tokenizer_sample(train_repos, args.tokenizer_sample_mb, args.seed), args.vocab)
    shape = dict(house_model_shape.SHAPE, vocab_size=args.vocab)
    house_tokenizer.save(tok, args.out, shape["max_position_embeddings"])
    special_ids = {t: tok.token_to_id(t) for t in sp.ALL}
    log(f"tokenizer: {tok.get_vocab_size()} tokens, specials {special_ids}", t0)

    # ---------------------------------------------------------------------------------------- data
    doc_bytes = int(args.seq_len * BYTES_PER_TOKEN_GUESS)
    docs = list(repo_documents.repo_documents(train_repos, doc_bytes, args.fim_rate, args.seed))
    fim_docs = sum(1 for d in docs if any(p == ("special", sp.FIM_MIDDLE) for p in d))
    rng = random.Random(args.seed + 1)
    recall_count = int(round(args.recall_share * len(docs) / max(1e-9, 1 - args.recall_share)))
    if recall_count:
        lines = filler_lines(train_repos, args.seed)
        docs += [synthetic_recall.recall_document(i, lines, rng, rng.randint(doc_bytes // 8, doc_bytes))
                 for i in range(recall_count)]
    rng.shuffle(docs)
    stream = encode_documents(tok, docs, special_ids)
    windows = pack_windows(stream, args.seq_len)
    held_docs = list(repo_documents.repo_documents(held_repos, doc_bytes, 0.0, args.seed))
    held_windows = pack_windows(encode_documents(tok, held_docs, special_ids), args.seq_len)[: args.eval_windows]
    report["data"] = {"documents": len(docs), "fim_documents": fim_docs, "recall_documents": recall_count,
                      "train_tokens": int(stream.size), "train_windows": int(windows.shape[0]),
                      "heldout_windows": int(held_windows.shape[0]),
                      "train_bytes": sum(len(f["text"].encode()) for r in train_repos for f in r["files"])}
    report["data"]["bytes_per_token"] = report["data"]["train_bytes"] / max(1, stream.size)
    log(f"data: {report['data']}", t0)
    data = torch.from_numpy(windows.astype(np.int64)).to(device)

    # ---------------------------------------------------------------------------------------- model
    major = int(transformers.__version__.split(".")[0])
    config = Qwen2Config(**house_model_shape.config_kwargs(major, special_ids, shape))
    try:
        model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    except (TypeError, ValueError):
        model = AutoModelForCausalLM.from_config(config)
    model.to(device)
    params = sum(p.numel() for p in model.parameters())  # tied: counted once by parameters()
    report["parameters"] = params
    log(f"model: {params / 1e6:.2f}M parameters (shape count {house_model_shape.parameter_count(shape) / 1e6:.2f}M), "
        f"attention {getattr(model.config, '_attn_implementation', '?')}", t0)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    step_model = torch.compile(model) if args.compile else model

    micro = max(1, min(args.micro_batch, args.batch_tokens // args.seq_len))
    accum = max(1, args.batch_tokens // (args.seq_len * micro))
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    order = torch.randperm(data.shape[0], generator=gen)
    cursor = 0
    total_steps = args.steps

    def lr_at(step: int) -> float:
        if step < args.warmup_steps:
            return args.lr * (step + 1) / args.warmup_steps
        horizon = max(total_steps or 0, args.warmup_steps + 1)
        progress = min(1.0, (step - args.warmup_steps) / max(1, horizon - args.warmup_steps))
        return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    model.train()
    step, ema, history = 0, None, []
    timed_from, timed_at = None, 0
    stop_at = deadline - args.reserve_s
    while True:
        if total_steps is not None and step >= total_steps:
            break
        if time.time() >= stop_at:
            log(f"time budget reached at step {step}", t0)
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss_sum = 0.0
        for _ in range(accum):
            if cursor + micro > order.numel():
                order = torch.randperm(data.shape[0], generator=gen)
                cursor = 0
            x = data[order[cursor: cursor + micro].to(device)]
            cursor += micro
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = step_model(input_ids=x, labels=x).loss / accum
            loss.backward()
            loss_sum += float(loss.detach())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        ema = loss_sum if ema is None else 0.98 * ema + 0.02 * loss_sum
        if step == 5:  # timing starts after warm-up steps
            torch.cuda.synchronize()
            timed_from, timed_at = time.time(), step
        if step == 25 and args.steps is None:
            torch.cuda.synchronize()
            per_step = (time.time() - timed_from) / (step - timed_at)
            total_steps = step + int((stop_at - time.time()) / per_step * 0.97)
            log(f"{per_step * 1000:.0f} ms/step, {args.batch_tokens / per_step / 1e3:.0f}k tokens/s: "
                f"planning {total_steps} steps", t0)
        if step % 50 == 0 or step == 1:
            history.append({"step": step, "loss": loss_sum, "ema": ema, "lr": lr_at(step - 1), "grad_norm": grad_norm,
                            "elapsed_s": time.time() - t0})
            log(f"step {step}/{total_steps or '?'} loss {loss_sum:.4f} (ema {ema:.4f}) lr {lr_at(step - 1):.2e} "
                f"grad {grad_norm:.2f}", t0)
    report["training"] = {"steps": step, "planned_steps": total_steps, "tokens_seen": step * accum * micro * args.seq_len,
                          "epochs": step * accum * micro / max(1, data.shape[0]), "final_loss_ema": ema,
                          "history": history, "train_seconds": time.time() - t0}

    # ---------------------------------------------------------------------------------------- save
    model.eval()
    model.to(torch.bfloat16)
    model.generation_config = GenerationConfig(bos_token_id=special_ids[sp.ENDOFTEXT],
                                               eos_token_id=[special_ids[sp.ENDOFTEXT], special_ids[sp.IM_END]],
                                               pad_token_id=special_ids[sp.ENDOFTEXT])
    model.save_pretrained(args.out)
    house_tokenizer.save(tok, args.out, shape["max_position_embeddings"])  # after save_pretrained: ours wins
    log(f"saved {sorted(os.listdir(args.out))}", t0)
    write_report(report_file, report)

    # ---------------------------------------------------------------------------------------- checks
    report["heldout"] = guarded(lambda: heldout_loss(model, torch.from_numpy(held_windows.astype(np.int64)).to(device)))
    log(f"held-out: {report['heldout']}", t0)
    report["reload_check"] = guarded(lambda: reload_check(args.out, model, tok, held_windows, device))
    log(f"reload check: {report['reload_check']}", t0)
    report["samples"] = guarded(lambda: samples(model, tok, held_repos, special_ids, device))
    report["total_seconds"] = time.time() - t0
    write_report(report_file, report)
    guarded(lambda: open(os.path.join(args.out, "README.md"), "w").write(
        model_card.model_card(report, os.path.join(HERE, "corpus_manifest.json"))))
    log(f"done in {report['total_seconds']:.0f}s", t0)
    return 0


def guarded(fn):
    """A check that must not lose the saved model if it fails: its error goes into the report instead."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}


def write_report(path: str, report: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=1, default=str)
        f.write("\n")


def heldout_loss(model, windows) -> dict:
    """Mean next-token loss over held-out sequences, overall and by position: later positions scoring better than
    early ones is the model using its long context."""
    import torch
    sums = {b: [0.0, 0] for b in POSITION_BUCKETS}
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        for i in range(windows.shape[0]):
            x = windows[i: i + 1]
            logits = model(input_ids=x).logits.float()
            nll = torch.nn.functional.cross_entropy(logits[0, :-1], x[0, 1:], reduction="none")
            for lo, hi in POSITION_BUCKETS:
                part = nll[lo:hi]
                sums[(lo, hi)][0] += float(part.sum())
                sums[(lo, hi)][1] += part.numel()
    total = sum(s for s, _ in sums.values()), sum(n for _, n in sums.values())
    out = {"windows": int(windows.shape[0]), "tokens": total[1], "loss": total[0] / max(1, total[1])}
    out["perplexity"] = math.exp(out["loss"])
    out["loss_by_position"] = {f"{lo}-{min(hi, windows.shape[1])}": s / n for (lo, hi), (s, n) in sums.items() if n}
    return out


def reload_check(directory: str, model, tok, held_windows, device) -> dict:
    """The saved directory loads with transformers, gives the trained model's logits, and its tokenizer gives the
    training tokenizer's ids and renders the chat template."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    loaded = AutoModelForCausalLM.from_pretrained(directory).to(device).to(torch.bfloat16).eval()
    x = torch.from_numpy(held_windows[0:1, :512].astype("int64")).to(device)
    with torch.no_grad():
        a, b = model(input_ids=x).logits.float(), loaded(input_ids=x).logits.float()
    hf_tok = AutoTokenizer.from_pretrained(directory)
    text = "def add(a, b):\n    return a + b  # 1234 ünïcode\n<|file_sep|>x.py\n"
    ids_ours = tok.encode(text, add_special_tokens=False).ids
    ids_hf = hf_tok(text, add_special_tokens=False)["input_ids"]
    chat = hf_tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    return {"max_abs_logit_diff": float((a - b).abs().max()), "logit_scale": float(b.abs().max()),
            "tokenizer_ids_equal": ids_ours == ids_hf, "chat_render": chat,
            "decode_roundtrip": hf_tok.decode(ids_hf) == text}


def samples(model, tok, held_repos: List[dict], special_ids: dict, device) -> dict:
    """Greedy continuations of a held-out file and of a FIM prompt: a human look at what was learned."""
    import torch
    f = held_repos[0]["files"][0]
    text = f["text"]
    cut = len(text) // 2
    prefix_ids = [special_ids[sp.REPO_NAME]] + tok.encode(held_repos[0]["repo"] + "\n").ids + \
                 [special_ids[sp.FILE_SEP]] + tok.encode(f["path"] + "\n").ids + tok.encode(text[:cut]).ids[-1500:]
    fim_ids = [special_ids[sp.FIM_PREFIX]] + tok.encode(text[:cut]).ids[-1000:] + [special_ids[sp.FIM_SUFFIX]] + \
              tok.encode(text[cut:]).ids[:500] + [special_ids[sp.FIM_MIDDLE]]
    out = {}
    for name, ids in (("continuation", prefix_ids), ("fim", fim_ids)):
        x = torch.tensor([ids], device=device)
        with torch.no_grad():
            for _ in range(64):
                nxt = model(input_ids=x).logits[0, -1].argmax()
                x = torch.cat([x, nxt.view(1, 1)], dim=1)
                if int(nxt) == special_ids[sp.ENDOFTEXT]:
                    break
        out[name] = tok.decode(x[0, len(ids):].tolist(), skip_special_tokens=False)
    return out


if __name__ == "__main__":
    sys.exit(main())
