#!/usr/bin/env python3
"""Write tiny random Llama / Mistral / Qwen2 checkpoints in the Hugging Face layout, with CSKV factor files
and the outputs of the float64 numpy reference (reference.py), under test/fixtures/models/<name>/.

    python3 test/tools/make_fixtures.py                 # numpy only; deterministic
    python3 test/tools/make_fixtures.py --skip-transformers
    python3 test/tools/make_fixtures.py --cross-check OUT_DIR   # changes nothing: see below

When torch and transformers import, every written directory is also loaded with
transformers.AutoModelForCausalLM.from_pretrained(dir, torch_dtype=float32, output_loading_info=True)
and its prompt logits and greedy tokens are compared with the reference (max|a-b|/max|b| < 1e-4, tokens
equal); the result goes into expected.json under "transformers" and any disagreement exits non-zero.

--cross-check OUT_DIR runs only that comparison, on the committed fixtures (their config.json, weights and
expected.json), writes OUT_DIR/fixtures-crosscheck.json after every fixture and rewrites nothing; the exit status
says agree (0), disagree (1), skipped because torch/transformers do not import (3) or a fixture unreadable (2).
A disagreement is for a person to read: regenerate the fixtures with the plain command once it is understood.
The GPU session runs it (test/gpu/device_check.sh, stage fixtures-vs-hf), where transformers is installed.

Also writes test/fixtures/quantizer.json (hand-checkable quantiser vectors) and test/fixtures/models/README.md,
then runs the reference's self-checks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from typing import Dict, List, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

FIXTURES_DIR = os.path.join(ROOT, "test", "fixtures")
MODELS_DIR = os.path.join(FIXTURES_DIR, "models")
BASE_SEED = 20240917
EOS, BOS = 2, 1
MARGIN_REL = 0.01      # wanted: every greedy step's top1-top2 margin >= MARGIN_REL * max|logit|
MARGIN_WARN = 1e-3     # below this (relative) a warning is printed
EMBED_STD_TIED = 0.1   # tied models: N(0, 1) embeddings would make the tied lm_head echo the last input token
SIG_DIGITS = 7         # JSON floats: 7 significant digits (relative error <= 5e-7 of the value)
TORCH_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}

# CSKV fixture settings (docs/cskv.md)
CSKV_WINDOW = 4
CSKV_CALIB_LEN = 32
# Per fixture with factors: ranks per layer (whole layer, and per group of kv heads), calibration sequences,
# and which factor files to write (name -> bits, grouped).
CSKV_ALL_FILES = {"cskv.safetensors": (16, False), "cskv-grouped.safetensors": (16, True),
                  "cskv-8bit.safetensors": (8, False), "cskv-4bit.safetensors": (4, False),
                  "cskv-2bit.safetensors": (2, False)}
QWEN2_CSKV = dict(ranks_k=[8, 12, 6], ranks_v=[10, 8, 12], groups=2, group_ranks_k=[4, 6, 3],
                  group_ranks_v=[5, 4, 6], calib_seqs=4, files=CSKV_ALL_FILES)
MHA_CSKV = dict(ranks_k=[40, 36], ranks_v=[44, 32], groups=4, group_ranks_k=[10, 9], group_ranks_v=[11, 8],
                calib_seqs=8, files={k: CSKV_ALL_FILES[k] for k in
                                     ("cskv.safetensors", "cskv-grouped.safetensors", "cskv-8bit.safetensors")})


# ============================================================================================ configs

def _common(layers: int, kv_heads: int, dtype: str, v5: bool, max_pos: int = 256, eps: float = 1e-6,
            vocab: int = 256, hidden: int = 64, intermediate: int = 128) -> dict:
    c = {
        "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": intermediate,
        "num_hidden_layers": layers, "num_attention_heads": 4, "num_key_value_heads": kv_heads,
        "hidden_act": "silu", "max_position_embeddings": max_pos, "rms_norm_eps": eps,
        "initializer_range": 0.02, "use_cache": True, "bos_token_id": BOS, "eos_token_id": EOS,
        "attention_dropout": 0.0,
    }
    if v5:
        c["dtype"] = TORCH_DTYPE[dtype]
        c["transformers_version"] = "5.0.0"
    else:
        c["torch_dtype"] = TORCH_DTYPE[dtype]
        c["transformers_version"] = "4.46.0"
    return c


def llama_config(dtype, layers=2, kv_heads=2, v5=False, attention_bias=False, tie=False, **kw) -> dict:
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    c.update(_common(layers, kv_heads, dtype, v5, kw.pop("max_pos", 256), kw.pop("eps", 1e-6)))
    c.update({"attention_bias": attention_bias, "mlp_bias": False, "pretraining_tp": 1,
              "tie_word_embeddings": tie})
    c.update(kw)
    return c


def mistral_config(dtype, layers=2, kv_heads=1, v5=False, tie=False, size=None, **kw) -> dict:
    c = {"architectures": ["MistralForCausalLM"], "model_type": "mistral"}
    c.update(_common(layers, kv_heads, dtype, v5, kw.pop("max_pos", 256), kw.pop("eps", 1e-6), **(size or {})))
    c.update({"tie_word_embeddings": tie})
    c.update(kw)
    return c


def qwen2_config(dtype, layers=2, kv_heads=2, v5=False, tie=True, **kw) -> dict:
    c = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}
    c.update(_common(layers, kv_heads, dtype, v5, kw.pop("max_pos", 256), kw.pop("eps", 1e-6)))
    c.update({"tie_word_embeddings": tie, "use_sliding_window": False, "sliding_window": None,
              "max_window_layers": layers})
    c.update(kw)
    return c


def fixture_specs() -> List[dict]:
    return [
        dict(name="llama-v4", dtype="F32", prompt_len=11, new_tokens=10,
             note="Llama, transformers 4.x spelling (rope_theta, rope_scaling null), f32, untied, no biases, GQA 4q/2kv",
             config=llama_config("F32", eps=1e-5, rope_theta=10000.0, rope_scaling=None)),
        dict(name="llama-v5-llama3", dtype="BF16", prompt_len=10, new_tokens=8,
             note="Llama, transformers 5.x spelling rope_parameters llama3 (factor 8, low 1, high 4, original 64), bf16",
             config=llama_config("BF16", v5=True, rope_parameters={
                 "rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                 "high_freq_factor": 4.0, "original_max_position_embeddings": 64})),
        dict(name="llama-yarn-sharded", dtype="F16", prompt_len=10, new_tokens=8, shards=2,
             note="Llama, 4.x spelling yarn {type: yarn, factor 4, original_max_position_embeddings 64}, "
                  "max_position_embeddings 256 (= 4 x 64), f16, 2 shards + index",
             config=llama_config("F16", rope_theta=10000.0, rope_scaling={
                 "type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64})),
        dict(name="llama-bias", dtype="F16", prompt_len=9, new_tokens=8,
             note="Llama attention_bias true (q/k/v/o biases), mlp_bias false, rope_theta 500000, f16",
             config=llama_config("F16", attention_bias=True, rope_theta=500000.0, rope_scaling=None)),
        dict(name="mistral-linear", dtype="BF16", prompt_len=12, new_tokens=8,
             note="Mistral, explicit head_dim 32 (4 x 32 = 128 != hidden 64), 1 kv head, sliding_window 8, "
                  "linear rope {rope_type: linear, factor 2}, bf16",
             config=mistral_config("BF16", kv_heads=1, head_dim=32, sliding_window=8, rope_theta=10000.0,
                                   rope_scaling={"rope_type": "linear", "factor": 2.0})),
        dict(name="qwen2-dynamic", dtype="BF16", prompt_len=20, new_tokens=6,
             note="Qwen2 (q/k/v bias), tied, dynamic NTK rope {type: dynamic, factor 2} with "
                  "max_position_embeddings 16 and a 20-token prompt, bf16",
             config=qwen2_config("BF16", max_pos=16, rope_theta=10000.0,
                                 rope_scaling={"type": "dynamic", "factor": 2.0})),
        dict(name="qwen2-v5", dtype="F16", prompt_len=10, new_tokens=8,
             note="Qwen2, transformers 5.x spelling rope_parameters {rope_type: default, rope_theta 1e6}, f16, tied",
             config=qwen2_config("F16", v5=True, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
        dict(name="qwen2-cskv", dtype="BF16", prompt_len=13, new_tokens=10, cskv=QWEN2_CSKV,
             note="Qwen2, 3 layers, 2 kv heads x 16 (D = 32), tied, bf16, rope_theta 10000; CSKV factors (f32) by "
                  "PCA, window 4, bits 16/8/4/2, whole-layer and 2 groups",
             config=qwen2_config("BF16", layers=3, rope_theta=10000.0, rope_scaling=None)),
        dict(name="mistral-mha", dtype="BF16", prompt_len=96, new_tokens=8, cskv=MHA_CSKV,
             note="Mistral, multi-head attention (4 heads = 4 kv heads x 32), hidden 128, intermediate 288, vocab 320, "
                  "sliding_window null, rms eps 1e-6, rope_theta 10000, bf16, 96-token prompt (the held-out shape of "
                  "issue 12); CSKV factors whole-layer (16 and 8 bits) and one group per head",
             config=mistral_config("BF16", kv_heads=4, size=dict(vocab=320, hidden=128, intermediate=288),
                                   sliding_window=None, rope_theta=10000.0)),
    ]


# ============================================================================================ helpers

def make_weights(cfg: ref.ModelConfig, rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """Random weights in canonical order, float32: N(0, 1/fan_in) linears, N(0, 1) embeddings
    (N(0, EMBED_STD_TIED^2) when tied), 1 + 0.1 N norms, 0.1 N biases."""
    out = {}
    for name, shape in cfg.weight_shapes().items():
        z = rng.standard_normal(shape)
        if name.endswith("norm.weight"):
            a = 1.0 + 0.1 * z
        elif name.endswith(".bias"):
            a = 0.1 * z
        elif name == "model.embed_tokens.weight":
            a = z * (EMBED_STD_TIED if cfg.tie else 1.0)
        else:
            a = z / math.sqrt(shape[1])
        out[name] = a.astype(np.float32)
    return out


def rounded(a, what: str = "") -> list:
    """Nested lists of floats with SIG_DIGITS significant digits; checks the relative error."""
    arr = np.asarray(a, dtype=np.float64)
    flat = np.array([float(f"{x:.{SIG_DIGITS}g}") for x in arr.ravel()])
    scale = float(np.max(np.abs(arr))) if arr.size else 0.0
    if scale > 0:
        err = float(np.max(np.abs(flat - arr.ravel()))) / scale
        assert err < 1e-6, (what, err)
    return flat.reshape(arr.shape).tolist()


def dumps(obj, indent: int = 0) -> str:
    """JSON with one line per row of a 2-D array and per key, compact elsewhere."""
    pad = " " * (indent + 2)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(obj, list) and obj and all(isinstance(r, list) for r in obj):
        rows = [pad + json.dumps(r, separators=(",", ":")) for r in obj]
        return "[\n" + ",\n".join(rows) + "\n" + " " * indent + "]"
    return json.dumps(obj, separators=(",", ":"))


def same_up_to_float_noise(a, b) -> bool:
    """Equal structure and values, floats within 1e-12 relative (the last bits of unrounded float64 results
    such as min_margin differ between numpy/BLAS builds)."""
    if isinstance(a, (bool, str)) or a is None:
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return isinstance(a, int) == isinstance(b, int) and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_up_to_float_noise(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same_up_to_float_noise(a[k], b[k]) for k in a)
    return False


def write_json(path: str, obj) -> None:
    """Writes obj unless the file already holds the same content up to float noise, so that regenerating on
    another machine leaves the committed fixtures byte for byte as they are."""
    if os.path.exists(path):
        try:
            with open(path) as f:
                old = json.load(f)
        except ValueError:
            old = None
        if old is not None and same_up_to_float_noise(json.loads(dumps(obj)), old):
            return
    with open(path, "w") as f:
        f.write(dumps(obj) + "\n")


def write_model(directory: str, spec: dict, weights: Dict[str, np.ndarray]) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(spec["config"], f, indent=2)
        f.write("\n")
    meta = {"format": "pt"}  # transformers refuses safetensors whose metadata format is not pt/tf/flax/mlx
    if spec.get("shards", 1) > 1:
        st.write_sharded(directory, weights, spec["dtype"], spec["shards"], meta)
    else:
        st.write_file(os.path.join(directory, "model.safetensors"), weights, spec["dtype"], meta)


def run_variant(model: ref.Model, prompt: List[int], n_new: int, cskv: Optional[ref.CSKV] = None) -> dict:
    logits, tokens, steps = model.prefill_and_greedy(prompt, n_new, cskv)
    m = ref.margins(steps)
    return {"logits": logits, "tokens": tokens, "steps": steps, "min_margin": float(m.min()),
            "scale": float(max(np.abs(logits).max(), np.abs(steps).max()))}


def choose_prompt(spec: dict, model: ref.Model, rng: np.random.Generator, variants: Dict[str, Optional[ref.CSKV]]):
    """Draw prompts until every variant's greedy run has a clear top1-top2 margin and never emits EOS, and the
    full-cache greedy run is not degenerate (at least half of its tokens distinct)."""
    best = None
    for attempt in range(400):
        prompt = [int(t) for t in rng.integers(3, model.cfg.vocab, size=spec["prompt_len"])]
        runs = {k: run_variant(model, prompt, spec["new_tokens"], cs) for k, cs in variants.items()}
        worst = min(r["min_margin"] / r["scale"] for r in runs.values())
        varied = 2 * len(set(runs["full"]["tokens"])) >= spec["new_tokens"]
        eos = any(EOS in r["tokens"] for r in runs.values())
        score = (varied, min(worst, MARGIN_REL))
        if not eos and (best is None or score > best[0]):
            best = (score, prompt, runs, attempt)
        if not eos and varied and worst >= MARGIN_REL:
            break
    if best is None:
        raise RuntimeError(f"{spec['name']}: every prompt generated EOS")
    _, prompt, runs, attempt = best
    worst = min(r["min_margin"] / r["scale"] for r in runs.values())
    if worst < MARGIN_WARN:
        print(f"WARNING {spec['name']}: min margin only {worst:.2e} of the logit scale", file=sys.stderr)
    return prompt, runs, attempt


# ============================================================================================== CSKV

def cskv_factor_files(model: ref.Model, rng: np.random.Generator, directory: str, settings: dict) -> Dict[str, dict]:
    """PCA calibration over random sequences; writes the factor files settings["files"] names."""
    seqs = [[int(t) for t in rng.integers(3, model.cfg.vocab, size=CSKV_CALIB_LEN)]
            for _ in range(settings["calib_seqs"])]
    kv = model.collect_kv(seqs)
    groups = settings["groups"]
    whole, grouped = {}, {}
    for i, (K, V) in enumerate(kv):
        for kind, X in (("k", K), ("v", V)):
            r, rg = settings[f"ranks_{kind}"][i], settings[f"group_ranks_{kind}"][i]
            b, m = ref.pca_factors(X, r)
            whole[f"layers.{i}.{kind}.basis"] = b.astype(np.float32)
            whole[f"layers.{i}.{kind}.mean"] = m.astype(np.float32)
            bg, mg = ref.pca_factors(X, rg, groups=groups)
            grouped[f"layers.{i}.{kind}.basis"] = bg.astype(np.float32)
            grouped[f"layers.{i}.{kind}.mean"] = mg.astype(np.float32)
    ntok = str(settings["calib_seqs"] * CSKV_CALIB_LEN)

    def meta(bits: int, groups: int = 1) -> Dict[str, str]:
        m = {"format": "cskv", "version": "1", "window": str(CSKV_WINDOW), "bits": str(bits), "density": "0.3",
             "source": "make_fixtures.py: PCA of pre-RoPE k/v (bias included) over random tokens",
             "calibration_tokens": ntok}
        if groups > 1:
            m["groups"] = str(groups)
        return m

    out = {}
    for fname, (bits, is_grouped) in settings["files"].items():
        tensors, g = (grouped, groups) if is_grouped else (whole, 1)
        path = os.path.join(directory, fname)
        st.write_file(path, tensors, "F32", meta(bits, g))
        cs = ref.CSKV.from_file(path, model.cfg.n_layers)  # the stored (f32) factors
        assert cs.bits == bits and cs.window == CSKV_WINDOW
        ranks_k = [cs.rank(i, "k") for i in range(model.cfg.n_layers)]
        ranks_v = [cs.rank(i, "v") for i in range(model.cfg.n_layers)]
        out[fname] = {"cskv": cs, "bits": bits, "groups": g, "ranks": {"k": ranks_k, "v": ranks_v}}
    return out


# ========================================================================================= quantiser

def make_quantizer_json(path: str) -> None:
    rng = np.random.default_rng(BASE_SEED + 999)
    W = CSKV_WINDOW
    key_blocks, value_tokens, f16 = [], [], []
    block = (rng.standard_normal((W, 6)) * np.array([1.0, 0.1, 3.0, 1e-3, 1.0, 20.0])).astype(np.float32)
    block[:, 4] = np.float32(0.3)                # constant channel: scale 0 -> q 0, dequant = fp16(0.3)
    block[:, 3] += np.float32(1.0001)            # fp16(min) > min possible: clip at 0
    row40 = (rng.standard_normal(40) * 2.0).astype(np.float32)   # two value groups: 32 + 8
    row5 = np.array([0.25, -0.25, 0.0, 1.0 / 3.0, 0.7], dtype=np.float32)
    small = (rng.standard_normal((W, 3)) * 0.5).astype(np.float32)
    for bits in (8, 4, 2):
        for b in (block, small):
            q, s, z, d = ref.quantize_keys_block(b.astype(np.float64), bits)
            key_blocks.append({"bits": bits, "input": b.astype(np.float64).tolist(), "q": q.tolist(),
                               "scale": s.tolist(), "zero": z.tolist(), "dequant": d.tolist()})
        for r in (row40, row5):
            q, s, z, d = ref.quantize_values_token(r.astype(np.float64), bits)
            value_tokens.append({"bits": bits, "input": r.astype(np.float64).tolist(), "q": q.tolist(),
                                 "scale": s.tolist(), "zero": z.tolist(), "dequant": d.tolist()})
    vals = np.array([0.1, 1.0 / 3.0, -2.5e-5, 65519.0, 1e-8, 2049.0, 2051.0, -0.0], dtype=np.float64)
    f16.append({"input": vals.tolist(), "output": ref.fp16_round(vals).tolist()})
    doc = {
        "description": (
            "CSKV feature quantiser vectors from test/tools/reference.py. L = 2^bits - 1. Keys: one block of "
            "W consecutive tokens, input [W][r], per channel j: scale[j] = fp16((max-min)/L), zero[j] = fp16(min), "
            "q = clip(floor((c - zero)/scale + 0.5), 0, L) (q = 0 where scale == 0), dequant = q*scale + zero, "
            "arithmetic in float64 on the fp16 values. Values: one token, input [r], channels in consecutive "
            "groups of 32 (last group shorter), one scale/zero per group, same formula. bits 16 stores c as "
            "fp16 (round to nearest even): see fp16_round. Inputs are float32 values written exactly."),
        "window": W, "value_group": ref.VALUE_GROUP,
        "key_blocks": key_blocks, "value_tokens": value_tokens, "fp16_round": f16,
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


# ======================================================================================= transformers

CROSSCHECK_REL_TOL = 1e-4            # max|a-b|/max|b| of prompt logits and greedy step logits
CROSSCHECK_REPORT = "fixtures-crosscheck.json"
EXIT_AGREE, EXIT_DISAGREE, EXIT_ERROR, EXIT_SKIPPED = 0, 1, 2, 3   # 3: test/gpu/stage.sh's "not on this machine"


class CrossCheckSkipped(Exception):
    """The cross-check cannot run on this machine (torch/transformers not importable)."""


def greedy_skip_reason(cfg: dict, prompt_len: int, new_tokens: int) -> Optional[str]:
    """Why a fixture's greedy steps cannot be compared with transformers, or None."""
    rope = ref.ModelConfig(cfg).rope
    if rope.rope_type == "dynamic" and prompt_len + new_tokens > rope.max_pos:
        return ("dynamic rope past max_position_embeddings: transformers caches post-RoPE keys, the reference "
                "cache re-rotates them")
    return None


