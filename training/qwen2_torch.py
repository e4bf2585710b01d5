"""A Qwen2 decoder in plain PyTorch with Hugging Face's parameter names, for training the house model on the CPU
machines' torch 1.13 and the GPU machine's torch 2.x alike (no transformers at training time).

The forward pass is transformers' Qwen2ForCausalLM (RMSNorm in float32, rotate-half RoPE with float32 inverse
frequencies, GQA, q/k/v bias, SwiGLU, tied embeddings), so a saved state dict loads there and in the runtime
unchanged. Attention uses scaled_dot_product_attention where torch has it, else a float32 softmax."""

from __future__ import annotations

import math
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Rotary(nn.Module):
    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, positions: torch.Tensor):
        freqs = positions.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()


class Attention(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.heads, self.kv_heads = c["num_attention_heads"], c["num_key_value_heads"]
        self.head_dim = c["hidden_size"] // self.heads
        h = c["hidden_size"]
        self.q_proj = nn.Linear(h, self.heads * self.head_dim, bias=True)
        self.k_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=True)
        self.v_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=True)
        self.o_proj = nn.Linear(self.heads * self.head_dim, h, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        groups = self.heads // self.kv_heads
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = (q @ k.transpose(-1, -2)).float() / math.sqrt(self.head_dim)
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
            y = scores.softmax(-1).to(v.dtype) @ v
        return self.o_proj(y.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen2Model(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(DecoderLayer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.rotary = Rotary(c["hidden_size"] // c["num_attention_heads"], c["rope_theta"])


class Qwen2ForCausalLM(nn.Module):
    """`config` holds house_model_shape.SHAPE's keys. The head is tied to the embedding (no lm_head parameter)."""

    def __init__(self, config: dict):
        super().__init__()
        if not config.get("tie_word_embeddings", True):
            raise ValueError("the house model ties its output head to the embedding")
        self.config = dict(config)
        self.model = Qwen2Model(config)
        self.reset_parameters(config.get("initializer_range", 0.02))

    def reset_parameters(self, std: float) -> None:
        """GPT-2 style: normal(std) weights, zero biases, unit norms, residual outputs scaled by 1/sqrt(2 layers)."""
        residual_std = std / math.sqrt(2 * self.config["num_hidden_layers"])
        for name, p in self.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                nn.init.ones_(p)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)
            elif name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                nn.init.normal_(p, std=residual_std)
            else:
                nn.init.normal_(p, std=std)

    def hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        cos, sin = self.model.rotary(torch.arange(t, device=input_ids.device))
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        return self.model.norm(x)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits [batch, time, vocab] in float32."""
        h = self.hidden(input_ids)
        return F.linear(h, self.model.embed_tokens.weight.to(h.dtype)).float()

    def loss(self, input_ids: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Next-token cross entropy over every position but the last."""
        logits = self.forward(input_ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1), reduction=reduction)

    def hf_state_dict(self) -> Dict[str, torch.Tensor]:
        """The parameters under transformers' names (the tied head is not stored, as save_pretrained does)."""
        return {k: v for k, v in self.state_dict().items() if "rotary" not in k}


def hf_config(shape: dict, special_ids: dict, dtype: str) -> dict:
    """config.json for transformers (4.x spelling: rope_theta; 5.x reads it too) and the runtime."""
    head_dim = shape["hidden_size"] // shape["num_attention_heads"]
    return {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "vocab_size": shape["vocab_size"], "hidden_size": shape["hidden_size"],
        "intermediate_size": shape["intermediate_size"], "num_hidden_layers": shape["num_hidden_layers"],
        "num_attention_heads": shape["num_attention_heads"], "num_key_value_heads": shape["num_key_value_heads"],
        "head_dim": head_dim, "hidden_act": "silu", "max_position_embeddings": shape["max_position_embeddings"],
        "rms_norm_eps": shape["rms_norm_eps"], "rope_theta": shape["rope_theta"], "rope_scaling": None,
        "tie_word_embeddings": True, "use_sliding_window": False, "sliding_window": None,
        "max_window_layers": shape["num_hidden_layers"], "attention_dropout": 0.0, "initializer_range": 0.02,
        "use_cache": True, "torch_dtype": dtype,
        "bos_token_id": special_ids["<|endoftext|>"], "eos_token_id": special_ids["<|endoftext|>"],
        "pad_token_id": special_ids["<|endoftext|>"],
    }


def load(directory_state: Dict[str, torch.Tensor], config: dict) -> Qwen2ForCausalLM:
    model = Qwen2ForCausalLM(config)
    missing, unexpected = model.load_state_dict(directory_state, strict=False)
    missing = [m for m in missing if "rotary" not in m]
    if missing or unexpected:
        raise ValueError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    return model


def greedy(model: Qwen2ForCausalLM, ids: list, steps: int, stop: Optional[int] = None) -> list:
    out = list(ids)
    with torch.no_grad():
        for _ in range(steps):
            nxt = int(model(torch.tensor([out]))[0, -1].argmax())
            out.append(nxt)
            if nxt == stop:
                break
    return out[len(ids):]
