"""Float64 numpy reference of Hugging Face transformers' LlamaForCausalLM / MistralForCausalLM /
Qwen2ForCausalLM forward pass, plus the CSKV bi-branch cache of docs/cskv.md.

Independent of torch and transformers: it reads config.json + safetensors through safetensors_io and
computes everything in float64 from the stored (rounded) weight values.

Transformers semantics mirrored here (transformers 4.4x-4.5x and 5.x, `modeling_llama.py`,
`modeling_mistral.py`, `modeling_qwen2.py`, `modeling_rope_utils.py`):
- RMSNorm: x / sqrt(mean(x^2) + eps) * w.
- head_dim = config.head_dim if present (and not null) else hidden_size // num_attention_heads.
- q/k/v/o projections are nn.Linear ([out, in] weights). Qwen2: q/k/v bias, no o bias. Llama: biases on
  q/k/v/o iff attention_bias; gate/up/down biases iff mlp_bias. Mistral: no biases.
- RoPE, "rotate_half" convention: cos/sin = concat(freqs, freqs) * attention_factor with
  freqs = position * inv_freq; out = x*cos + rotate_half(x)*sin, rotate_half(x) = concat(-x2, x1).
- GQA: kv head j serves query heads [j*n_rep, (j+1)*n_rep).
- Causal softmax attention with scale head_dim**-0.5; Mistral sliding_window (not null): key t visible
  from query n iff n - sliding_window < t <= n.
- MLP: down(silu(gate(x)) * up(x)). Residuals around attention and MLP. Final norm, lm_head
  (= embed_tokens when tie_word_embeddings).
- RoPE types default / linear / dynamic / yarn / llama3 from either spelling:
  4.x `rope_theta` + `rope_scaling` ({"type" | "rope_type": ...}) or 5.x `rope_parameters`.

The bi-branch cache (design page "The bi-branch cache"): the cache holds pre-RoPE k, v. With CSKV factors
a query at position n reads key/value t from the compressed branch iff t < floor(n/W)*W and t is not in the
query's own prefill chunk (t < chunk_start); everything else at full precision. Keys are RoPE'd at
attention time (reconstructed ones too). Dynamic NTK RoPE in this cache: every forward rotates ALL keys
(cached keys are pre-RoPE) and its queries with the inv_freq for seq_len = total length so far, this
forward's tokens included (equal to transformers for a single forward over the whole sequence; transformers'
own generate() caches post-RoPE keys, so its later decode steps differ by design).
"""

from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

try:  # imported as a module of test/tools or run from that directory
    from . import safetensors_io as st  # type: ignore
except ImportError:  # pragma: no cover
    import safetensors_io as st  # type: ignore


# ============================================================================================ config

def get_mscale(scale: float, mscale: float = 1.0) -> float:
    if scale <= 1:
        return 1.0
    return 0.1 * mscale * math.log(scale) + 1.0


