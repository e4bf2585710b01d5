"""The house model's shape: a small Qwen2 (GQA, q/k/v bias, tied embeddings, SwiGLU, RMSNorm), sized so its bf16
weights stay under 40 MB and its KV layout matches Qwen2.5-Coder-0.5B's (2 kv heads x 64 = 128 channels per
layer), with a RoPE base (1e6, Qwen2.5's) that serves 8k-32k contexts after training at 8k."""

from __future__ import annotations

SHAPE = {
    "vocab_size": 16384,
    "hidden_size": 384,
    "intermediate_size": 1024,
    "num_hidden_layers": 8,
    "num_attention_heads": 6,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
MAX_WEIGHT_BYTES = 40_000_000


def parameter_count(s: dict = SHAPE) -> int:
    """Parameters of Qwen2ForCausalLM with this shape (tied head counted once)."""
    h, i, v, layers = s["hidden_size"], s["intermediate_size"], s["vocab_size"], s["num_hidden_layers"]
    head_dim = h // s["num_attention_heads"]
    q, kv = s["num_attention_heads"] * head_dim, s["num_key_value_heads"] * head_dim
    attention = (h * q + q) + 2 * (h * kv + kv) + q * h   # q/k/v with bias, o without
    mlp = 3 * h * i
    per_layer = attention + mlp + 2 * h                    # two RMSNorms
    head = 0 if s["tie_word_embeddings"] else v * h
    return v * h + layers * per_layer + h + head


def config_kwargs(transformers_major: int, special_ids: dict, s: dict = SHAPE) -> dict:
    """Qwen2Config keyword arguments: transformers 5 takes RoPE as rope_parameters, 4.x as rope_theta."""
    kw = {k: v for k, v in s.items() if k != "rope_theta"}
    if transformers_major >= 5:
        kw["rope_parameters"] = {"rope_type": "default", "rope_theta": s["rope_theta"]}
    else:
        kw["rope_theta"] = s["rope_theta"]
        kw["rope_scaling"] = None
    kw.update({
        "hidden_act": "silu", "use_sliding_window": False, "max_window_layers": s["num_hidden_layers"],
        "attention_dropout": 0.0, "initializer_range": 0.02, "use_cache": True,
        "bos_token_id": special_ids["<|endoftext|>"], "eos_token_id": special_ids["<|endoftext|>"],
        "pad_token_id": special_ids["<|endoftext|>"],
    })
    return kw
