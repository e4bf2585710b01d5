"""Documents of pieces -> one token stream -> fixed-length training sequences.

Text pieces are encoded in one parallel batch (tokenizers' encode_batch) and never parsed for special tokens
as a whole document would be; special pieces become their ids directly. The stream is the documents in order;
sequences are consecutive non-overlapping cuts of it (documents run across sequence boundaries, separated by
<|endoftext|>), so no token is padding."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from repo_documents import Piece


def encode_documents(tok, docs: List[List[Piece]], special_ids: Dict[str, int]) -> np.ndarray:
    """The documents' ids, concatenated, as uint16 (vocabularies up to 65536) or int32."""
    texts = [text for doc in docs for kind, text in doc if kind == "text"]
    batch = getattr(tok, "encode_batch_fast", None) or tok.encode_batch
    encoded = iter(batch(texts, add_special_tokens=False))
    dtype = np.uint16 if tok.get_vocab_size() <= 65536 else np.int32
    parts: List[np.ndarray] = []
    for doc in docs:
        for kind, text in doc:
            if kind == "special":
                parts.append(np.array([special_ids[text]], dtype=dtype))
            else:
                parts.append(np.asarray(next(encoded).ids, dtype=dtype))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def pack_windows(stream: np.ndarray, seq_len: int) -> np.ndarray:
    """[n, seq_len] consecutive cuts of the stream; the tail shorter than seq_len is dropped."""
    n = stream.size // seq_len
    return stream[: n * seq_len].reshape(n, seq_len)
