"""Tokenizers: bytes by default (no download), or a HF ``tokenizer.json`` by path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import ConfigError

BYTE_VOCAB = 257  # 256 byte values + end-of-document
BYTE_EOS = 256


class Tokenizer:
    """Turns documents into one id array, documents separated by ``eos_id``."""

    def __init__(self, spec: str = "bytes"):
        self.spec = spec
        if spec == "bytes":
            self._hf = None
            self.vocab_size, self.eos_id = BYTE_VOCAB, BYTE_EOS
            self.identity = "bytes-v1"
            return
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"tokenizer must be 'bytes' or the path of a tokenizer.json file. {spec} does not exist. Fix data.tokenizer.")
        from tokenizers import Tokenizer as HFTokenizer

        try:
            self._hf = HFTokenizer.from_file(str(path))
        except Exception as exc:
            raise ConfigError(f"Could not load tokenizer {path} ({' '.join(str(exc).split())[:200]}). Pass a valid HF tokenizers tokenizer.json.") from None
        base = self._hf.get_vocab_size(with_added_tokens=True)
        self.vocab_size, self.eos_id = base + 1, base  # a dedicated end-of-document id
        self.identity = "hf-" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    @property
    def dtype(self):
        return np.uint16 if self.vocab_size <= 65535 else np.uint32

    def encode_documents(self, docs: list[str]) -> np.ndarray:
        """All documents concatenated, each followed by ``eos_id``."""
        if self._hf is None:
            if not docs:  # e.g. an evaluation-only target set's training part
                return np.zeros(0, dtype=np.uint16)
            joined = b"".join(d.encode("utf-8", errors="replace") + b"\0" for d in docs)
            ids = np.frombuffer(joined, dtype=np.uint8).astype(np.uint16)
            # mark document ends: the byte 0 we appended after each document
            ends = np.cumsum([len(d.encode("utf-8", errors="replace")) + 1 for d in docs]) - 1
            ids[ends] = self.eos_id
            return ids
        parts = []
        for enc in self._hf.encode_batch(docs, add_special_tokens=False):
            parts.append(np.asarray(enc.ids + [self.eos_id], dtype=self.dtype))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=self.dtype)

    def count(self, doc: str) -> int:
        """Tokens of one document, including its end-of-document id."""
        if self._hf is None:
            return len(doc.encode("utf-8", errors="replace")) + 1
        return len(self._hf.encode(doc, add_special_tokens=False).ids) + 1

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids if int(i) != self.eos_id]
        if self._hf is None:
            return bytes(ids).decode("utf-8", errors="replace")
        return self._hf.decode(ids)