class TransformersRunner:
    """Prompt logits and greedy steps of one fixture directory from transformers.AutoModelForCausalLM
    (float32, eager attention, CPU)."""

    def __init__(self):
        try:
            import torch
            import transformers
        except Exception as e:  # noqa: BLE001
            what = getattr(e, "name", None) or "torch/transformers"
            raise CrossCheckSkipped(f"{what} not importable ({type(e).__name__}: {e})") from e
        self.torch, self.transformers = torch, transformers
        self.major = int(transformers.__version__.split(".")[0])
        self.info = {"runner": "transformers", "transformers_version": transformers.__version__,
                     "torch_version": torch.__version__, "device": "cpu", "attn_implementation": "eager"}

    def run(self, directory: str, cfg: dict, prompt: List[int], new_tokens: int, greedy: bool) -> dict:
        torch = self.torch
        from transformers import AutoConfig, AutoModelForCausalLM
        notes: Dict[str, object] = {}
        kwargs = {"output_loading_info": True, "attn_implementation": "eager"}
        kwargs["dtype" if self.major >= 5 else "torch_dtype"] = torch.float32
        if self.major < 5 and cfg.get("rope_parameters") and not cfg.get("rope_scaling"):
            # transformers 4.x ignores rope_parameters: hand it the same settings in its own spelling
            hf_cfg = AutoConfig.from_pretrained(directory)
            rp = dict(cfg["rope_parameters"])
            hf_cfg.rope_theta = rp.pop("rope_theta", cfg.get("rope_theta", 10000.0))
            rt = rp.get("rope_type", rp.get("type", "default"))
            hf_cfg.rope_scaling = None if rt == "default" else rp
            kwargs["config"] = hf_cfg
            notes["config_translated_to_4x_spelling"] = True
        model, info = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
        problems = {k: sorted(map(str, v)) for k, v in info.items()
                    if v and any(w in k for w in ("missing", "unexpected", "mismatch", "error"))}
        model.eval()
        ids = torch.tensor([prompt], dtype=torch.long)
        mask = torch.ones_like(ids)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[0].double().cpu().numpy()
        out = {"class": type(model).__name__, "loading_problems": problems, "logits": logits, "notes": notes}
        if greedy:
            gen_kwargs = dict(attention_mask=mask, do_sample=False, num_beams=1, max_new_tokens=new_tokens,
                              min_new_tokens=new_tokens, return_dict_in_generate=True, output_scores=True,
                              pad_token_id=cfg.get("eos_token_id", 0))
            try:
                with torch.no_grad():
                    g = model.generate(ids, output_logits=True, **gen_kwargs)
                steps = g.logits if getattr(g, "logits", None) is not None else g.scores
            except (TypeError, ValueError):  # transformers too old for output_logits (< 4.38)
                with torch.no_grad():
                    g = model.generate(ids, **gen_kwargs)
                steps = g.scores
            out["greedy_tokens"] = [int(t) for t in g.sequences[0, len(prompt):].tolist()]
            out["steps"] = torch.stack(list(steps))[:, 0].double().cpu().numpy()
        return out


