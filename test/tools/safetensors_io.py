"""Hand-written safetensors reader/writer (numpy only).

File layout (https://github.com/huggingface/safetensors):
    8 bytes   little-endian u64 N = header length in bytes
    N bytes   UTF-8 JSON header, padded with spaces (0x20) to a multiple of 8
    rest      the byte buffer; each tensor's `data_offsets` [begin, end) is relative to its start

Header: {"__metadata__": {str: str}, name: {"dtype": "F32"|"F16"|"BF16", "shape": [...],
"data_offsets": [b, e]}, ...}. Tensors are written contiguously, in the order given, without gaps
(the reference `safetensors` library rejects holes and overlaps).

bf16 is produced from float32 with round-to-nearest-even on the bit pattern; f16 uses numpy's
float32 -> float16 conversion, which is IEEE round-to-nearest-even.

Sharded checkpoints follow transformers' layout: `model-00001-of-0000K.safetensors` ... plus
`model.safetensors.index.json` = {"metadata": {"total_size": bytes of tensor data}, "weight_map": {name: file}}.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np

DTYPE_SIZES = {"F32": 4, "F16": 2, "BF16": 2}


# --------------------------------------------------------------------------------------------- bf16

def float32_to_bf16_bits(x) -> np.ndarray:
    """float32 values -> uint16 bf16 bit patterns, round-to-nearest-even (NaN stays NaN)."""
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    u = a.view(np.uint32).astype(np.uint64)
    rounding_bias = np.uint64(0x7FFF) + ((u >> np.uint64(16)) & np.uint64(1))
    r = ((u + rounding_bias) >> np.uint64(16)).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():  # keep a quiet NaN with the sign of the input
        r = np.where(nan, ((u >> np.uint64(16)).astype(np.uint16) | np.uint16(0x0040)), r)
    return r.reshape(a.shape)


def bf16_bits_to_float32(bits) -> np.ndarray:
    b = np.ascontiguousarray(np.asarray(bits, dtype=np.uint16))
    return (b.astype(np.uint32) << np.uint32(16)).view(np.float32).reshape(b.shape)


def round_to_dtype(x, dtype: str) -> np.ndarray:
    """Value of `x` after storing it as `dtype` (F32/F16/BF16), returned as float32 (exact)."""
    a = np.asarray(x, dtype=np.float32)
    if dtype == "F32":
        return a.copy()
    if dtype == "F16":
        return a.astype(np.float16).astype(np.float32)
    if dtype == "BF16":
        return bf16_bits_to_float32(float32_to_bf16_bits(a))
    raise ValueError(f"unsupported dtype {dtype}")


def _to_bytes(x, dtype: str) -> bytes:
    a = np.asarray(x)
    if dtype == "F32":
        return np.ascontiguousarray(a, dtype="<f4").tobytes()
    if dtype == "F16":
        return np.ascontiguousarray(np.asarray(a, dtype=np.float32).astype("<f2")).tobytes()
    if dtype == "BF16":
        return np.ascontiguousarray(float32_to_bf16_bits(a).astype("<u2")).tobytes()
    raise ValueError(f"unsupported dtype {dtype}")


# ------------------------------------------------------------------------------------------- writer

def encode(tensors: Mapping[str, np.ndarray], dtype="F32", metadata: Optional[Mapping[str, str]] = None) -> bytes:
    """Serialise `tensors` (name -> array) to safetensors bytes.

    `dtype` is one dtype for all tensors or a mapping name -> dtype. Values are converted from float32.
    """
    header: Dict[str, object] = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("__metadata__ must map strings to strings")
        header["__metadata__"] = dict(metadata)
    chunks: List[bytes] = []
    offset = 0
    for name, arr in tensors.items():
        dt = dtype[name] if isinstance(dtype, Mapping) else dtype
        data = _to_bytes(arr, dt)
        shape = [int(s) for s in np.shape(arr)]
        n = 1
        for s in shape:
            n *= s
        assert len(data) == n * DTYPE_SIZES[dt]
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(chunks)


def write_file(path: str, tensors: Mapping[str, np.ndarray], dtype="F32",
               metadata: Optional[Mapping[str, str]] = None) -> int:
    data = encode(tensors, dtype, metadata)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def shard_names(n: int) -> List[str]:
    return [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]


def write_sharded(directory: str, tensors: Mapping[str, np.ndarray], dtype: str, n_shards: int,
                  metadata: Optional[Mapping[str, str]] = None) -> Dict[str, object]:
    """Split `tensors` (in order) into `n_shards` files of roughly equal byte size, write the index.

    Like transformers' `shard_checkpoint`, a shard boundary may fall inside a layer. Returns the index.
    """
    names = list(tensors.keys())
    sizes = [int(np.prod(np.shape(tensors[k]))) * DTYPE_SIZES[dtype] for k in names]
    total = sum(sizes)
    files = shard_names(n_shards)
    groups: List[List[str]] = [[] for _ in range(n_shards)]
    acc = 0
    for name, size in zip(names, sizes):
        idx = min(n_shards - 1, (acc * n_shards) // total)
        groups[idx].append(name)
        acc += size
    if any(not g for g in groups):
        raise ValueError("too few tensors for the number of shards")
    weight_map: Dict[str, str] = {}
    for fname, group in zip(files, groups):
        write_file(os.path.join(directory, fname), {k: tensors[k] for k in group}, dtype, metadata)
        for k in group:
            weight_map[k] = fname
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    return index


# ------------------------------------------------------------------------------------------- reader

def decode(data: bytes) -> Tuple[Dict[str, np.ndarray], Dict[str, str], Dict[str, str]]:
    """Parse safetensors bytes -> (tensors as float32 arrays, metadata, dtype per tensor).

    F16 and BF16 are widened to float32 exactly. Validates offsets (contiguous, in bounds).
    """
    if len(data) < 8:
        raise ValueError("file too short")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError("header length past end of file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    buf = memoryview(data)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    tensors: Dict[str, np.ndarray] = {}
    dtypes: Dict[str, str] = {}
    spans = []
    for name, info in header.items():
        dt = info["dtype"]
        shape = tuple(int(s) for s in info["shape"])
        b, e = (int(v) for v in info["data_offsets"])
        count = int(np.prod(shape)) if shape else 1
        if dt not in DTYPE_SIZES:
            raise ValueError(f"{name}: unsupported dtype {dt}")
        if e - b != count * DTYPE_SIZES[dt] or e > len(buf) or b < 0:
            raise ValueError(f"{name}: bad data_offsets {b}..{e}")
        raw = bytes(buf[b:e])
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        else:
            arr = bf16_bits_to_float32(np.frombuffer(raw, dtype="<u2"))
        tensors[name] = arr.reshape(shape)
        dtypes[name] = dt
        spans.append((b, e))
    spans.sort()
    pos = 0
    for b, e in spans:
        if b != pos:
            raise ValueError("tensor data is not contiguous")
        pos = e
    if pos != len(buf):
        raise ValueError("trailing bytes after tensor data")
    return tensors, metadata, dtypes


def read_file(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str], Dict[str, str]]:
    with open(path, "rb") as f:
        return decode(f.read())


def read_model_dir(directory: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Load all weights of a Hugging Face model directory (single file or sharded with an index)."""
    index_path = os.path.join(directory, "model.safetensors.index.json")
    tensors: Dict[str, np.ndarray] = {}
    dtypes: Dict[str, str] = {}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
        files = sorted(set(index["weight_map"].values()))
        for fname in files:
            t, _, d = read_file(os.path.join(directory, fname))
            for k in t:
                if index["weight_map"].get(k) != fname:
                    raise ValueError(f"{k} found in {fname} but the index says {index['weight_map'].get(k)}")
            tensors.update(t)
            dtypes.update(d)
        missing = set(index["weight_map"]) - set(tensors)
        if missing:
            raise ValueError(f"index names tensors not found in shards: {sorted(missing)}")
        total = sum(int(np.prod(a.shape)) * DTYPE_SIZES[dtypes[k]] for k, a in tensors.items())
        if int(index["metadata"]["total_size"]) != total:
            raise ValueError("index total_size does not match the shards")
    else:
        t, _, d = read_file(os.path.join(directory, "model.safetensors"))
        tensors.update(t)
        dtypes.update(d)
    return tensors, dtypes


def _selftest() -> None:
    # bf16 round-to-nearest-even on exact ties and around them
    pats = np.array([0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0x7F7FFFFF, 0x00000001, 0x80000000],
                    dtype=np.uint32)
    got = float32_to_bf16_bits(pats.view(np.float32))
    want = np.array([0x3F80, 0x3F82, 0x3F81, 0x3F80, 0x7F80, 0x0000, 0x8000], dtype=np.uint16)
    assert (got == want).all(), (got, want)
    rng = np.random.default_rng(0)
    t = {"a": rng.standard_normal((3, 5)).astype(np.float32), "b": rng.standard_normal(7).astype(np.float32)}
    for dt in DTYPE_SIZES:
        data = encode(t, dt, {"format": "pt"})
        (n,) = struct.unpack("<Q", data[:8])
        assert n % 8 == 0
        back, meta, dts = decode(data)
        assert meta == {"format": "pt"} and set(dts.values()) == {dt}
        for k in t:
            assert np.array_equal(back[k], round_to_dtype(t[k], dt))


if __name__ == "__main__":
    _selftest()
    print("safetensors_io self-test ok")
