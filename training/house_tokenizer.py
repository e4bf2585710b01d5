"""The house tokenizer: byte-level BPE in Qwen2's layout (NFC, Qwen2's split regex with single digits, ByteLevel),
trained with the `tokenizers` library, plus the tokenizer_config.json that carries the chat template.
`tokenizer_config()` is plain Python (tested without the library); `train()` needs `tokenizers`."""

from __future__ import annotations

import json
import os
from typing import Iterable

import special_tokens as sp

# Qwen2's pre-tokenizer regex (as in its tokenizer.json): digits one by one, letters runs, punctuation runs.
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
CHAT_TEMPLATE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chat_template.jinja")


def chat_template() -> str:
    with open(CHAT_TEMPLATE_FILE, encoding="utf-8") as f:
        return f.read()


def train(texts: Iterable[str], vocab_size: int, length: int = 0):
    """A trained tokenizers.Tokenizer whose first ids are the special tokens (in special_tokens.ALL order)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    try:
        tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    except TypeError:  # tokenizers < 0.20 takes trim_offsets only
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, show_progress=False, special_tokens=list(sp.ALL),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer, length=length or None)
    for i, t in enumerate(sp.ALL):
        assert tok.token_to_id(t) == i, f"special token {t} got id {tok.token_to_id(t)}, expected {i}"
    return tok


def tokenizer_config(model_max_length: int) -> dict:
    """tokenizer_config.json in Qwen2.5-Coder's form: no BOS, <|endoftext|> ends a document (the base model's
    EOS), the chat template inline (the runtime and transformers read it from here)."""
    decoder = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                        "special": True} for i, t in enumerate(sp.ALL)}
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": [t for t in sp.ALL if t != sp.ENDOFTEXT],
        "bos_token": None,
        "chat_template": chat_template(),
        "clean_up_tokenization_spaces": False,
        "eos_token": sp.ENDOFTEXT,
        "errors": "replace",
        "model_max_length": model_max_length,
        "pad_token": sp.ENDOFTEXT,
        "split_special_tokens": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }


def save(tok, directory: str, model_max_length: int) -> None:
    os.makedirs(directory, exist_ok=True)
    tok.save(os.path.join(directory, "tokenizer.json"))
    with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(model_max_length), f, indent=2, ensure_ascii=False)
        f.write("\n")
