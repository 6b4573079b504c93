"""DNA encodings shared by the genomics adapters: one-hot <-> strings, and NT's k-mer tokenizer.

The task library hands models one-hot tensors (N, 5, L) over A, C, G, T, N with all-zero columns as
right padding. Token-based FMs need strings, so `sequences_from_one_hot` inverts the encoding
exactly (padding columns are dropped) and the tokenizer turns strings into ids.
"""
from __future__ import annotations

from itertools import product
from pathlib import Path

import numpy as np
import torch

DNA_ALPHABET = "ACGTN"          # one-hot channel order of the task library
_LOOKUP = np.frombuffer(DNA_ALPHABET.encode(), dtype=np.uint8)
NT_SPECIAL_TOKENS = ("<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>")


def one_hot_dna(sequences: list[str], length: int | None = None) -> torch.Tensor:
    """Strings -> float32 (N, 5, length) one-hot over A,C,G,T,N; other letters count as N; zero right-padding."""
    length = max(map(len, sequences)) if length is None else int(length)
    too_long = [len(s) for s in sequences if len(s) > length]
    if too_long:
        raise ValueError(f"{len(too_long)} sequences are longer than length={length} (longest {max(too_long)})")
    codes = np.full((len(sequences), length), -1, dtype=np.int64)
    table = np.full(256, DNA_ALPHABET.index("N"), dtype=np.int64)
    for i, letter in enumerate(DNA_ALPHABET):
        table[ord(letter)] = table[ord(letter.lower())] = i
    for row, sequence in enumerate(sequences):
        codes[row, :len(sequence)] = table[np.frombuffer(sequence.encode("ascii", "replace"), dtype=np.uint8)]
    out = np.zeros((len(sequences), len(DNA_ALPHABET), length), dtype=np.float32)
    rows, cols = np.nonzero(codes >= 0)
    out[rows, codes[rows, cols], cols] = 1.0
    return torch.from_numpy(out)


def sequences_from_one_hot(x: torch.Tensor) -> list[str]:
    """(B, 5, L) one-hot (A,C,G,T,N) -> B strings; all-zero columns (padding) are dropped."""
    if x.ndim != 3 or x.shape[1] != len(DNA_ALPHABET):
        raise ValueError(f"genomics adapters take one-hot tensors (B, 5, L) over {DNA_ALPHABET}, "
                         f"got shape {tuple(x.shape)}")
    x = x.detach().to("cpu", torch.float32)
    letters = _LOOKUP[x.argmax(dim=1).numpy()]
    present = (x.abs().sum(dim=1) > 0).numpy()
    return [row[mask].tobytes().decode("ascii") for row, mask in zip(letters, present)]


def nt_vocabulary(k: int = 6) -> list[str]:
    """NT's vocabulary layout: special tokens, all k-mers over ATCG, then the single nucleotides."""
    kmers = ["".join(p) for p in product("ATCG", repeat=k)]
    return [*NT_SPECIAL_TOKENS, *kmers, "A", "T", "C", "G", "N"]


class NucleotideKmerTokenizer:
    """The Nucleotide Transformer tokenizer, rebuilt from the checkpoint's vocab.txt.

    NT splits a sequence at every N, cuts each N-free stretch into non-overlapping k-mers from its
    start (k = 6 for the released models), and emits what is left at the end of a stretch (< k
    letters) and every N as single-nucleotide tokens. A <cls> token is prepended; no <eos>.
    """

    def __init__(self, vocabulary: list[str]):
        self.token_to_id = {token: i for i, token in enumerate(vocabulary)}
        missing = [t for t in ("<pad>", "<unk>", "<cls>", "A", "C", "G", "T", "N") if t not in self.token_to_id]
        if missing:
            raise ValueError(f"the vocabulary lacks the tokens {missing}; is this an NT vocab.txt?")
        kmer_lengths = {len(t) for t in vocabulary if len(t) > 1 and set(t) <= set("ACGT")}
        if len(kmer_lengths) != 1:
            raise ValueError(f"expected k-mers of one length in the vocabulary, found lengths {sorted(kmer_lengths)}")
        self.k = kmer_lengths.pop()
        self.pad_id = self.token_to_id["<pad>"]
        self.unk_id = self.token_to_id["<unk>"]
        self.cls_id = self.token_to_id["<cls>"]

    @classmethod
    def from_file(cls, path: str | Path) -> "NucleotideKmerTokenizer":
        return cls([line.strip() for line in Path(path).read_text().splitlines() if line.strip()])

    def __len__(self) -> int:
        return len(self.token_to_id)

    def tokenize(self, sequence: str) -> list[str]:
        k, tokens = self.k, []
        stretches = sequence.upper().split("N")
        for i, stretch in enumerate(stretches):
            n_full = len(stretch) // k
            tokens.extend(stretch[j * k:(j + 1) * k] for j in range(n_full))
            tokens.extend(stretch[n_full * k:])
            if i < len(stretches) - 1:
                tokens.append("N")
        return tokens

    def encode(self, sequences: list[str], max_tokens: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask), both (B, T) int64, right-padded with <pad>; T counts <cls>."""
        rows = [[self.cls_id] + [self.token_to_id.get(t, self.unk_id) for t in self.tokenize(s)] for s in sequences]
        width = max(map(len, rows))
        if max_tokens is not None and width > max_tokens:
            raise ValueError(f"a sequence needs {width} tokens (with <cls>), more than the {max_tokens} "
                             f"positions the checkpoint has; use shorter sequences")
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return ids, (ids != self.pad_id).long()