class ReferenceRunner:
    """The float64 numpy reference in transformers' place, its weights optionally scaled by (1 + perturb * N(0, 1)):
    a stand-in that runs without torch, so that the cross-check's comparison and report are tested anywhere
    (unperturbed it must agree, perturbed it must not)."""

    def __init__(self, perturb: float):
        self.perturb = perturb
        self.info = {"runner": "reference (stand-in for transformers)", "perturb": perturb, "numpy_version": np.__version__}

    def run(self, directory: str, cfg: dict, prompt: List[int], new_tokens: int, greedy: bool) -> dict:
        model = ref.Model.from_dir(directory)
        rng = np.random.default_rng(BASE_SEED + 7)
        for name in sorted(model.w):  # in place: a tied lm_head is the same array as the embeddings
            model.w[name] *= 1.0 + self.perturb * rng.standard_normal(model.w[name].shape)
        logits, tokens, steps = model.prefill_and_greedy(prompt, new_tokens)
        out = {"class": cfg["architectures"][0], "loading_problems": {}, "logits": logits, "notes": {}}
        if greedy:
            out["greedy_tokens"], out["steps"] = tokens, steps
        return out


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def crosscheck_fixture(runner, directory: str, cfg: dict, exp: dict, exact: dict) -> dict:
    """Runs `runner` on one fixture and compares with the reference's outputs `exact` ({"logits", "steps"});
    returns the record ("agrees", and "failures" when it does not)."""
    prompt, new_tokens = exp["prompt_ids"], len(exp["greedy_tokens"])
    skip_greedy = greedy_skip_reason(cfg, len(prompt), new_tokens)
    rec: Dict[str, object] = dict(runner.info)
    failures: List[str] = []
    try:
        out = runner.run(directory, cfg, prompt, new_tokens, greedy=skip_greedy is None)
    except Exception as ex:  # noqa: BLE001  (the model does not load or run: that is the finding)
        rec.update(agrees=False, failures=[f"failed to load or run: {type(ex).__name__}: {ex}"])
        return rec
    rec.update(out["notes"])
    if out["loading_problems"]:
        failures.append(f"loading info {out['loading_problems']}")
    if out["class"] != cfg["architectures"][0]:
        failures.append(f"class {out['class']} != {cfg['architectures'][0]}")
    if out["logits"].shape != np.asarray(exact["logits"]).shape:
        failures.append(f"prompt logits shape {list(out['logits'].shape)} != {list(np.asarray(exact['logits']).shape)}")
    else:
        rel = rel_err(out["logits"], exact["logits"])
        rec["logits_max_rel_err"] = rel
        if not rel < CROSSCHECK_REL_TOL:
            failures.append(f"prompt logits rel err {rel:.2e}")
    rec["last_position_logits"] = rounded(out["logits"][-1], "logits")  # all positions were compared
    if skip_greedy:
        rec["greedy_checked"] = False
        rec["greedy_skip_reason"] = skip_greedy
    else:
        toks = out["greedy_tokens"]
        rec["greedy_checked"] = True
        rec["greedy_tokens"] = toks
        if toks != exp["greedy_tokens"]:
            failures.append(f"greedy {toks} != reference {exp['greedy_tokens']}")
        else:
            srel = rel_err(out["steps"], exact["steps"])
            rec["step_logits_max_rel_err"] = srel
            if not srel < CROSSCHECK_REL_TOL:
                failures.append(f"step logits rel err {srel:.2e}")
    rec["agrees"] = not failures
    if failures:
        rec["failures"] = failures
    return rec


