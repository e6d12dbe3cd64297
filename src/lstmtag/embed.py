"""Word representations: a word embedding plus a character BiLSTM over the word's spelling.

The character features carry what an embedding cannot: suffixes, capitals, digits, hyphens. They
decide how well a tagger does on words it never saw in training (Plank et al. 2016; Ling et al. 2015).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class CharEncoder(nn.Module):
    """BiLSTM over characters; a word's feature is the final forward and backward states."""

    def __init__(self, num_chars: int, char_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.lstm = nn.LSTM(char_dim, hidden_size, batch_first=True, bidirectional=True)
        self.output_size = 2 * hidden_size

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Chars (U, L), lengths (U,) -> (U, 2 * hidden_size).

        Packed, unlike the word encoder: for these small sizes the packed kernel measured faster here
        than one unpacked call per distinct word length.
        """
        embedded = self.embedding(chars)  # (U, L, char_dim)
        packed = pack_padded_sequence(embedded, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n (2, U, H)
        return torch.cat([h_n[0], h_n[1]], dim=-1)


class WordCharEmbedder(nn.Module):
    """Token features (B, T, output_size) from word ids and the batch's distinct spellings."""

    def __init__(self, num_words: int, num_chars: int, *, word_dim: int, char_dim: int, char_hidden: int) -> None:
        super().__init__()
        self.words = nn.Embedding(num_words, word_dim, padding_idx=0)
        self.chars = CharEncoder(num_chars, char_dim, char_hidden) if char_hidden > 0 else None
        self.output_size = word_dim + (self.chars.output_size if self.chars is not None else 0)

    def forward(
        self, words: torch.Tensor, word_types: torch.Tensor, chars: torch.Tensor, char_lengths: torch.Tensor
    ) -> torch.Tensor:
        features = self.words(words)  # (B, T, word_dim)
        if self.chars is None:
            return features
        per_type = self.chars(chars, char_lengths)  # (U, 2 * char_hidden)
        return torch.cat([features, per_type[word_types]], dim=-1)
