"""Turn sentences into padded tensors, and group sentences of similar length into batches.

Layout of one batch of B sentences, padded to the longest (T tokens)::

    words       (B, T)  word ids (lowercased forms), 0 = <pad>
    mask        (B, T)  True on real tokens
    word_types  (B, T)  index of each token's spelling in ``chars``
    chars       (U, L)  character ids of the U distinct spellings in the batch, padded to L
    char_lengths (U,)

Characters are encoded once per distinct spelling, not once per token, which roughly halves the
character LSTM's work on running text.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch

from lstmtag.data import Sentence
from lstmtag.limits import CHAR_MODEL_CHARS
from lstmtag.vocab import Vocab

SPELLING_MEMO = 65536


@dataclass
class Vocabs:
    """Everything a tagger maps to ids: words, characters and one label vocabulary per column.

    Words are stored in the form a model looks them up by: ``word_key`` for the neural taggers, the
    exact form for the HMM (which keeps its own lookup; see ``hmm.HMMTagger.batch``).
    """

    words: Vocab
    chars: Vocab
    labels: dict[str, Vocab]
    word_counts: list[int] = field(default_factory=list)  # training counts by word id, for word dropout
    # spelling -> word id, remembered (up to SPELLING_MEMO spellings, then started afresh): the lookup
    # key of a spelling takes two Python calls, a remembered id none.
    known: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def word_ids(self, spellings: Sequence[str]) -> list[int]:
        """The word id of each spelling (``word_key``, then the word vocabulary)."""
        ids = list(map(self.known.get, spellings))
        if None in ids:
            if len(self.known) > SPELLING_MEMO:
                self.known.clear()
            for i, spelling in enumerate(spellings):
                if ids[i] is None:
                    ids[i] = self.known[spelling] = self.words.id(word_key(spelling))
        return ids  # type: ignore[return-value]

    def to_dict(self) -> dict[str, object]:
        return {
            "words": self.words.to_list(),
            "chars": self.chars.to_list(),
            "labels": {name: vocab.to_list() for name, vocab in self.labels.items()},
        }

    @classmethod
    def from_dict(cls, values: dict) -> Vocabs:
        """Inverse of ``to_dict``; keys a model kind adds for itself (the HMM's) are left to that kind."""
        return cls(
            words=Vocab(values["words"]),
            chars=Vocab(values["chars"]),
            labels={name: Vocab(items, specials=False) for name, items in values["labels"].items()},
        )


def word_key(word: str) -> str:
    """The form a word embedding is looked up by: lowercased, digits folded to 0."""
    return _word_key(word) if len(word) <= CHAR_MODEL_CHARS else _fold(word)  # long tokens would bloat the cache


def _fold(word: str) -> str:
    return "".join("0" if ch.isdigit() else ch for ch in word.lower())


_word_key = functools.lru_cache(maxsize=16384)(_fold)  # hot: every token of every batch


@dataclass
class Batch:
    words: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    word_types: torch.Tensor
    chars: torch.Tensor
    char_lengths: torch.Tensor
    labels: dict[str, torch.Tensor]
    spellings: list[str] = field(default_factory=list)  # the U distinct spellings, in ``chars`` order
    # Set when the character tensors were left to be built on demand (``char_tensors``), for the spellings
    # a cache of character features does not hold: the vocabulary to build them with.
    char_vocab: Vocab | None = None
    spelling_words: torch.Tensor | None = None  # (U,) the word id of each spelling, for caches of spelling features

    def to_device(self, device: torch.device) -> Batch:
        """This batch on ``device``; the lengths stay on the CPU, where packing and the length checks read them."""
        return replace(
            self,
            words=self.words.to(device),
            mask=self.mask.to(device),
            word_types=self.word_types.to(device),
            chars=self.chars.to(device),
            labels={name: tags.to(device) for name, tags in self.labels.items()},
        )


def make_batch(
    sentences: Sequence[Sentence],
    vocabs: Vocabs,
    *,
    word_dropout: float = 0.0,
    rng: random.Random | None = None,
    chars: bool = True,
    labels: bool = True,
    lazy_chars: bool = False,
) -> Batch:
    """Pad ``sentences`` into a ``Batch``; gold labels are included where the sentences carry them.

    With ``word_dropout`` > 0 a word of training count c becomes <unk> with probability
    ``alpha / (alpha + c)``, so the model learns to tag from characters when it meets unseen words.
    ``chars=False`` leaves the character tensors empty, for models that do not read them
    (``Capabilities.uses_chars``). Tagging wants neither the gold labels (``labels=False``) nor the
    characters of spellings whose features it has cached (``lazy_chars=True``: ``chars`` stays empty,
    ``char_vocab`` is set, and ``char_tensors`` builds what is missing): on EWT test the two were 60%
    of the time spent building batches.
    """
    lengths = torch.tensor([len(s.words) for s in sentences])
    longest = int(lengths.max())
    mask = torch.arange(longest)[None, :] < lengths[:, None]  # (B, T); row-major, like the flat lists below
    spellings: dict[str, int] = {}
    type_ids = [spellings.setdefault(w, len(spellings)) for s in sentences for w in s.words]
    types = _fill(mask, type_ids)
    by_spelling = torch.tensor(vocabs.word_ids(list(spellings)) or [0], dtype=torch.long)
    if word_dropout > 0 and rng is not None:
        counts, unk = vocabs.word_counts, vocabs.words.unk_id
        ids = [
            unk if rng.random() < word_dropout / (word_dropout + counts[i]) else i
            for i in by_spelling[type_ids].tolist()
        ]
        words = _fill(mask, ids)
    else:
        words = by_spelling[types].masked_fill_(~mask, 0)  # one id per spelling, looked up once
    label_names = [n for n in vocabs.labels if labels and all(n in s.labels for s in sentences)]
    gold = {}
    for name in label_names:
        # A label unseen in training gets id -1: never predicted, so it counts as wrong.
        stoi = vocabs.labels[name].stoi
        gold[name] = _fill(mask, [stoi.get(t, -1) for s in sentences for t in s.labels[name]])
    if not chars:
        return Batch(words, mask, lengths, torch.zeros_like(types), *_no_chars(), gold)
    if lazy_chars:
        return Batch(words, mask, lengths, types, *_no_chars(), gold, list(spellings), vocabs.chars, by_spelling)
    char_ids, char_lengths = char_tensors(list(spellings), vocabs.chars)
    return Batch(words, mask, lengths, types, char_ids, char_lengths, gold, list(spellings), None, by_spelling)


def char_tensors(spellings: Sequence[str], chars: Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Character ids (U, L) of ``spellings``, padded, and their lengths (U,)."""
    char_lists = [_char_ids(chars, char_window(spelling)) for spelling in spellings] or [()]
    char_lengths = torch.tensor([len(c) for c in char_lists])
    char_ids = _fill(
        torch.arange(int(char_lengths.max()))[None, :] < char_lengths[:, None],
        list(itertools.chain.from_iterable(char_lists)),
    )
    return char_ids, char_lengths


def _no_chars() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, dtype=torch.long)


def _fill(mask: torch.Tensor, flat: list[int]) -> torch.Tensor:
    """A zero tensor shaped like ``mask`` with ``flat`` written into its True cells, row by row."""
    out = torch.zeros(mask.shape, dtype=torch.long)
    if flat:
        out[mask] = torch.tensor(flat, dtype=torch.long)
    return out


@functools.lru_cache(maxsize=16384)
def _char_ids(chars: Vocab, window: str) -> tuple[int, ...]:
    """Character ids of ``window`` (from ``char_window``; cached: most spellings recur)."""
    return tuple(chars.ids(window))


def char_window(spelling: str) -> str:
    """What the character model reads of a token: all of it, or its first and last ``CHAR_MODEL_CHARS / 2``.

    Why: a batch pads every spelling to the longest one, so a single long token would cost gigabytes.
    The ends of a word carry what tagging needs from its spelling (prefixes, suffixes, capitals).
    """
    half = CHAR_MODEL_CHARS // 2
    return spelling if len(spelling) <= CHAR_MODEL_CHARS else spelling[:half] + spelling[-half:]


def bucketed(
    sentences: Sequence[Sentence], batch_size: int, *, shuffle: bool, rng: random.Random | None = None
) -> list[list[Sentence]]:
    """Batches of sentences of exactly one length each, at most ``batch_size`` per batch.

    Equal lengths mean no padding, so the encoder can skip packing: oneDNN's fused LSTM kernel runs
    only on unpacked input, and the packed fallback was measured 2-3x slower per token here. On EWT
    this costs 450 batches an epoch instead of 392. ``shuffle`` reorders sentences within each length
    and the batches themselves, afresh each epoch.
    """
    by_length: dict[int, list[Sentence]] = {}
    for sentence in sentences:
        by_length.setdefault(len(sentence.words), []).append(sentence)
    batches = []
    for length in sorted(by_length):
        group = by_length[length]
        if shuffle:
            assert rng is not None
            rng.shuffle(group)
        batches += [group[s : s + batch_size] for s in range(0, len(group), batch_size)]
    if shuffle:
        rng.shuffle(batches)
    return batches
