"""The trained segmenter (kind ``segmenter``): a character BiLSTM that splits raw text into sentences and tokens.

Each character gets one of five labels (UDPipe 1 and Stanza label characters the same way)::

    text    I  d o n ' t     g o .
    label   T  I I I I M     I T S        I inside, T token end, M multiword-token end,
                                          S sentence end, X multiword-token and sentence end

Whitespace is never inside a token: it ends any open token, so every character of the input is
either in exactly one token or whitespace between tokens. A token labelled M (or X) is expanded into
its words by ``Expander``: the words the training file gave that surface form most often, cased like
the surface; an unseen surface is split at the longest learned suffix word (``n't``, ``'s``, ``na``).

It is saved beside the tagger, in a file of its own (safetensors + JSON, like every model): the two
are trained from different views of the treebank, and one segmenter serves any tagger of its
language. ``models.load`` finds a shipped model's segmenter by name (``en`` -> ``en_ewt.segmenter``).
"""

from __future__ import annotations

import functools
import itertools
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from lstmtag import checkpoint
from lstmtag.config import Config, ModelConfig, saved_config
from lstmtag.contract import Capabilities
from lstmtag.segment import Token, bounded, clean, paragraphs

LABELS = ("inside", "token", "multiword", "sentence", "multiword_sentence")
INSIDE, TOKEN, MULTIWORD, SENTENCE, MULTIWORD_SENTENCE = range(len(LABELS))
ENDS_SENTENCE = (SENTENCE, SENTENCE, MULTIWORD_SENTENCE, SENTENCE, MULTIWORD_SENTENCE)  # each label, ending a sentence
WINDOW = 2_000  # characters the BiLSTM reads at once; longer text is cut at a space near this length
CATEGORIES = "LMNPSZC"  # unseen characters share an id per Unicode major category (letter, mark, digit, ...)
SPECIALS = ["<pad>"] + [f"<unk:{c}>" for c in CATEGORIES]
UNKNOWN = {c: i for i, c in enumerate(CATEGORIES, start=1)}  # category letter -> its unknown id
BATCH_WINDOWS = 32  # windows labelled in one padded batch (at most 64k characters)


def char_vocabulary(texts: Iterable[str], *, min_count: int = 2) -> list[str]:
    """Padding, one unknown per Unicode category, then the characters seen at least ``min_count`` times."""
    counts = Counter(ch for text in texts for ch in text)
    return SPECIALS + sorted(ch for ch, n in counts.items() if n >= min_count)


class SegmenterNet(nn.Module):
    """Character ids -> label scores: embedding -> BiLSTM -> linear. ``(B, T) -> (B, T, 5)``.

    Each direction is its own forward ``nn.LSTM`` over right-padded rows; the backward one reads each
    row reversed within its length (``_reversed``), so padding is never read in either direction.
    Why not ``pack_padded_sequence``: on CPU its backward pass runs 10x slower over rows of mixed
    lengths (measured: 3.1 s against 0.3 s for 32 rows of up to 400 characters).
    """

    def __init__(self, config: ModelConfig, num_chars: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_chars, config.char_dim, padding_idx=0)
        sizes = [config.char_dim] + [2 * config.hidden_size] * (config.num_layers - 1)
        self.forward_layers = nn.ModuleList(nn.LSTM(n, config.hidden_size, batch_first=True) for n in sizes)
        self.backward_layers = nn.ModuleList(nn.LSTM(n, config.hidden_size, batch_first=True) for n in sizes)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden_size, len(LABELS))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden = self.dropout(self.embed(ids))  # (B, T, E)
        index = _reversal(lengths, ids.shape[1]).to(ids.device)  # one index for every layer, both ways
        layers = list(zip(self.forward_layers, self.backward_layers, strict=True))
        for forward, backward in layers[:-1]:
            ahead = forward(hidden)[0]  # (B, T, H)
            behind = _reversed(backward(_reversed(hidden, index))[0], index)  # (B, T, H)
            hidden = self.dropout(torch.cat([ahead, behind], dim=-1))  # (B, T, 2H)
        forward, backward = layers[-1]
        ahead = self.dropout(forward(hidden)[0])  # (B, T, H)
        behind = self.dropout(backward(_reversed(hidden, index))[0])  # (B, T, H), each row reversed
        # The output layer splits over [ahead; behind], so the backward half is put back in order after
        # it shrank to 5 scores (no concatenation, and a 5-wide reordering instead of an H-wide one).
        weight, half = self.output.weight, ahead.shape[-1]
        scores = nn.functional.linear(ahead, weight[:, :half], self.output.bias)  # (B, T, 5)
        return scores + _reversed(nn.functional.linear(behind, weight[:, half:]), index)