def describe(name: str, rec: dict) -> str:
    greedy = "checked" if rec.get("greedy_checked") else "skipped"
    status = "ok" if rec["agrees"] else "DISAGREES: " + "; ".join(rec["failures"])
    return f"  {name}: logits rel err {rec.get('logits_max_rel_err', float('nan')):.2e}, greedy {greedy}: {status}"


def transformers_crosscheck(entries: List[dict]) -> bool:
    """Load every freshly written fixture with transformers and compare with the reference; the record goes into
    its expected.json under "transformers". Returns False on disagreement."""
    try:
        runner = TransformersRunner()
    except CrossCheckSkipped as e:
        print(f"transformers cross-check SKIPPED: {e}")
        return True
    print(f"transformers cross-check with transformers {runner.info['transformers_version']}, "
          f"torch {runner.info['torch_version']}")
    ok = True
    for e in entries:
        rec = crosscheck_fixture(runner, e["dir"], e["spec"]["config"], e["expected"], e["exact"])
        ok = ok and rec["agrees"]
        e["expected"]["transformers"] = rec
        write_json(os.path.join(e["dir"], "expected.json"), e["expected"])
        print(describe(e["spec"]["name"], rec))
    return ok


def cross_check_committed(out_dir: str, runner_name: str, perturb: float) -> int:
    """The cross-check-only mode: the committed fixtures (their config.json and expected.json) against transformers
    (or the stand-in), a JSON report written to out_dir after every fixture; nothing under test/fixtures changes.
    Returns EXIT_AGREE, EXIT_DISAGREE, EXIT_SKIPPED or EXIT_ERROR (a fixture missing or unreadable)."""
    out_dir = os.path.abspath(out_dir)
    if os.path.commonpath([out_dir, FIXTURES_DIR]) == FIXTURES_DIR:
        print(f"--cross-check {out_dir}: the report may not go under {FIXTURES_DIR} (this mode changes nothing there)",
              file=sys.stderr)
        return EXIT_ERROR
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, CROSSCHECK_REPORT)
    report: Dict[str, object] = {
        "mode": "cross-check of the committed fixtures (nothing rewritten)",
        "fixtures_dir": os.path.relpath(MODELS_DIR, ROOT), "tolerance_rel": CROSSCHECK_REL_TOL,
        "compared": "prompt logits (every position), greedy tokens, greedy step logits; full cache (no CSKV)",
        "verdict": None, "fixtures": {}}

    def save(verdict: str) -> None:
        report["verdict"] = verdict
        write_json(path, report)

    try:
        runner = ReferenceRunner(perturb) if runner_name == "reference" else TransformersRunner()
    except CrossCheckSkipped as e:
        report["skip_reason"] = str(e)
        save("skipped")
        print(f"fixtures cross-check SKIPPED: {e}; report {path}")
        return EXIT_SKIPPED
    report["runner"] = runner.info
    fixtures: Dict[str, dict] = report["fixtures"]  # type: ignore[assignment]
    counts = {"agree": 0, "disagree": 0, "error": 0}
    for spec in fixture_specs():
        name = spec["name"]
        d = os.path.join(MODELS_DIR, name)
        try:
            with open(os.path.join(d, "config.json")) as f:
                cfg = json.load(f)
            with open(os.path.join(d, "expected.json")) as f:
                exp = json.load(f)
            exact = {"logits": np.asarray(exp["logits"], dtype=np.float64),
                     "steps": np.asarray(exp["full_step_logits"], dtype=np.float64)}
        except (OSError, ValueError, KeyError) as ex:
            fixtures[name] = {"error": f"fixture unreadable: {type(ex).__name__}: {ex}"}
            counts["error"] += 1
            print(f"  {name}: ERROR {fixtures[name]['error']}")
            save("running")
            continue
        rec = crosscheck_fixture(runner, d, cfg, exp, exact)
        if cfg != spec["config"]:
            rec["note"] = "config.json differs from make_fixtures.py's spec: the committed fixture is older than the script"
        fixtures[name] = rec
        counts["agree" if rec["agrees"] else "disagree"] += 1
        print(describe(name, rec))
        save("running")
    verdict = "error" if counts["error"] else "disagree" if counts["disagree"] else "agree"
    save(verdict)
    print(f"fixtures cross-check ({runner.info['runner']}): {counts['agree']} agree, {counts['disagree']} disagree, "
          f"{counts['error']} unreadable: {verdict}; report {path}")
    if verdict == "disagree":
        print("  the fixtures were not changed; after reading the report, regenerate them here with "
              "`python3 test/tools/make_fixtures.py` (it cross-checks again where transformers imports)")
    return {"agree": EXIT_AGREE, "disagree": EXIT_DISAGREE, "error": EXIT_ERROR}[verdict]