class Rope:
    """inv_freq and attention_factor of transformers' ROPE_INIT_FUNCTIONS, in float64."""

    def __init__(self, cfg: dict, head_dim: int):
        rs = cfg.get("rope_scaling")
        rp = cfg.get("rope_parameters")
        # transformers 5 (`convert_rope_params_to_dict`): a non-empty legacy rope_scaling wins, else
        # rope_parameters; rope_theta comes from inside the dict, else the top-level key, else 10000.
        if isinstance(rs, dict) and rs:
            params = dict(rs)
            self.spelling = "rope_scaling"
        elif isinstance(rp, dict) and rp:
            params = dict(rp)
            self.spelling = "rope_parameters"
        else:
            params = {}
            self.spelling = "rope_theta"
        if any(isinstance(v, dict) for v in params.values()):
            raise NotImplementedError("per-layer-type rope_parameters are not used by Llama/Mistral/Qwen2")
        self.params = params
        self.rope_type = params.get("rope_type", params.get("type", "default"))
        self.theta = float(params.get("rope_theta", cfg.get("rope_theta", 10000.0)))
        partial = params.get("partial_rotary_factor", cfg.get("partial_rotary_factor", 1.0)) or 1.0
        if float(partial) != 1.0:
            raise NotImplementedError("partial_rotary_factor != 1 is not supported by these architectures")
        self.dim = int(head_dim)
        self.max_pos = int(cfg["max_position_embeddings"])
        if self.rope_type not in ("default", "linear", "dynamic", "yarn", "llama3"):
            raise NotImplementedError(f"rope type {self.rope_type}")
        self._static = None if self.rope_type == "dynamic" else self._compute(None)

    def _base_inv_freq(self, base: float) -> np.ndarray:
        exps = np.arange(0, self.dim, 2, dtype=np.int64).astype(np.float64) / self.dim
        return 1.0 / (base ** exps)

    def _compute(self, seq_len: Optional[int]) -> Tuple[np.ndarray, float]:
        p, dim, base = self.params, self.dim, self.theta
        t = self.rope_type
        if t == "default":
            return self._base_inv_freq(base), 1.0
        if t == "linear":
            return self._base_inv_freq(base) / float(p["factor"]), 1.0
        if t == "dynamic":
            factor = float(p["factor"])
            mp = self.max_pos
            s = mp if seq_len is None else max(int(seq_len), mp)
            b = base * ((factor * s / mp) - (factor - 1)) ** (dim / (dim - 2))
            return self._base_inv_freq(b), 1.0
        if t == "llama3":
            inv = self._base_inv_freq(base)
            factor = float(p["factor"])
            lo = float(p["low_freq_factor"])
            hi = float(p["high_freq_factor"])
            old = float(p["original_max_position_embeddings"])
            low_wl = old / lo
            high_wl = old / hi
            wavelen = 2 * math.pi / inv
            inv_l = np.where(wavelen > low_wl, inv / factor, inv)
            smooth = (old / wavelen - lo) / (hi - lo)
            smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
            medium = ~(wavelen < high_wl) & ~(wavelen > low_wl)
            return np.where(medium, smoothed, inv_l), 1.0
        if t == "yarn":
            orig = p.get("original_max_position_embeddings") or self.max_pos
            factor = p.get("factor")
            if factor is None:
                factor = self.max_pos / orig
            factor = float(factor)
            af = p.get("attention_factor")
            ms, msad = p.get("mscale"), p.get("mscale_all_dim")
            if af is None:
                if ms and msad:
                    af = float(get_mscale(factor, ms) / get_mscale(factor, msad))
                else:
                    af = get_mscale(factor)
            beta_fast = p.get("beta_fast") or 32
            beta_slow = p.get("beta_slow") or 1
            truncate = p.get("truncate", True)

            def corr_dim(rot):
                return (dim * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))

            low, high = corr_dim(beta_fast), corr_dim(beta_slow)
            if truncate:
                low, high = math.floor(low), math.ceil(high)
            low, high = max(low, 0), min(high, dim - 1)
            if low == high:
                high += 0.001
            ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
            pos_freqs = base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
            extra = 1.0 / pos_freqs
            inter = 1.0 / (factor * pos_freqs)
            ef = 1 - ramp
            return inter * (1 - ef) + extra * ef, float(af)
        raise AssertionError

    def inv_freq(self, seq_len: int) -> Tuple[np.ndarray, float]:
        """inv_freq [head_dim/2] and attention_factor for a forward whose total length is seq_len."""
        if self._static is not None:
            return self._static
        return self._compute(seq_len)


def apply_rope(x: np.ndarray, positions: np.ndarray, inv_freq: np.ndarray, attention_factor: float) -> np.ndarray:
    """x [T, heads, d] at positions [T] -> rotated x (rotate_half convention)."""
    freqs = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos = (np.cos(emb) * attention_factor)[:, None, :]
    sin = (np.sin(emb) * attention_factor)[:, None, :]
    h = x.shape[-1] // 2
    rot = np.concatenate([-x[..., h:], x[..., :h]], axis=-1)
    return x * cos + rot * sin


