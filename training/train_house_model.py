#!/usr/bin/env python3
"""Train the house model, in plain PyTorch, on the CPU machines (Debian's torch 1.13) or the GPU machine (torch 2.x).

    /usr/bin/python3 training/train_house_model.py --data training/data --out models/house --shape cpu \
        --seq-len 1024 --minutes 120

--data is what build_documents.py and tokenizeDocuments.ts wrote (train.tokens, heldout.tokens, tokens.json,
tokenizer/). Each step takes --batch-tokens tokens as sequences of --seq-len cut at seeded random offsets of the
training stream. AdamW (betas 0.9/0.95, weight decay on matrices), gradient clipping at 1, bf16 autocast, linear
warm-up then cosine decay to --min-lr-ratio over the budget: the schedule follows training time, not a step count
guessed up front, so a machine that slows down under load still ends its run with the learning rate decayed.
A checkpoint (model, optimizer, step, time, generator states) is written every --checkpoint-minutes, at the end and
on SIGTERM (the run then stops after its current step); --resume continues from it. At the end the model directory is written in the Hugging Face layout (config.json,
generation_config.json, model.safetensors, tokenizer.json, tokenizer_config.json with the chat template, README.md,
train_report.json), read back and checked against the trained module, and scored on held-out code by position.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import signal
import sys
import time
from typing import Dict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))

import house_model_shape  # noqa: E402
import model_card  # noqa: E402
import safetensors_io  # noqa: E402

POSITION_BUCKETS = [(0, 256), (256, 1024), (1024, 4096), (4096, 8192), (8192, 1 << 30)]


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(HERE, "data"))
    ap.add_argument("--out", required=True, help="model directory to write")
    ap.add_argument("--checkpoint", help="checkpoint file (default OUT.ckpt)")
    ap.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    ap.add_argument("--shape", default="cpu", choices=sorted(house_model_shape.SHAPES))
    ap.add_argument("--minutes", type=float, default=120.0, help="training time budget (checks and saving come after)")
    ap.add_argument("--steps", type=int, help="stop after this many optimizer steps (the schedule still follows --minutes)")
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--long-seq-len", type=int, default=0,
                    help="sequence length for the last --long-share of the budget (0: none): attention is cheap to "
                         "learn short and the context is stretched at the end, as long-context models are trained")
    ap.add_argument("--long-share", type=float, default=0.25)
    ap.add_argument("--batch-tokens", type=int, default=16384, help="tokens per optimizer step")
    ap.add_argument("--micro-batch", type=int, default=4, help="sequences per forward pass")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup-steps", type=int, default=50)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    ap.add_argument("--save-dtype", default="bf16", choices=["bf16", "f32"])
    ap.add_argument("--autocast", default="bf16", choices=["bf16", "off"])
    ap.add_argument("--checkpoint-minutes", type=float, default=10.0)
    ap.add_argument("--eval-windows", type=int, default=32, help="held-out sequences scored at the end")
    ap.add_argument("--eval-len", type=int, default=0, help="held-out sequence length (0: --seq-len)")
    ap.add_argument("--log-every", type=int, default=10)
    return ap.parse_args(argv)


def log(msg: str, t0: float) -> None:
    print(f"[{time.time() - t0:8.1f}s] {msg}", flush=True)


def lr_at(args, step: int, progress: float) -> float:
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * cosine)


def atomic_torch_save(obj, path: str) -> None:
    import torch
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_tokens(data: str, split: str):
    import numpy as np
    path = os.path.join(data, f"{split}.tokens")
    if not os.path.exists(path):
        raise SystemExit(f"{path}: missing; run training/build_documents.py and out/training/tokenizeDocuments.js first")
    return np.memmap(path, dtype="<u2", mode="r")


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.time()
    import numpy as np
    import torch
    import qwen2_torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    with open(os.path.join(args.data, "tokens.json")) as f:
        token_info = json.load(f)
    special_ids: Dict[str, int] = token_info["special_ids"]
    shape = dict(house_model_shape.SHAPES[args.shape])
    if token_info["vocab_size"] > shape["vocab_size"]:
        raise SystemExit(f"tokenizer has {token_info['vocab_size']} ids, the shape's embedding {shape['vocab_size']}")
    train = load_tokens(args.data, "train")
    held = load_tokens(args.data, "heldout")
    if train.size < 4 * max(args.seq_len, args.long_seq_len):
        raise SystemExit(f"{args.data}/train.tokens has {train.size} tokens: too few for sequences of {max(args.seq_len, args.long_seq_len)}")

    report: Dict[str, object] = {"args": vars(args), "shape": shape, "data": token_info}
    for name in ("documents.json",):
        p = os.path.join(args.data, name)
        if os.path.exists(p):
            with open(p) as f:
                report["documents"] = json.load(f)
    report["machine"] = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
                         "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
                         "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    log(f"machine {report['machine']}", t0)

    model = qwen2_torch.Qwen2ForCausalLM(shape).to(device)
    params = sum(p.numel() for p in model.parameters())
    report["parameters"] = params
    log(f"model {args.shape}: {params / 1e6:.2f}M parameters; train {train.size / 1e6:.1f}M tokens, held-out {held.size / 1e6:.2f}M", t0)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    extra = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, **extra)

    checkpoint = args.checkpoint or args.out.rstrip("/") + ".ckpt"
    gen = np.random.default_rng(args.seed)
    step, trained_s, history = 0, 0.0, []
    if args.resume and os.path.exists(checkpoint):
        state = torch.load(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, trained_s, history = state["step"], state["trained_s"], state["history"]
        gen.bit_generator.state = state["numpy_generator"]
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed from {checkpoint} at step {step}, {trained_s / 60:.1f} min trained", t0)

    budget_s = args.minutes * 60
    autocast = args.autocast == "bf16"
    final_len = args.long_seq_len or args.seq_len
    eval_len = args.eval_len or final_len

    def phase(progress: float):
        """(sequence length, sequences per forward pass, passes per step) at this point of the budget."""
        length = args.long_seq_len if args.long_seq_len and progress >= 1 - args.long_share else args.seq_len
        micro = max(1, min(args.micro_batch * args.seq_len // length, args.batch_tokens // length))
        return length, micro, max(1, args.batch_tokens // (length * micro))

    tokens_per_step = args.batch_tokens

    def batch(length: int, micro: int):
        starts = gen.integers(0, train.size - length, size=micro)
        x = np.stack([train[s: s + length] for s in starts]).astype(np.int64)
        return torch.from_numpy(x).to(device)

    def save_checkpoint():
        atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                           "trained_s": trained_s, "history": history, "numpy_generator": gen.bit_generator.state,
                           "torch_rng": torch.get_rng_state(), "shape": shape, "args": vars(args)}, checkpoint)

    stop_requested = []
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))  # finish the step, checkpoint, exit

    model.train()
    resumed_step = step
    last_checkpoint = time.time()
    ema = history[-1]["ema"] if history else None
    while trained_s < budget_s and (args.steps is None or step < args.steps) and not stop_requested:
        started = time.time()
        lr = lr_at(args, step, trained_s / budget_s)
        for g in opt.param_groups:
            g["lr"] = lr
        length, micro, accum = phase(trained_s / budget_s)
        loss_sum = 0.0
        for _ in range(accum):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = model.loss(batch(length, micro)) / accum
            loss.backward()
            loss_sum += float(loss.detach())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        step += 1
        trained_s += time.time() - started
        ema = loss_sum if ema is None else 0.95 * ema + 0.05 * loss_sum
        if step % args.log_every == 0 or step == 1:
            history.append({"step": step, "seq_len": length, "loss": loss_sum, "ema": ema, "lr": lr, "grad_norm": grad_norm,
                            "trained_s": trained_s, "tokens_per_s": step * tokens_per_step / max(1e-9, trained_s)})
            log(f"step {step} len {length} loss {loss_sum:.4f} (ema {ema:.4f}) lr {lr:.2e} grad {grad_norm:.2f} "
                f"{trained_s / 60:.1f}/{args.minutes:.0f} min, {step * tokens_per_step / max(1e-9, trained_s):.0f} tokens/s", t0)
        if time.time() - last_checkpoint > args.checkpoint_minutes * 60:
            save_checkpoint()
            last_checkpoint = time.time()
    if step > resumed_step:  # --resume --minutes 0 only exports the checkpoint as a model directory
        save_checkpoint()
    if stop_requested:
        log(f"stopped at step {step}; checkpoint {checkpoint}; continue with --resume", t0)
        return 0
    report["training"] = {"steps": step, "tokens_per_step": tokens_per_step, "tokens_seen": step * tokens_per_step,
                          "epochs": step * tokens_per_step / train.size, "final_loss_ema": ema,
                          "train_seconds": trained_s, "tokens_per_second": step * tokens_per_step / max(1e-9, trained_s),
                          "history": history}
    log(f"trained {step} steps, {step * tokens_per_step / 1e6:.1f}M tokens in {trained_s / 60:.1f} min", t0)

    model.eval()
    save_model(model, shape, special_ids, args, report)
    report["heldout"] = heldout_loss(model, held, eval_len, args.eval_windows, device, autocast)
    log(f"held-out: {json.dumps(report['heldout'])}", t0)
    report["reload_check"] = reload_check(args.out, model, held, device)
    log(f"reload check: {report['reload_check']}", t0)
    report["total_seconds"] = time.time() - t0
    write_report(os.path.join(args.out, "train_report.json"), report)
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(model_card.model_card(report, os.path.join(HERE, "corpus_manifest.json")))
    log("done", t0)
    return 0


def save_model(model, shape: dict, special_ids: dict, args, report: dict) -> None:
    """The Hugging Face layout; tensors in --save-dtype (bf16 rounds to nearest even, as torch does)."""
    os.makedirs(args.out, exist_ok=True)
    dtype = {"bf16": "BF16", "f32": "F32"}[args.save_dtype]
    tensors = {k: v.detach().float().cpu().numpy() for k, v in model.hf_state_dict().items()}
    safetensors_io.write_file(os.path.join(args.out, "model.safetensors"), tensors, dtype, {"format": "pt"})
    import qwen2_torch
    config = qwen2_torch.hf_config(shape, special_ids, {"bf16": "bfloat16", "f32": "float32"}[args.save_dtype])
    # The context it was trained at, not what RoPE could address: the runtime sizes the workspace budget from it.
    context = max(args.seq_len, args.long_seq_len)
    config["max_position_embeddings"] = context
    write_json(os.path.join(args.out, "config.json"), config)
    write_json(os.path.join(args.out, "generation_config.json"), {
        "bos_token_id": special_ids["<|endoftext|>"], "pad_token_id": special_ids["<|endoftext|>"],
        "eos_token_id": [special_ids["<|endoftext|>"], special_ids["<|im_end|>"]], "do_sample": False})
    shutil.copyfile(os.path.join(args.data, "tokenizer", "tokenizer.json"), os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(args.data, "tokenizer", "tokenizer_config.json")) as f:
        tokenizer_config = json.load(f)
    tokenizer_config["model_max_length"] = context
    write_json(os.path.join(args.out, "tokenizer_config.json"), tokenizer_config)
    write_report(os.path.join(args.out, "train_report.json"), report)


def write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def write_report(path: str, report: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=1, default=str)
        f.write("\n")


def heldout_loss(model, held, length: int, windows: int, device, autocast: bool) -> dict:
    """Mean next-token loss over consecutive held-out sequences, overall and by position: later positions scoring
    better than early ones is the model using its context."""
    import numpy as np
    import torch
    n = min(windows, held.size // length)
    sums = {b: [0.0, 0] for b in POSITION_BUCKETS}
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        for i in range(n):
            x = torch.from_numpy(np.asarray(held[i * length: (i + 1) * length], dtype=np.int64))[None].to(device)
            nll = model.loss(x, reduction="none").float()
            for lo, hi in POSITION_BUCKETS:
                part = nll[lo:hi]
                sums[(lo, hi)][0] += float(part.sum())
                sums[(lo, hi)][1] += part.numel()
    total_s, total_n = sum(s for s, _ in sums.values()), sum(c for _, c in sums.values())
    loss = total_s / max(1, total_n)
    return {"windows": n, "length": length, "tokens": total_n, "loss": loss, "perplexity": math.exp(loss),
            "loss_by_position": {f"{lo}-{min(hi, length)}": s / c for (lo, hi), (s, c) in sums.items() if c}}


def reload_check(directory: str, model, held, device) -> dict:
    """The saved directory, read back into a fresh module, gives the trained module's logits (to the rounding of
    the saved dtype); where transformers is installed (the GPU machine) it loads the directory too."""
    import numpy as np
    import torch
    import qwen2_torch
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    tensors, _, _ = safetensors_io.read_file(os.path.join(directory, "model.safetensors"))
    shape = {k: config[k] for k in house_model_shape.SHAPE}
    loaded = qwen2_torch.load({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in tensors.items()}, shape).to(device).eval()
    rounded = qwen2_torch.Qwen2ForCausalLM(shape).to(device).eval()
    rounded.load_state_dict({k: v.to(torch.bfloat16).float() if config["torch_dtype"] == "bfloat16" else v
                             for k, v in model.state_dict().items()})
    x = torch.from_numpy(np.asarray(held[:256], dtype=np.int64))[None].to(device)
    with torch.no_grad():
        a, b = rounded(x), loaded(x)
    out = {"max_abs_logit_diff": float((a - b).abs().max()), "logit_scale": float(b.abs().max())}
    try:
        from transformers import AutoModelForCausalLM
        hf = AutoModelForCausalLM.from_pretrained(directory, torch_dtype=torch.float32).to(device).eval()
        with torch.no_grad():
            out["transformers_max_abs_logit_diff"] = float((hf(input_ids=x).logits.float() - b).abs().max())
    except ImportError:
        out["transformers"] = "not installed"
    return out


if __name__ == "__main__":
    sys.exit(main())