# ========================================================================================= self-check

def dense_prefill(model: ref.Model, tokens: List[int]) -> np.ndarray:
    """Second, vectorised implementation (HF-style matrices, repeat_kv, additive mask) of a one-chunk prefill."""
    c = model.cfg
    w = model.w
    T = len(tokens)
    inv, af = c.rope.inv_freq(T)
    pos = np.arange(T)
    # RoPE as explicit 2-D rotations of the pairs (i, i + d/2)
    ang = pos[:, None] * inv[None, :]

    def rope(x):  # x [T, heads, d]
        h = c.head_dim // 2
        a, b = x[..., :h], x[..., h:]
        cs, sn = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        return af * np.concatenate([a * cs - b * sn, b * cs + a * sn], axis=-1)

    mask = np.where(pos[None, :] <= pos[:, None], 0.0, -np.inf)
    if c.sliding_window is not None:
        mask = np.where(pos[None, :] > pos[:, None] - c.sliding_window, mask, -np.inf)
    h = w["model.embed_tokens.weight"][tokens]
    for l in range(c.n_layers):
        p = f"model.layers.{l}."

        def lin(x, n, bias):
            return x @ w[p + n + ".weight"].T + (w[p + n + ".bias"] if bias else 0.0)

        x = ref.rmsnorm(h, w[p + "input_layernorm.weight"], c.eps)
        q = rope(lin(x, "self_attn.q_proj", c.qkv_bias).reshape(T, c.n_heads, c.head_dim)).transpose(1, 0, 2)
        k = rope(lin(x, "self_attn.k_proj", c.qkv_bias).reshape(T, c.n_kv, c.head_dim)).transpose(1, 0, 2)
        v = lin(x, "self_attn.v_proj", c.qkv_bias).reshape(T, c.n_kv, c.head_dim).transpose(1, 0, 2)
        k, v = np.repeat(k, c.n_rep, axis=0), np.repeat(v, c.n_rep, axis=0)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(c.head_dim) + mask[None]
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = (s @ v).transpose(1, 0, 2).reshape(T, -1)
        h = h + lin(o, "self_attn.o_proj", c.o_bias)
        x = ref.rmsnorm(h, w[p + "post_attention_layernorm.weight"], c.eps)
        h = h + lin(ref.silu(lin(x, "mlp.gate_proj", c.mlp_bias)) * lin(x, "mlp.up_proj", c.mlp_bias),
                    "mlp.down_proj", c.mlp_bias)
    return ref.rmsnorm(h, w["model.norm.weight"], c.eps) @ model.lm_head.T


