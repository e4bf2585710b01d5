"""The house model's shapes: small Qwen2s (GQA, q/k/v bias, tied embeddings, SwiGLU, RMSNorm) whose KV layout
matches Qwen2.5-Coder-0.5B's (2 kv heads x 64 = 128 channels per layer), with Qwen2.5's RoPE base (1e6).

`gpu` is the shape for the GPU machine (8k-token sequences, ~19M parameters, ~38 MB in bf16); `cpu` is what two
CPU cores train in about two hours (measured: training/README.md). The embedding has the house tokenizer's ids
(16,384 BPE ids + Qwen's 26 added tokens) rounded up to a multiple of 64."""

from __future__ import annotations

VOCAB_ROWS = 16448   # 16,410 tokenizer ids, padded as Qwen pads its embedding
SHAPES = {
    "gpu": {
        "vocab_size": VOCAB_ROWS, "hidden_size": 384, "intermediate_size": 1024, "num_hidden_layers": 8,
        "num_attention_heads": 6, "num_key_value_heads": 2, "max_position_embeddings": 32768,
        "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
    },
    "cpu": {
        "vocab_size": VOCAB_ROWS, "hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 32768,
        "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
    },
    # The training smoke test (npm test): seconds on one core.
    "tiny": {
        "vocab_size": VOCAB_ROWS, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 4096,
        "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
    },
}
SHAPE = SHAPES["gpu"]
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