class ModelConfig:
    def __init__(self, cfg: dict):
        self.raw = cfg
        self.model_type = cfg.get("model_type")
        if self.model_type not in ("llama", "mistral", "qwen2"):
            raise NotImplementedError(f"model_type {self.model_type}")
        if cfg.get("hidden_act", "silu") != "silu":
            raise NotImplementedError("hidden_act must be silu")
        self.hidden = int(cfg["hidden_size"])
        self.n_layers = int(cfg["num_hidden_layers"])
        self.n_heads = int(cfg["num_attention_heads"])
        self.n_kv = int(cfg.get("num_key_value_heads") or self.n_heads)
        self.head_dim = int(cfg.get("head_dim") or self.hidden // self.n_heads)
        self.inter = int(cfg["intermediate_size"])
        self.vocab = int(cfg["vocab_size"])
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.tie = bool(cfg.get("tie_word_embeddings", False))
        if self.model_type == "qwen2":
            self.qkv_bias, self.o_bias, self.mlp_bias = True, False, False
            if cfg.get("use_sliding_window"):
                raise NotImplementedError("Qwen2 use_sliding_window")
            self.sliding_window = None
        elif self.model_type == "llama":
            ab = bool(cfg.get("attention_bias", False))
            self.qkv_bias, self.o_bias, self.mlp_bias = ab, ab, bool(cfg.get("mlp_bias", False))
            self.sliding_window = None
        else:
            self.qkv_bias, self.o_bias, self.mlp_bias = False, False, False
            sw = cfg.get("sliding_window")
            self.sliding_window = int(sw) if sw is not None else None
        if self.n_heads % self.n_kv:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        self.n_rep = self.n_heads // self.n_kv
        self.kv_dim = self.n_kv * self.head_dim
        self.rope = Rope(cfg, self.head_dim)

    def weight_shapes(self) -> Dict[str, Tuple[int, ...]]:
        """Every tensor name of the Hugging Face checkpoint with its shape, in a canonical order."""
        H, I, V, d = self.hidden, self.inter, self.vocab, self.head_dim
        s: Dict[str, Tuple[int, ...]] = {"model.embed_tokens.weight": (V, H)}
        for i in range(self.n_layers):
            p = f"model.layers.{i}."
            s[p + "input_layernorm.weight"] = (H,)
            s[p + "self_attn.q_proj.weight"] = (self.n_heads * d, H)
            s[p + "self_attn.k_proj.weight"] = (self.kv_dim, H)
            s[p + "self_attn.v_proj.weight"] = (self.kv_dim, H)
            s[p + "self_attn.o_proj.weight"] = (H, self.n_heads * d)
            if self.qkv_bias:
                s[p + "self_attn.q_proj.bias"] = (self.n_heads * d,)
                s[p + "self_attn.k_proj.bias"] = (self.kv_dim,)
                s[p + "self_attn.v_proj.bias"] = (self.kv_dim,)
            if self.o_bias:
                s[p + "self_attn.o_proj.bias"] = (H,)
            s[p + "post_attention_layernorm.weight"] = (H,)
            s[p + "mlp.gate_proj.weight"] = (I, H)
            s[p + "mlp.up_proj.weight"] = (I, H)
            s[p + "mlp.down_proj.weight"] = (H, I)
            if self.mlp_bias:
                s[p + "mlp.gate_proj.bias"] = (I,)
                s[p + "mlp.up_proj.bias"] = (I,)
                s[p + "mlp.down_proj.bias"] = (H,)
        s["model.norm.weight"] = (H,)
        if not self.tie:
            s["lm_head.weight"] = (V, H)
        return s


# ========================================================================================= quantiser

VALUE_GROUP = 32


def fp16_round(x) -> np.ndarray:
    """Round float64 values to IEEE half (round-to-nearest-even), returned as float64."""
    return np.asarray(x, dtype=np.float64).astype(np.float16).astype(np.float64)


def _minmax_quant(c: np.ndarray, mn: np.ndarray, mx: np.ndarray, bits: int):
    L = (1 << bits) - 1
    scale = fp16_round((mx - mn) / L)
    zero = fp16_round(mn)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.floor((c - zero) / np.where(scale == 0, 1.0, scale) + 0.5)
    q = np.clip(q, 0, L)
    q = np.where(scale == 0, 0, q).astype(np.int64)
    return q, scale, zero


def quantize_keys_block(c_block, bits: int):
    """Keys: one block of W consecutive tokens [W, r]; per channel j asymmetric min/max over the W tokens.

    Returns (q [W, r] int, scale [r], zero [r], dequant [W, r]); scale = fp16((max-min)/L), zero = fp16(min),
    q = clip(floor((c - zero)/scale + 0.5), 0, L) (0 where scale == 0), dequant = q*scale + zero.
    """
    c = np.asarray(c_block, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError("c_block must be [W, r]")
    mn, mx = c.min(axis=0), c.max(axis=0)
    q, scale, zero = _minmax_quant(c, mn[None, :], mx[None, :], bits)
    scale, zero = scale[0], zero[0]
    return q, scale, zero, q * scale[None, :] + zero[None, :]


def quantize_values_token(c_row, bits: int, group: int = VALUE_GROUP):
    """Values: one token's feature [r]; channels in consecutive groups of `group` (last one shorter).

    Returns (q [r] int, scale [n_groups], zero [n_groups], dequant [r]).
    """
    c = np.asarray(c_row, dtype=np.float64)
    if c.ndim != 1:
        raise ValueError("c_row must be [r]")
    n_groups = (len(c) + group - 1) // group
    qs, scales, zeros, deq = [], [], [], []
    for g in range(n_groups):
        seg = c[g * group:(g + 1) * group]
        q, s, z = _minmax_quant(seg, seg.min(), seg.max(), bits)
        qs.append(q)
        scales.append(float(s))
        zeros.append(float(z))
        deq.append(q * s + z)
    return (np.concatenate(qs), np.array(scales), np.array(zeros), np.concatenate(deq))


def store_keys(c: np.ndarray, bits: int, window: int) -> np.ndarray:
    """What the compressed key branch gives back for features c [S, r] (S a multiple of window)."""
    if bits == 0:  # internal: exact (no storage rounding), used by self-checks only
        return np.array(c, dtype=np.float64)
    if bits == 16:
        return fp16_round(c)
    S = c.shape[0]
    if S % window:
        raise ValueError("key quantisation needs whole blocks")
    out = np.empty_like(c, dtype=np.float64)
    for b in range(S // window):
        out[b * window:(b + 1) * window] = quantize_keys_block(c[b * window:(b + 1) * window], bits)[3]
    return out


def store_values(c: np.ndarray, bits: int) -> np.ndarray:
    if bits == 0:
        return np.array(c, dtype=np.float64)
    if bits == 16:
        return fp16_round(c)
    return np.stack([quantize_values_token(row, bits)[3] for row in c]) if len(c) else np.array(c, float)


# ============================================================================================== CSKV

class CSKV:
    """Per-layer channel-shrinking factors (cskv.safetensors) plus the window/bits policy."""

    def __init__(self, tensors: Dict[str, np.ndarray], metadata: Dict[str, str], n_layers: int,
                 bits: Optional[int] = None, window: Optional[int] = None):
        if metadata.get("format") != "cskv":
            raise ValueError("not a cskv file (metadata format != 'cskv')")
        self.metadata = dict(metadata)
        self.window = int(window if window is not None else metadata["window"])
        self.bits = int(bits if bits is not None else metadata["bits"])
        if self.bits not in (0, 2, 4, 8, 16):
            raise ValueError(f"bits {self.bits}")
        self.layers: List[Dict[str, Tuple[np.ndarray, np.ndarray]]] = []
        for i in range(n_layers):
            entry = {}
            for kind in ("k", "v"):
                basis = np.asarray(tensors[f"layers.{i}.{kind}.basis"], dtype=np.float64)
                mean = np.asarray(tensors[f"layers.{i}.{kind}.mean"], dtype=np.float64)
                if basis.ndim not in (2, 3):
                    raise ValueError("basis must be [D, r] or [G, D/G, r_g]")
                entry[kind] = (basis, mean)
            self.layers.append(entry)

    @classmethod
    def from_file(cls, path: str, n_layers: int, bits: Optional[int] = None, window: Optional[int] = None):
        t, meta, _ = st.read_file(path)
        return cls(t, meta, n_layers, bits=bits, window=window)

    def rank(self, layer: int, kind: str) -> int:
        basis = self.layers[layer][kind][0]
        return basis.shape[1] if basis.ndim == 2 else basis.shape[0] * basis.shape[2]

    def compress(self, layer: int, kind: str, x: np.ndarray) -> np.ndarray:
        """c = (x - mean) @ basis, x [S, D] -> c [S, r] (grouped: concatenation over groups)."""
        basis, mean = self.layers[layer][kind]
        xc = np.asarray(x, dtype=np.float64) - mean[None, :]
        if basis.ndim == 2:
            return xc @ basis
        G, Dg, _ = basis.shape
        return np.concatenate([xc[:, g * Dg:(g + 1) * Dg] @ basis[g] for g in range(G)], axis=1)

    def reconstruct(self, layer: int, kind: str, c: np.ndarray) -> np.ndarray:
        """x^ = mean + c @ basis^T (grouped: block-diagonal)."""
        basis, mean = self.layers[layer][kind]
        c = np.asarray(c, dtype=np.float64)
        if basis.ndim == 2:
            return mean[None, :] + c @ basis.T
        G, _, rg = basis.shape
        return mean[None, :] + np.concatenate([c[:, g * rg:(g + 1) * rg] @ basis[g].T for g in range(G)], axis=1)

    def read_back(self, layer: int, K: np.ndarray, V: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Compressed-branch view of full pre-RoPE K, V [S, D] (S a multiple of the window)."""
        ck = store_keys(self.compress(layer, "k", K), self.bits, self.window)
        cv = store_values(self.compress(layer, "v", V), self.bits)
        return self.reconstruct(layer, "k", ck), self.reconstruct(layer, "v", cv)


def pca_factors(samples: np.ndarray, rank: int, groups: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """Closed-form CSKV calibration: mean and top-`rank` eigenvectors of the covariance of `samples` [N, D].

    groups > 1: block-diagonal over `groups` equal channel groups, `rank` per group; basis [G, D/G, rank].
    Eigenvectors are sorted by decreasing eigenvalue; each column's largest-|.| entry is made positive.
    """
    X = np.asarray(samples, dtype=np.float64)
    mean = X.mean(axis=0)
    Xc = X - mean
    D = X.shape[1]
    if D % groups:
        raise ValueError("D must be divisible by groups")
    Dg = D // groups
    bases = []
    for g in range(groups):
        Y = Xc[:, g * Dg:(g + 1) * Dg]
        cov = Y.T @ Y / Y.shape[0]
        w, U = np.linalg.eigh(cov)
        order = np.argsort(-w, kind="stable")[:rank]
        U = U[:, order]
        idx = np.argmax(np.abs(U), axis=0)
        U = U * np.sign(U[idx, np.arange(U.shape[1])])[None, :]
        bases.append(U)
    basis = bases[0] if groups == 1 else np.stack(bases)
    return basis, mean


# ============================================================================================= model

def rmsnorm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


class Cache:
    """Per-layer pre-RoPE k, v at full precision, plus the CSKV read policy when `cskv` is given."""

    def __init__(self, model: "Model", cskv: Optional[CSKV] = None):
        D = model.cfg.kv_dim
        self.k = [np.zeros((0, D)) for _ in range(model.cfg.n_layers)]
        self.v = [np.zeros((0, D)) for _ in range(model.cfg.n_layers)]
        self.length = 0
        self.cskv = cskv


class Model:
    def __init__(self, config: dict, weights: Dict[str, np.ndarray]):
        self.cfg = ModelConfig(config)
        shapes = self.cfg.weight_shapes()
        missing = sorted(set(shapes) - set(weights))
        unexpected = sorted(set(weights) - set(shapes))
        if missing or unexpected:
            raise ValueError(f"missing {missing} unexpected {unexpected}")
        self.w = {}
        for k, shape in shapes.items():
            a = np.asarray(weights[k], dtype=np.float64)
            if a.shape != tuple(shape):
                raise ValueError(f"{k}: shape {a.shape} != {shape}")
            self.w[k] = a
        self.lm_head = self.w["model.embed_tokens.weight"] if self.cfg.tie else self.w["lm_head.weight"]

    @classmethod
    def from_dir(cls, directory: str) -> "Model":
        with open(os.path.join(directory, "config.json")) as f:
            cfg = json.load(f)
        tensors, _ = st.read_model_dir(directory)
        return cls(cfg, tensors)

    def new_cache(self, cskv: Optional[CSKV] = None) -> Cache:
        return Cache(self, cskv)

    def _lin(self, x, name, bias: bool):
        y = x @ self.w[name + ".weight"].T
        if bias:
            y = y + self.w[name + ".bias"]
        return y

    def forward(self, tokens: Sequence[int], cache: Cache, kv_sink: Optional[list] = None) -> np.ndarray:
        """Process one chunk of tokens appended at positions cache.length..; returns logits [T, V]."""
        c = self.cfg
        tokens = [int(t) for t in tokens]
        start = cache.length
        T = len(tokens)
        pos = np.arange(start, start + T)
        total = start + T
        inv_freq, af = c.rope.inv_freq(total)
        h = self.w["model.embed_tokens.weight"][tokens]
        for l in range(c.n_layers):
            p = f"model.layers.{l}."
            x = rmsnorm(h, self.w[p + "input_layernorm.weight"], c.eps)
            q = self._lin(x, p + "self_attn.q_proj", c.qkv_bias)
            k = self._lin(x, p + "self_attn.k_proj", c.qkv_bias)
            v = self._lin(x, p + "self_attn.v_proj", c.qkv_bias)
            if kv_sink is not None:
                kv_sink[l][0].append(k)
                kv_sink[l][1].append(v)
            cache.k[l] = np.concatenate([cache.k[l], k])
            cache.v[l] = np.concatenate([cache.v[l], v])
            attn = self._attend(l, q, pos, cache, inv_freq, af, start)
            h = h + self._lin(attn, p + "self_attn.o_proj", c.o_bias)
            x = rmsnorm(h, self.w[p + "post_attention_layernorm.weight"], c.eps)
            g = self._lin(x, p + "mlp.gate_proj", c.mlp_bias)
            u = self._lin(x, p + "mlp.up_proj", c.mlp_bias)
            h = h + self._lin(silu(g) * u, p + "mlp.down_proj", c.mlp_bias)
        cache.length = total
        h = rmsnorm(h, self.w["model.norm.weight"], c.eps)
        return h @ self.lm_head.T

    def _attend(self, l, q, pos, cache: Cache, inv_freq, af, chunk_start: int) -> np.ndarray:
        c = self.cfg
        d, nkv, nh = c.head_dim, c.n_kv, c.n_heads
        K, V = cache.k[l], cache.v[l]
        T = len(pos)
        qh = q.reshape(T, nh, d)
        Krec = Vrec = None
        cs = cache.cskv
        if cs is not None:
            W = cs.window
            n_comp = min((int(pos[-1]) // W) * W, chunk_start)  # highest count of compressed positions
            if n_comp > 0:
                n_full_blocks = -(-n_comp // W) * W  # whole blocks covering them (all complete)
                Krec, Vrec = cs.read_back(l, K[:n_full_blocks], V[:n_full_blocks])
        out = np.empty((T, nh * d))
        scale = 1.0 / math.sqrt(d)
        for i in range(T):
            n = int(pos[i])
            S = n + 1
            Keff = K[:S].copy()
            Veff = V[:S].copy()
            if Krec is not None:
                sc = min((n // cs.window) * cs.window, chunk_start)
                Keff[:sc] = Krec[:sc]
                Veff[:sc] = Vrec[:sc]
            Kr = apply_rope(Keff.reshape(S, nkv, d), np.arange(S), inv_freq, af)
            qr = apply_rope(qh[i:i + 1], np.array([n]), inv_freq, af)[0]
            visible = np.ones(S, dtype=bool)
            if c.sliding_window is not None:
                visible = np.arange(S) > n - c.sliding_window
            Vh = Veff.reshape(S, nkv, d)
            for hh in range(nh):
                j = hh // c.n_rep
                s = (Kr[:, j, :] @ qr[hh]) * scale
                s = np.where(visible, s, -np.inf)
                s = s - s.max()
                pr = np.exp(s)
                pr /= pr.sum()
                out[i, hh * d:(hh + 1) * d] = pr @ Vh[:, j, :]
        return out

    # ------------------------------------------------------------------------------------ helpers
    @staticmethod
    def chunk_plan(total: int, cskv: Optional[CSKV], chunk_size: int = 512) -> List[int]:
        """Chunk sizes of one prefill call from position 0, as the engines cut them (src/runtime/engine.ts
        nextChunkEnd): boundaries at multiples of the chunk size, and the call's last partial block
        [floor(total/W)*W, total) as a chunk of its own. Without CSKV the window is the chunk size."""
        window = cskv.window if cskv is not None else chunk_size
        size = max(window, (chunk_size // window) * window)
        tail = (total // window) * window
        sizes, start = [], 0
        while start < total:
            end = (start // size + 1) * size if start % window == 0 else -(-start // window) * window
            if start < tail < end:
                end = tail
            end = min(end, total)
            sizes.append(end - start)
            start = end
        return sizes

    def prefill_and_greedy(self, prompt: Sequence[int], n_new: int, cskv: Optional[CSKV] = None,
                           prefill_chunks: Optional[Sequence[int]] = None):
        """Prefill `prompt` (one chunk unless `prefill_chunks` gives chunk sizes), then greedy-decode.

        Returns (prompt_logits [P, V], greedy tokens [n_new], step_logits [n_new, V]) where step 0 is the
        last prompt position's logits and step i the logits after feeding greedy token i-1.
        """
        cache = self.new_cache(cskv)
        chunks = list(prefill_chunks) if prefill_chunks else self.chunk_plan(len(prompt), cskv)
        assert sum(chunks) == len(prompt)
        parts, at = [], 0
        for n in chunks:
            parts.append(self.forward(prompt[at:at + n], cache))
            at += n
        prompt_logits = np.concatenate(parts)
        steps = [prompt_logits[-1]]
        tokens: List[int] = []
        for i in range(n_new):
            t = int(np.argmax(steps[-1]))
            tokens.append(t)
            if i < n_new - 1:
                steps.append(self.forward([t], cache)[0])
        return prompt_logits, tokens, np.stack(steps)

    def teacher_forced(self, prompt: Sequence[int], tokens: Sequence[int], cskv: Optional[CSKV] = None):
        """Step logits for a given continuation (prefill cut by chunk_plan, then one token per step)."""
        cache = self.new_cache(cskv)
        at = 0
        for n in self.chunk_plan(len(prompt), cskv):
            last = self.forward(prompt[at:at + n], cache)[-1]
            at += n
        steps = [last]
        for t in tokens[:-1]:
            steps.append(self.forward([t], cache)[0])
        return np.stack(steps)

    def collect_kv(self, sequences: Sequence[Sequence[int]]) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Pre-RoPE k, v (bias included) per layer over `sequences`, run with a full cache."""
        sink = [([], []) for _ in range(self.cfg.n_layers)]
        for seq in sequences:
            self.forward(seq, self.new_cache(), kv_sink=sink)
        return [(np.concatenate(a), np.concatenate(b)) for a, b in sink]


def margins(step_logits: np.ndarray) -> np.ndarray:
    """top-1 minus top-2 logit per row."""
    s = np.sort(np.asarray(step_logits), axis=-1)
    return s[..., -1] - s[..., -2]
