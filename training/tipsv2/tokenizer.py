"""The TIPSv2 text tokenizer, as the official code applies it (no torch).

Official behaviour (`pytorch/text_encoder.py`): SentencePiece `tokenizer.model` (32,000 ids), input lower-cased
with `tf.strings.lower` (ASCII letters only: its default encoding '' means ASCII, so "É" stays "É"), no BOS/EOS,
truncated to 64 tokens and right-padded with id 0; the padding mask is `ids == 0`. (HF's `Tipsv2Tokenizer` lower-cases
all of Unicode instead; we follow the official code.)
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import sentencepiece as spm

PAD_ID = 0
UNK_ID = 1
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """Lower-cases A-Z only, exactly `tf.strings.lower(text)` with its default (ASCII) encoding."""
    return text.translate(_ASCII_LOWER)


class Tokenizer:
    def __init__(self, model_file: str | Path, max_len: int = 64) -> None:
        self.model_file = Path(model_file)
        self.max_len = max_len
        self._sp = spm.SentencePieceProcessor(model_file=str(self.model_file))
        if self._sp.pad_id() != PAD_ID:
            raise ValueError(f"{model_file}: pad id is {self._sp.pad_id()}, TIPSv2 expects {PAD_ID}")

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    def encode(self, text: str) -> list[int]:
        """Token ids of one text, ASCII-lower-cased, without BOS/EOS, before truncation."""
        return list(self._sp.encode(ascii_lower(text)))

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Returns `(ids, lengths)`: int32 ids (N, max_len) right-padded with 0, and the unpadded lengths."""
        ids = np.zeros((len(texts), self.max_len), dtype=np.int32)
        lengths = np.zeros((len(texts),), dtype=np.int32)
        for row, text in enumerate(texts):
            tokens = self.encode(text)[: self.max_len]
            ids[row, : len(tokens)] = tokens
            lengths[row] = len(tokens)
        return ids, lengths


def train_tokenizer(sentences: Iterable[str], out_file: str | Path, vocab_size: int) -> Path:
    """Trains a SentencePiece model with the official id layout (`<pad>`=0, `<unk>`=1, no BOS/EOS).

    Used to build the tokenizer of the tiny local model: the official `tokenizer.model` cannot be downloaded here.
    """
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=(ascii_lower(s) for s in sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=-1,
        eos_id=-1,
        character_coverage=1.0,
        hard_vocab_limit=False,  # a small corpus yields fewer pieces than asked; the id table just has spare rows
        num_threads=1,  # deterministic output for a given corpus
        minloglevel=2,
    )
    out_file.write_bytes(model.getvalue())
    return out_file