def rope_properties(c: ref.ModelConfig) -> bool:
    """Spot checks of each rope type against the plain inverse frequencies."""
    r = c.rope
    d = r.dim
    plain = 1.0 / r.theta ** (np.arange(0, d, 2) / d)
    inv, af = r.inv_freq(r.max_pos + 4)
    p = r.params
    if r.rope_type == "default":
        return np.allclose(inv, plain, rtol=1e-15) and af == 1.0
    if r.rope_type == "linear":
        return np.allclose(inv, plain / p["factor"], rtol=1e-15) and af == 1.0
    if r.rope_type == "dynamic":
        s = r.max_pos + 4
        b = r.theta * (p["factor"] * s / r.max_pos - (p["factor"] - 1)) ** (d / (d - 2))
        inside = r.inv_freq(r.max_pos)[0]
        return (np.allclose(inv, 1.0 / b ** (np.arange(0, d, 2) / d), rtol=1e-14)
                and np.allclose(inside, plain, rtol=1e-15) and bool((inv[1:] < plain[1:]).all()))
    if r.rope_type == "llama3":
        wl = 2 * math.pi / plain
        old = p["original_max_position_embeddings"]
        hi = wl < old / p["high_freq_factor"]
        lo = wl > old / p["low_freq_factor"]
        mid = ~hi & ~lo
        return (np.allclose(inv[hi], plain[hi], rtol=1e-15) and np.allclose(inv[lo], plain[lo] / p["factor"], rtol=1e-15)
                and bool(hi.any() and lo.any() and mid.any())
                and ((inv[mid] < plain[mid]) & (inv[mid] > plain[mid] / p["factor"])).all())
    if r.rope_type == "yarn":
        f = p["factor"]
        extra = np.isclose(inv, plain, rtol=1e-14)
        inter = np.isclose(inv, plain / f, rtol=1e-14)
        return (bool(extra[0] and inter[-1] and (~extra & ~inter).any())
                and abs(af - (0.1 * math.log(f) + 1.0)) < 1e-15)
    return False


