"""The house model's special tokens: Qwen2.5-Coder's repo-level, fill-in-the-middle and chat tokens, in the
order they get ids 0..8 (the BPE trainer puts special tokens first)."""

ENDOFTEXT = "<|endoftext|>"
REPO_NAME = "<|repo_name|>"
FILE_SEP = "<|file_sep|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_PAD = "<|fim_pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

ALL = [ENDOFTEXT, IM_START, IM_END, REPO_NAME, FILE_SEP, FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, FIM_PAD]
