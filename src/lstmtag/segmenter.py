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

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lstmtag import checkpoint
from lstmtag.config import Config, ModelConfig, saved_config
from lstmtag.contract import Capabilities
from lstmtag.segment import Token, bounded, clean, paragraphs

LABELS = ("inside", "token", "multiword", "sentence", "multiword_sentence")
INSIDE, TOKEN, MULTIWORD, SENTENCE, MULTIWORD_SENTENCE = range(len(LABELS))
WINDOW = 2_000  # characters the BiLSTM reads at once; longer text is cut at a space near this length
CATEGORIES = "LMNPSZC"  # unseen characters share an id per Unicode major category (letter, mark, digit, ...)
SPECIALS = ["<pad>"] + [f"<unk:{c}>" for c in CATEGORIES]


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
        for forward, backward in zip(self.forward_layers, self.backward_layers, strict=True):
            ahead = forward(hidden)[0]  # (B, T, H)
            behind = _reversed(backward(_reversed(hidden, lengths))[0], lengths)  # (B, T, H)
            hidden = self.dropout(torch.cat([ahead, behind], dim=-1))  # (B, T, 2H)
        return self.output(hidden)  # (B, T, 5)


def _reversed(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's first ``length`` steps in reverse order, padding left where it was. ``(B, T, F)``.

    Rows are picked from the flattened batch with ``index_select`` (a third of ``gather``'s time here).
    """
    batch, steps = values.shape[:2]
    positions = torch.arange(steps).unsqueeze(0)  # (1, T)
    last = lengths.unsqueeze(1) - 1  # (B, 1)
    index = torch.where(positions <= last, last - positions, positions)  # (B, T)
    index = index + torch.arange(batch).unsqueeze(1) * steps  # rows of the flattened (B * T, F)
    return values.reshape(batch * steps, -1).index_select(0, index.reshape(-1)).reshape(values.shape)


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

    def at_precision(self, precision: str) -> TrainedSegmenter:
        """Run the network in bfloat16 for ``bf16`` where the CPU does it natively (as the tagger); else float.

        Why: the tagger of a shipped model runs in bf16, and the segmenter's share of raw-text tagging
        time halves with it. ``int8`` keeps float (no quantized form of this network).
        """
        from lstmtag.runtime import _native_bf16

        if precision == "bf16" and _native_bf16():
            self.net.to(torch.bfloat16)
            self.precision = "bf16"
        return self

    def encode(self, text: str) -> list[int]:
        unknown = {c: i for i, c in enumerate(CATEGORIES, start=1)}
        return [self.index.get(ch) or unknown.get(unicodedata.category(ch)[0], len(CATEGORIES)) for ch in text]

    def label(self, texts: Sequence[str], *, probabilities: bool = False) -> list[Any]:
        """The best label of every character of each text (one padded batch), and with ``probabilities`` each one's."""
        if not texts:
            return []
        ids = [self.encode(text) for text in texts]
        lengths = torch.tensor([max(len(row), 1) for row in ids])
        padded = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
        for row, values in enumerate(ids):
            padded[row, : len(values)] = torch.tensor(values, dtype=torch.long)
        with torch.no_grad():
            probs, best = self.net(padded, lengths).float().softmax(-1).max(-1)  # (B, T) each
        rows = [best[row, : len(text)].tolist() for row, text in enumerate(texts)]
        if not probabilities:
            return rows
        return [(labels, probs[row, : len(labels)].tolist()) for row, labels in enumerate(rows)]

    def __call__(self, text: str) -> list[list[Token]]:
        """Sentences of tokens of ``text``; its paragraphs' windows are labelled together, longest first."""
        text = clean(text)
        pieces = paragraphs(text)
        windows = [(a + offset, b + offset) for offset, paragraph in pieces for a, b in _windows(paragraph)]
        order = sorted(range(len(windows)), key=lambda i: windows[i][0] - windows[i][1])  # little padding
        labels: list[list[int]] = [[] for _ in windows]
        for start in range(0, len(order), 32):  # 32 windows (64k characters) per batch bound the memory
            chosen = order[start : start + 32]
            for index, row in zip(chosen, self.label([text[slice(*windows[i])] for i in chosen]), strict=True):
                labels[index] = row
        flat = [label for row in labels for label in row]
        sentences, at = [], 0
        for offset, paragraph in pieces:
            sentences += decode(paragraph, flat[at : at + len(paragraph)], self.expander, offset=offset)
            at += len(paragraph)
        return bounded(sentences)


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


def decode(text: str, labels: Sequence[int], expander: Expander, *, offset: int = 0) -> list[list[Token]]:
    """Sentences of tokens from one label per character; whitespace always ends a token.

    Token offsets are ``offset`` on from those in ``text`` (a paragraph of a longer text).
    """
    sentences: list[list[Token]] = []
    tokens: list[Token] = []
    start: int | None = None

    def close(end: int, label: int) -> None:
        nonlocal start, tokens
        surface = text[start:end]
        multiword = label in (MULTIWORD, MULTIWORD_SENTENCE)
        words = expander.expand(surface) if multiword else ()
        tokens.append(Token(surface, start + offset, end + offset, end >= len(text) or text[end].isspace(), words))
        start = None
        if label in (SENTENCE, MULTIWORD_SENTENCE):
            sentences.append(tokens)
            tokens = []

    for position, ch in enumerate(text):
        if ch.isspace():
            if start is not None:
                close(position, labels[position - 1])
            continue
        if start is None:
            start = position
        if labels[position] != INSIDE:
            close(position + 1, labels[position])
    if start is not None:
        close(len(text), labels[len(text) - 1])
    if tokens:
        sentences.append(tokens)
    return sentences


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