def self_check(entries: List[dict]) -> bool:
    ok = True

    def check(cond, msg):
        nonlocal ok
        print(("  ok    " if cond else "  FAIL  ") + msg)
        ok = ok and bool(cond)

    print("self-check:")
    st._selftest()
    check(True, "safetensors_io: bf16 RNE + round trips")
    for e in entries:
        model, exp, exact, name = e["model"], e["expected"], e["exact"], e["spec"]["name"]
        prompt = exp["prompt_ids"]
        dyn = model.cfg.rope.rope_type == "dynamic"
        d = float(np.abs(dense_prefill(model, prompt) - exact["logits"]).max())
        check(d < 1e-10, f"{name}: dense second implementation == reference prefill ({d:.1e})")
        # token-by-token decode with a full cache == one-chunk prefill (not for dynamic rope: there the
        # earlier tokens' hidden states depend on the inv_freq of the forward that processed them)
        if not dyn:
            cache = model.new_cache()
            tbt = np.stack([model.forward([t], cache)[0] for t in prompt])
            d = float(np.abs(tbt - exact["logits"]).max())
            check(d < 1e-10, f"{name}: token-by-token == one-chunk prefill ({d:.1e})")
            cache = model.new_cache()
            two = np.concatenate([model.forward(prompt[:5], cache), model.forward(prompt[5:], cache)])
            d = float(np.abs(two - exact["logits"]).max())
            check(d < 1e-10, f"{name}: two-chunk prefill == one chunk ({d:.1e})")
        st_full = model.teacher_forced(prompt, exp["greedy_tokens"])
        d = float(np.abs(st_full - exact["steps"]).max())
        check(d == 0.0, f"{name}: teacher-forced full steps reproduce greedy run ({d:.1e})")
        ok_tokens = [int(np.argmax(r)) for r in exact["steps"]] == exp["greedy_tokens"]
        check(ok_tokens, f"{name}: greedy tokens = argmax of full_step_logits")
        if "cskv_runs" in e:
            D = model.cfg.kv_dim
            kv = model.collect_kv([prompt])
            tens, L = {}, model.cfg.n_layers
            for i, (K, V) in enumerate(kv):
                for kind, X in (("k", K), ("v", V)):
                    b, m = ref.pca_factors(np.concatenate([X, np.eye(D)]), D)  # full rank
                    tens[f"layers.{i}.{kind}.basis"], tens[f"layers.{i}.{kind}.mean"] = b, m
            meta = {"format": "cskv", "window": str(CSKV_WINDOW), "bits": "16"}
            toks = exp["greedy_tokens"]
            exact_full = ref.CSKV(tens, meta, L, bits=0)
            d = float(np.abs(model.teacher_forced(prompt, toks, exact_full) - exact["steps"]).max())
            check(d < 1e-10, f"{name}: CSKV full rank, unrounded storage == full cache ({d:.1e})")
            f16_full = ref.CSKV(tens, meta, L, bits=16)
            d = float(np.abs(model.teacher_forced(prompt, toks, f16_full) - exact["steps"]).max())
            check(d < 1e-2, f"{name}: CSKV full rank, 16 bits ~= full cache ({d:.1e}, fp16 rounding of c)")
            for fname, run in e["cskv_runs"].items():
                cs = run["cskv"]
                big = ref.CSKV.from_file(os.path.join(e["dir"], fname), L, window=1000)
                d = float(np.abs(model.teacher_forced(prompt, toks, big) - exact["steps"]).max())
                check(d < 1e-12, f"{name}/{fname}: window > length reads nothing compressed ({d:.1e})")
                if len(prompt) % cs.window == 0:  # otherwise the prompt's last partial block is its own chunk
                    d0 = float(np.abs(run["steps"][0] - exact["steps"][0]).max())
                    check(d0 < 1e-12, f"{name}/{fname}: step 0 (one-chunk prefill) == full precision ({d0:.1e})")
                tf = model.teacher_forced(prompt, run["tokens"], cs)
                check(float(np.abs(tf - run["steps"]).max()) == 0.0, f"{name}/{fname}: teacher-forced reproduces")
                full_tf = model.teacher_forced(prompt, run["tokens"])
                dd = float(np.abs(full_tf - run["steps"]).max())
                check(dd > 1e-6, f"{name}/{fname}: compression changes decode logits (max diff {dd:.2e})")
        check(rope_properties(model.cfg), f"{name}: {model.cfg.rope.rope_type} inv_freq properties")
    # quantiser properties
    rng = np.random.default_rng(5)
    good = True
    for bits in (8, 4, 2):
        c = rng.standard_normal((CSKV_WINDOW, 7))
        q, s, z, dq = ref.quantize_keys_block(c, bits)
        good &= bool((q >= 0).all() and (q <= 2 ** bits - 1).all())
        good &= bool((np.abs(dq - c) <= s / 2 + np.abs(z - c.min(0)) + 1e-12).all())
        qv, sv, zv, dv = ref.quantize_values_token(rng.standard_normal(70), bits)
        good &= len(sv) == 3 and dv.shape == (70,)
    check(good, "quantiser: q in [0, L], |dequant - c| <= scale/2 + |fp16(min) - min|")
    return ok


# =============================================================================================== main

def build(spec: dict, index: int) -> dict:
    name = spec["name"]
    directory = os.path.join(MODELS_DIR, name)
    if os.path.isdir(directory):  # everything is rewritten; expected.json is kept to compare against (write_json)
        for entry in os.listdir(directory):
            if entry != "expected.json":
                p = os.path.join(directory, entry)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng([BASE_SEED, index])
    cfg = ref.ModelConfig(spec["config"])
    write_model(directory, spec, make_weights(cfg, rng))
    model = ref.Model.from_dir(directory)  # the reference runs on the stored, rounded values
    variants: Dict[str, Optional[ref.CSKV]] = {"full": None}
    cskv_files = {}
    if spec.get("cskv"):
        cskv_files = cskv_factor_files(model, np.random.default_rng([BASE_SEED, index, 1]), directory, spec["cskv"])
        variants.update({k: v["cskv"] for k, v in cskv_files.items()})
    prompt, runs, attempt = choose_prompt(spec, model, np.random.default_rng([BASE_SEED, index, 2]), variants)
    full = runs["full"]
    exp = {
        "reference": "numpy-float64",
        "name": name,
        "architecture": spec["config"]["architectures"][0],
        "weights_dtype": spec["dtype"],
        "rope_type": cfg.rope.rope_type,
        "rope_spelling": cfg.rope.spelling,
        "note": spec["note"],
        "prompt_ids": prompt,
        "max_new_tokens": spec["new_tokens"],
        "greedy_tokens": full["tokens"],
        "min_margin": full["min_margin"],
        "logit_scale": full["scale"],
        "rope_inv_freq": [float(x) for x in cfg.rope.inv_freq(len(prompt))[0]],
        "rope_attention_factor": float(cfg.rope.inv_freq(len(prompt))[1]),
        "logits": rounded(full["logits"], "logits"),
        "full_step_logits": rounded(full["steps"], "steps"),
    }
    if cskv_files:
        exp["cskv"] = {}
        for fname, info in cskv_files.items():
            r = runs[fname]
            exp["cskv"][fname] = {
                "window": CSKV_WINDOW, "bits": info["bits"], "groups": info["groups"], "ranks": info["ranks"],
                "greedy_tokens": r["tokens"], "min_margin": r["min_margin"],
                "step_logits": rounded(r["steps"], fname)}
    write_json(os.path.join(directory, "expected.json"), exp)
    worst = min(r["min_margin"] / r["scale"] for r in runs.values())
    print(f"{name:20s} prompt attempt {attempt:3d}, greedy {full['tokens']}, min margin "
          f"{full['min_margin']:.3f} (worst variant {worst:.3f} of scale {full['scale']:.2f})")
    for fname in cskv_files:
        r = runs[fname]
        print(f"{'':20s} {fname:26s} greedy {r['tokens']}  max |step - full| "
              f"{np.abs(model.teacher_forced(prompt, r['tokens']) - r['steps']).max():.3e}")
    entry = {"spec": spec, "dir": directory, "expected": exp, "model": model,
             "exact": {"logits": full["logits"], "steps": full["steps"]}}
    if cskv_files:
        entry["cskv_runs"] = {k: {"cskv": v["cskv"], "tokens": runs[k]["tokens"], "steps": runs[k]["steps"]}
                              for k, v in cskv_files.items()}
    return entry