def _reversal(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """``(B * T,)`` rows of a flattened ``(B, T, F)`` batch that reverse each row within its length."""
    positions = torch.arange(steps, device=lengths.device).unsqueeze(0)  # (1, T)
    last = lengths.unsqueeze(1) - 1  # (B, 1)
    index = torch.where(positions <= last, last - positions, positions)  # (B, T): padding stays where it is
    return (index + torch.arange(len(lengths), device=lengths.device).unsqueeze(1) * steps).reshape(-1)


def _reversed(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Each row's first ``length`` steps in reverse order, padding left where it was. ``(B, T, F)``.

    Rows are picked from the flattened batch with ``index_select`` (a third of ``gather``'s time here).
    """
    return values.reshape(len(index), -1).index_select(0, index).reshape(values.shape)


@dataclass
class Expander:
    """Multiword-token expansion learned from a treebank's ranges (``don't`` -> ``do n't``)."""

    table: dict[str, list[str]] = field(default_factory=dict)  # folded surface -> folded words (``fold``)
    suffixes: list[str] = field(default_factory=list)  # last words of pure splits, longest first

    @classmethod
    def learn(cls, pairs: Iterable[tuple[str, Sequence[str]]]) -> Expander:
        """From (surface, words) of every multiword token: the likeliest words per surface, and split suffixes."""
        counts: dict[str, Counter[tuple[str, ...]]] = {}
        suffixes: Counter[str] = Counter()
        for surface, words in pairs:
            key = fold(surface)
            counts.setdefault(key, Counter())[tuple(fold(w) for w in words)] += 1
            if len(words) == 2 and fold("".join(words)) == key:
                suffixes[fold(words[1])] += 1
        table = {key: list(c.most_common(1)[0][0]) for key, c in counts.items()}
        return cls(table, sorted((s for s, n in suffixes.items() if n >= 5), key=lambda s: (-len(s), s)))

    def expand(self, surface: str) -> tuple[str, ...]:
        """The words of a multiword token; ``()`` where neither the table nor a suffix applies."""
        words = self.table.get(fold(surface))
        if words is None:
            lower = fold(surface)
            suffix = next((s for s in self.suffixes if lower.endswith(s) and len(lower) > len(s)), None)
            if suffix is None:
                return ()
            words = [lower[: -len(suffix)], suffix]
        return _cased(surface, words)


def fold(text: str) -> str:
    """``text`` lower-cased one character for one, so offsets into it are offsets into ``text``.

    Why not ``str.lower``: it turns Turkish ``İ`` into two characters (``i`` + a combining dot), which
    shifted every cut after it (``İyice`` was expanded to ``İyic`` + ``e``, not ``İyi`` + ``ce``).
    """
    return "".join(ch.lower()[:1] for ch in text)


def _cased(surface: str, words: Sequence[str]) -> tuple[str, ...]:
    """``words`` in the casing of ``surface``: sliced from it when they spell it, else by its pattern."""
    if "".join(words) == fold(surface):
        pieces, at = [], 0
        for word in words:
            pieces.append(surface[at : at + len(word)])
            at += len(word)
        return tuple(pieces)
    if surface.isupper() and len(surface) > 1:
        return tuple(w.upper() for w in words)
    if surface[:1].isupper():
        return (words[0][:1].upper() + words[0][1:], *words[1:])
    return tuple(words)


class TrainedSegmenter:
    """A loaded segmenter: call it on a paragraph for its sentences of ``segment.Token`` s."""

    kind = "segmenter"
    capabilities = Capabilities(segments=True, trained=True)

    def __init__(
        self, config: Config, chars: list[str], expander: Expander, info: dict[str, Any] | None = None
    ) -> None:
        self.config = config
        self.chars = chars
        self.index = {ch: i for i, ch in enumerate(chars)}
        self.expander = expander
        self.info = dict(info or {})
        self.net = SegmenterNet(config.model, len(chars))
        self.net.eval()
        self.precision = "float"
        self._table: np.ndarray | None = None

    def at_precision(self, precision: str) -> TrainedSegmenter:
        """Run the network in bfloat16 for ``bf16`` where the CPU does it natively (as the tagger); else float.

        Why: the tagger of a shipped model runs in bf16, and the segmenter's share of raw-text tagging
        time halves with it. ``int8`` keeps float (no quantized form of this network).
        """
        from lstmtag.runtime import native_bf16

        if precision == "bf16" and native_bf16():
            self.net.to(torch.bfloat16)
            self.precision = "bf16"
        return self

    def encode(self, text: str) -> list[int]:
        return self._ids(text).tolist()

    def _ids(self, text: str) -> np.ndarray:
        """Character ids of ``text`` ``(len(text),)``: looked up by code point; unseen ones by Unicode category."""
        if self._table is None:  # built on first use: code point -> id, 0 for unseen
            single = [(ord(ch), i) for ch, i in self.index.items() if len(ch) == 1]
            self._table = np.zeros(max((c for c, _ in single), default=0) + 2, dtype=np.int32)
            for code, i in single:
                self._table[code] = i
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ids = self._table[np.minimum(codes, len(self._table) - 1)].astype(np.int64)  # past the table: its last entry, 0
        for position in np.flatnonzero(ids == 0).tolist():
            ids[position] = UNKNOWN.get(unicodedata.category(text[position])[0], len(CATEGORIES))
        return ids

    def _scores(self, ids: np.ndarray, spans: Sequence[tuple[int, int]]) -> torch.Tensor:
        """Label scores ``(B, T, 5)`` of the slices ``ids[start:end]`` for each span, in one padded batch."""
        lengths = [max(end - start, 1) for start, end in spans]
        padded = np.zeros((len(spans), max(lengths)), dtype=np.int64)
        for row, (start, end) in enumerate(spans):
            padded[row, : end - start] = ids[start:end]
        with torch.no_grad():
            return self.net(torch.from_numpy(padded), torch.tensor(lengths)).float()

    def label(self, texts: Sequence[str], *, probabilities: bool = False) -> list[Any]:
        """The best label of every character of each text (one padded batch), and with ``probabilities`` each one's."""
        if not texts:
            return []
        ends = list(itertools.accumulate(len(text) for text in texts))
        scores = self._scores(self._ids("".join(texts)), list(zip([0, *ends], ends, strict=False)))
        probs, best = scores.softmax(-1).max(-1)  # (B, T) each
        rows = [best[row, : len(text)].tolist() for row, text in enumerate(texts)]
        if not probabilities:
            return rows
        return [(labels, probs[row, : len(labels)].tolist()) for row, labels in enumerate(rows)]

    def __call__(self, text: str) -> list[list[Token]]:
        """Sentences of tokens of ``text``; its paragraphs' windows are labelled together in a few padded batches.

        Windows are batched longest first (little padding), ``BATCH_WINDOWS`` at a time: measured
        fastest on EWT's text (64 or 128 rows, or batches by character count, were slower). Which
        windows share a batch changes nothing but float rounding (each row is read only within its
        length), and the labels of all paragraphs are decoded in one pass.
        """
        text = clean(text)
        pieces = paragraphs(text)
        windows = [(a + offset, b + offset) for offset, paragraph in pieces for a, b in _windows(paragraph)]
        windows.sort(key=lambda span: span[0] - span[1])
        ids = self._ids(text)
        marks = bytearray(len(text))  # the best label of each character; whitespace between paragraphs keeps 0
        for first in range(0, len(windows), BATCH_WINDOWS):
            spans = windows[first : first + BATCH_WINDOWS]
            best = self._scores(ids, spans).argmax(-1).to(torch.uint8).numpy()  # (B, T)
            for row, (start, end) in enumerate(spans):
                marks[start:end] = best[row, : end - start].tobytes()
        for offset, paragraph in pieces:  # a paragraph's last token ends a sentence, so none spans a blank line
            last = offset + len(paragraph.rstrip()) - 1
            marks[last] = ENDS_SENTENCE[marks[last]]
        return bounded(decode(text, bytes(marks), self.expander))


def _windows(text: str, size: int = WINDOW) -> list[tuple[int, int]]:
    """``(start, end)`` pieces of at most ``size`` characters, cut after a space where there is one."""
    pieces, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            space = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            end = space + 1 if space > start else end
        pieces.append((start, end))
        start = end
    return pieces


@functools.cache
def _space_table() -> np.ndarray:
    """``table[c]``: whether code point ``c`` is whitespace to ``str.isspace`` (none lies past U+3000)."""
    return np.array([chr(code).isspace() for code in range(0x3001)] + [False])


def decode(text: str, labels: bytes | Sequence[int], expander: Expander, *, offset: int = 0) -> list[list[Token]]:
    """Sentences of tokens from one label per character; whitespace always ends a token.

    Token offsets are ``offset`` on from those in ``text`` (a paragraph of a longer text). Where tokens
    start and end is found for all characters at once (numpy), so Python steps once per token, not
    once per character (decoding was a tenth of the segmenter's time)::

        text     I   d o n ' t   g o .        space: whether whitespace; end: a non-space character
        label    T   I I I I M   I T S        with a label other than I, or whitespace after it;
        end      1   0 0 0 0 1   0 1 1        start: a non-space character after whitespace or an end
    """
    if not text:
        return []
    marks = np.frombuffer(labels if isinstance(labels, bytes) else bytes(labels), dtype=np.uint8)[: len(text)]
    table = _space_table()
    space = table[np.minimum(np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32), len(table) - 1)]
    after = np.append(space[1:], True)  # whitespace, or the end of the text, after each character
    end = ~space & ((marks != INSIDE) | after)
    start = ~space & np.insert(space[:-1] | end[:-1], 0, True)
    last = np.flatnonzero(end)  # each token's last character
    kinds = marks[last]
    tokens = [
        Token(text[a:b], a + offset, b + offset, spaced)
        for a, b, spaced in zip(np.flatnonzero(start).tolist(), (last + 1).tolist(), after[last].tolist(), strict=True)
    ]
    for index in np.flatnonzero((kinds == MULTIWORD) | (kinds == MULTIWORD_SENTENCE)).tolist():
        tokens[index] = tokens[index]._replace(words=expander.expand(tokens[index].text))
    cuts = (np.flatnonzero((kinds == SENTENCE) | (kinds == MULTIWORD_SENTENCE)) + 1).tolist()
    bounds = [0, *cuts] if cuts and cuts[-1] == len(tokens) else [0, *cuts, len(tokens)]
    return [tokens[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def to_file(segmenter: TrainedSegmenter) -> checkpoint.ModelFile:
    """The file form: config, characters and expansion table as JSON, weights as tensors."""
    vocabs = {
        "chars": segmenter.chars,
        "multiword_surfaces": list(segmenter.expander.table),
        "multiword_words": [" ".join(words) for words in segmenter.expander.table.values()],
        "multiword_suffixes": segmenter.expander.suffixes,
    }
    tensors = dict(segmenter.net.state_dict())
    return checkpoint.ModelFile("segmenter", segmenter.config.to_dict(), vocabs, tensors, segmenter.info)


def check_file(source: str, model_file: checkpoint.ModelFile) -> None:
    """Refuse metadata of the wrong shape before a network is built from it."""
    vocabs = model_file.vocabs
    checkpoint.check_strings(source, {k: vocabs.get(k) for k in ("chars", *MULTIWORD_LISTS)}, "vocabs")
    if len(vocabs["multiword_surfaces"]) != len(vocabs["multiword_words"]):
        raise checkpoint.ModelFileError(f"{source}: malformed metadata: multiword surfaces and words differ in number")


MULTIWORD_LISTS = ("multiword_surfaces", "multiword_words", "multiword_suffixes")


def from_file(model_file: checkpoint.ModelFile, source: str) -> TrainedSegmenter:
    """Rebuild a segmenter from a file ``check_file`` accepted."""
    vocabs = model_file.vocabs
    table = {s: w.split(" ") for s, w in zip(vocabs["multiword_surfaces"], vocabs["multiword_words"], strict=True)}
    try:
        segmenter = TrainedSegmenter(
            saved_config(model_file.config),
            vocabs["chars"],
            Expander(table, list(vocabs["multiword_suffixes"])),
            model_file.info,
        )
        segmenter.net.load_state_dict(model_file.tensors, strict=True)
    except (ValueError, KeyError, RuntimeError, TypeError) as error:
        raise checkpoint.ModelFileError(f"{source}: model file does not match its own config: {error}") from None
    segmenter.net.eval()
    return segmenter