README = """# Model fixtures

Tiny random decoder models in the exact Hugging Face layout, with the outputs of an independent float64
numpy reference of transformers' `LlamaForCausalLM` / `MistralForCausalLM` / `Qwen2ForCausalLM`
(`test/tools/reference.py`) and, for `qwen2-cskv` and `mistral-mha`, CSKV factor files and the bi-branch cache's outputs.

Regenerate (deterministic, numpy only):

    python3 test/tools/make_fixtures.py          # or: npm run fixtures

A fixture's expected.json is rewritten only when its content changes beyond float noise (1e-12 relative: the
last bits of unrounded values such as min_margin differ between numpy/BLAS builds), so regenerating leaves the
committed files byte for byte as they are unless something really changed.

Where `torch` and `transformers` import, the same command also loads every directory with
`AutoModelForCausalLM.from_pretrained(dir, torch_dtype=float32, output_loading_info=True)`, checks there are no
missing/unexpected keys, compares prompt logits (max|a-b|/max|b| < 1e-4) and greedy tokens with the reference,
records the result in `expected.json` under `"transformers"`, and exits non-zero on disagreement. Without torch it
prints that the cross-check was skipped (as it was for the files committed here unless `"transformers"` is present).
`python3 test/tools/make_fixtures.py --cross-check OUT_DIR` runs only that comparison, on the committed files, and
writes `OUT_DIR/fixtures-crosscheck.json` without changing anything here (the GPU session runs it, where
transformers is installed).

How they are made: weights drawn from `numpy.random.default_rng([BASE_SEED, fixture index])` (linears
N(0, 1/fan_in), embeddings N(0, 1) or N(0, {tied_std}^2) when tied to lm_head (with N(0, 1) the tied head just
echoes the last input token), norm weights 1 + 0.1 N, biases 0.1 N), stored in the fixture's dtype
(bf16 rounded to nearest even), and the reference computes from the stored values in float64. Prompts are
drawn until every greedy step's top-1 minus top-2 margin is at least {margin} of the logit scale (for every
CSKV variant too), no EOS (id {eos}) is generated, and at least half of the full-cache greedy tokens are distinct. Floats in JSON carry {sig} significant digits.

## Fixtures

| name | highlights |
|---|---|
{table}

## expected.json

    {{
      "reference": "numpy-float64",
      "name", "architecture", "weights_dtype", "rope_type", "rope_spelling", "note": informational,
      "prompt_ids": [P ints],
      "max_new_tokens": N,
      "greedy_tokens": [N ints],          greedy decode after the prefill, full cache
      "min_margin": float,                smallest top1 - top2 over the N greedy steps
      "logit_scale": float,               max |logit| over prompt logits and steps
      "rope_inv_freq": [head_dim/2], "rope_attention_factor": float   at seq_len = P (debugging aid)
      "logits": [P][V],                   one forward over the whole prompt
      "full_step_logits": [N][V],         step 0 = last prompt position; step i = after feeding greedy token i-1
      "cskv": {{                           fixtures with factors only, one entry per factor file
        "<file>": {{"window": 4, "bits": b, "groups": G, "ranks": {{"k": [..], "v": [..]}},
                   "greedy_tokens": [N], "min_margin": float, "step_logits": [N][V]}}
      }},
      "transformers": {{...}}              only after a run with torch + transformers
    }}

CSKV runs: the prompt is prefilled in the engines' chunks (`Model.chunk_plan`, mirroring src/runtime/engine.ts
nextChunkEnd: the prompt's last partial block [floor(P/W)*W, P) is a chunk of its own; inside a chunk every query
reads the chunk's keys at full precision), then one token per decode step; a query at position n reads keys/values at positions t < floor(n/W)*W from the
compressed branch (c = (x - mean) @ basis stored at `bits`, reconstructed as mean + c @ basis^T). Dynamic NTK rope
in the reference cache: every forward rotates all (pre-RoPE) cached keys and its queries with the inv_freq for
seq_len = total length so far, so `qwen2-dynamic`'s decode steps are checked against transformers only through
the prompt logits. `../quantizer.json` holds hand-checkable quantiser vectors (keys per block of W tokens per
channel, values per token in groups of 32 channels, fp16 scale and zero).
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-transformers", action="store_true", help="do not try the transformers cross-check")
    ap.add_argument("--skip-self-check", action="store_true")
    ap.add_argument("--cross-check", metavar="OUT_DIR",
                    help="cross-check only: run transformers on the committed fixtures, write OUT_DIR/"
                         f"{CROSSCHECK_REPORT}, change nothing; exit {EXIT_AGREE} agree, {EXIT_DISAGREE} disagree, "
                         f"{EXIT_SKIPPED} skipped (torch/transformers not importable), {EXIT_ERROR} a fixture unreadable")
    ap.add_argument("--runner", choices=("transformers", "reference"), default="transformers",
                    help="with --cross-check: 'reference' runs the numpy reference in transformers' place (tests "
                         "this mode without torch)")
    ap.add_argument("--perturb", type=float, default=0.0,
                    help="with --runner reference: scale every weight by (1 + PERTURB * N(0, 1)) (the disagree path)")
    args = ap.parse_args(argv)
    if args.runner != "transformers" or args.perturb:
        if not args.cross_check:
            ap.error("--runner and --perturb go with --cross-check")
        if args.perturb and args.runner != "reference":
            ap.error("--perturb goes with --runner reference")
    if args.cross_check:
        return cross_check_committed(args.cross_check, args.runner, args.perturb)
    os.makedirs(MODELS_DIR, exist_ok=True)
    specs = fixture_specs()
    entries = [build(spec, i) for i, spec in enumerate(specs)]
    make_quantizer_json(os.path.join(FIXTURES_DIR, "quantizer.json"))
    table = "\n".join(f"| `{s['name']}` | {s['note']} |" for s in specs)
    with open(os.path.join(MODELS_DIR, "README.md"), "w") as f:
        f.write(README.format(table=table, margin=MARGIN_REL, eos=EOS, sig=SIG_DIGITS, tied_std=EMBED_STD_TIED))
    ok = True
    if not args.skip_self_check:
        ok = self_check(entries) and ok
    if args.skip_transformers:
        print("transformers cross-check SKIPPED (--skip-transformers)")
    else:
        ok = transformers_crosscheck(entries) and ok
    print("done" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
