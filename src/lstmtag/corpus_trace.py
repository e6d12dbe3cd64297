"""Trace a model over a whole corpus, batch by batch: the inspector's exact h, c and gates, streamed.

``units``, ``search`` and ``probe`` all read a corpus through one of these sources. Each yields
``TracedChunk`` s: a padded batch traced by ``inspector.trace_lstm`` (the equations its tests check
against ``nn.LSTM``), the mask of real positions and, per position, which labels it carries. Only one
batch of traces is alive at a time, so memory does not grow with the corpus.

A tagger's rows are sentences (read in chunks of ``chunk_sentences``, sorted by length, cut into
padded batches of at most ``max_tokens`` steps). A language model's text is laid out as ``streams`` parallel stretches read in
windows, the state carried from window to window, so every step sees the whole text before it in
its stretch, exactly as one long call would::

    text  a b c d e f g h i j k l        3 streams, windows of 2
    row 0 a b | c d                      window 1: a b / e f / i j
    row 1 e f | g h                      window 2: c d / g h / k l   (state carried)
    row 2 i j | k l
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lstmtag.contract import TaggingModel
from lstmtag.data import Sentence, read_sentences
from lstmtag.inspector import LayerTrace, trace_lstm
from lstmtag.tagger import Tagger

# Character classes a character language model's units are tested against (Karpathy et al. 2015).
LINE_BUCKETS = ((0, 9), (10, 19), (20, 29), (30, 39), (40, 10**9))
CHAR_CLASSES = (
    "letter",
    "upper case",
    "digit",
    "space",
    "newline",
    "punctuation",
    "inside quotes",
    "inside brackets",
    "speaker line",
    *(f"line position {lo}-{hi}" if hi < 10**9 else f"line position {lo}+" for lo, hi in LINE_BUCKETS),
)
OPEN, CLOSE = "([{", ")]}"


@dataclass
class TracedChunk:
    """One traced batch. Arrays are indexed (batch row, position in this chunk)."""

    layers: list[LayerTrace]  # each array (B, T, size)
    mask: torch.Tensor  # (B, T) bool: a real step, not padding
    labels: torch.Tensor | None  # (B, T, K) bool: the labels each step carries (K = len(label_names))
    rows: list[int]  # the corpus row (sentence or stream) of each batch row
    offsets: list[int]  # where in its row this chunk's first step sits
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)  # module -> what it reads (B, T, F)
    gold: dict[str, torch.Tensor] = field(default_factory=dict)  # column -> (B, T) label ids, -1 for none


def encoders(model: torch.nn.Module) -> list[tuple[str, Tagger]]:
    """The word-level LSTMs of a tagger, named as ``Predictor.inspect`` names them (the model declares them)."""
    named = model.encoders() if isinstance(model, TaggingModel) else []
    if not named:
        raise ValueError(f"a {type(model).__name__} has no LSTM to trace; use an LSTM tagger or language model")
    return named


class TaggerCorpus:
    """A CoNLL-U (gold labels) or text file read by a tagger; labels are the gold tags of one column."""

    separator = " "  # between tokens, when a span is printed
    carries = False  # each row (a sentence) lies whole in one chunk

    def __init__(
        self,
        predictor,
        path: str | Path,
        *,
        input_format: str = "conllu",
        column: str | None = None,
        batch_size: int = 64,
        max_tokens: int = 2048,
        chunk_sentences: int = 1024,
        max_sentences: int = 0,
    ) -> None:
        self.bundle = predictor.bundle
        self.encoders = encoders(self.bundle.model)
        self.path, self.input_format = path, input_format
        columns = list(self.bundle.vocabs.labels)
        self.column = column or ("upos" if "upos" in columns else columns[0])
        if self.column not in columns:
            raise ValueError(f"the model predicts {columns}, not {self.column!r}")
        self.label_names = list(self.bundle.vocabs.labels[self.column].itos)
        self.batch_size, self.chunk_sentences, self.max_sentences = batch_size, chunk_sentences, max_sentences
        self.max_tokens = max_tokens
        self.modules = [name for name, _ in self.encoders]
        self.sentences = 0
        self._current: dict[int, list[str]] = {}

    def sizes(self) -> dict[tuple[str, int, str], int]:
        """(module, layer, direction) -> hidden units."""
        return _sizes([(name, tagger.encoder) for name, tagger in self.encoders])

    def chunks(self) -> Iterator[TracedChunk]:
        chunk: list[Sentence] = []
        for sentence in read_sentences(self.path, self.input_format, list(self.bundle.vocabs.labels)):
            if self.max_sentences and self.sentences >= self.max_sentences:
                break
            chunk.append(sentence)
            self.sentences += 1
            if len(chunk) >= self.chunk_sentences:
                yield from self._chunk(chunk, self.sentences - len(chunk))
                chunk = []
        if chunk:
            yield from self._chunk(chunk, self.sentences - len(chunk))

    def _chunk(self, sentences: list[Sentence], first: int) -> Iterator[TracedChunk]:
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i].words))
        self._current = {first + i: s.words for i, s in enumerate(sentences)}
        for picked in self._batches(order, sentences):
            batch = self.bundle.model.batch([sentences[i] for i in picked], self.bundle.vocabs)
            layers, inputs = [], {}
            for name, tagger in self.encoders:
                with torch.no_grad():
                    features = tagger.features(batch)  # (B, T, F): what the encoder reads
                _, _, traces = trace_lstm(tagger.encoder, features, lengths=batch.lengths, module=name)
                layers += traces
                inputs[name] = features
            labels = None
            if self.column in batch.labels:
                gold = batch.labels[self.column]  # (B, T), -1 for a tag the model never saw
                labels = torch.nn.functional.one_hot(gold.clamp(min=0), len(self.label_names)).bool()
                labels &= (gold >= 0)[..., None] & batch.mask[..., None]
            rows = [first + i for i in picked]
            yield TracedChunk(layers, batch.mask, labels, rows, [0] * len(rows), inputs, dict(batch.labels))

    def _batches(self, order: list[int], sentences: list[Sentence]) -> Iterator[list[int]]:
        """Length-sorted indices cut into batches of at most ``batch_size`` sentences and ``max_tokens`` steps.

        So the largest batch, hence the memory, does not depend on how long the longest sentences are.
        """
        batch: list[int] = []
        for index in order:
            longest = len(sentences[index].words)  # sorted by length: the newest is the longest
            if batch and (len(batch) >= self.batch_size or (len(batch) + 1) * longest > self.max_tokens):
                yield batch
                batch = []
            batch.append(index)
        if batch:
            yield batch

    def context(self, row: int, start: int, end: int, width: int = 8) -> tuple[str, str, str]:
        """The span's tokens and up to ``width`` tokens each side (the row must be in the current chunk)."""
        words = self._current[row]
        return (
            " ".join(words[max(0, start - width) : start]),
            " ".join(words[start:end]),
            " ".join(words[end : end + width]),
        )


def char_classes(text: str) -> torch.Tensor:
    """(N, len(CHAR_CLASSES)) bool: the classes of each character of ``text``.

    Inside quotes: an odd number of ``"`` before it (the closing quote counts as inside, the opening
    one not). Inside brackets: more ``([{`` than ``)]}`` before it. Speaker line: a line ending in
    ``:`` (``ROMEO:``). Line position: characters since the last newline (the newline itself ends its line).
    """
    rows = []
    quotes = depth = column = 0
    lines = text.split("\n")
    speaker = [line.rstrip().endswith(":") for line in lines]
    line_index = 0
    for ch in text:
        rows.append(
            (
                ch.isalpha(),
                ch.isupper(),
                ch.isdigit(),
                ch == " ",
                ch == "\n",
                not ch.isalnum() and not ch.isspace(),
                quotes % 2 == 1,
                depth > 0,
                speaker[line_index],
                *(lo <= column <= hi for lo, hi in LINE_BUCKETS),
            )
        )
        quotes += ch == '"'
        depth = max(0, depth + (ch in OPEN) - (ch in CLOSE))
        column += 1
        if ch == "\n":
            column, line_index = 0, line_index + 1
    return torch.tensor(rows, dtype=torch.bool).view(len(text), len(CHAR_CLASSES))


class LMCorpus:
    """A text file read by a language model in ``streams`` parallel stretches, state carried."""

    carries = True  # a row (a stream) goes on from window to window

    def __init__(
        self, language_model, path: str | Path, *, streams: int = 32, window: int = 128, max_chars: int = 0
    ) -> None:
        from lstmtag.lm import tokenize
        from lstmtag.lm_train import read_text_file

        self.model, self.path = language_model, path
        text = read_text_file(path)
        if max_chars:
            text = text[:max_chars]
        self.tokens = tokenize(text, language_model.unit)
        self.ids = torch.tensor(language_model.vocab.ids(self.tokens))
        self.labels_all = char_classes(text) if language_model.is_char_model else None
        self.label_names = list(CHAR_CLASSES) if language_model.is_char_model else []
        self.streams = max(1, min(streams, len(self.tokens) // 2))
        self.stretch = math.ceil(len(self.tokens) / self.streams)
        self.window = window
        self.modules = ["lm"]
        self.separator = "" if language_model.is_char_model else " "

    def sizes(self) -> dict[tuple[str, int, str], int]:
        return _sizes([("lm", self.model.model.lstm)])

    def chunks(self) -> Iterator[TracedChunk]:
        net = self.model.model
        net.eval()
        starts = [s * self.stretch for s in range(self.streams)]
        ends = [min(len(self.tokens), start + self.stretch) for start in starts]
        state = None
        for offset in range(0, self.stretch, self.window):
            lengths = torch.tensor(
                [max(0, min(self.window, end - start - offset)) for start, end in zip(starts, ends, strict=True)]
            )
            steps = int(lengths.max())
            index = torch.tensor(starts)[:, None] + offset + torch.arange(steps)[None, :]  # (B, T)
            mask = torch.arange(steps)[None, :] < lengths[:, None]
            index = torch.where(mask, index, torch.zeros_like(index))
            with torch.no_grad():
                embedded = net.embedding(self.ids[index])  # (B, T, E)
            _, state, traces = trace_lstm(net.lstm, embedded, state, lengths=lengths, module="lm")
            labels = self.labels_all[index] & mask[..., None] if self.labels_all is not None else None
            yield TracedChunk(
                traces, mask, labels, list(range(self.streams)), [offset] * self.streams, {"lm": embedded}
            )

    def row_length(self, row: int) -> int:
        return max(0, min(len(self.tokens), (row + 1) * self.stretch) - row * self.stretch)

    def context(self, row: int, start: int, end: int, width: int = 40) -> tuple[str, str, str]:
        """The span's text and up to ``width`` tokens each side, within the stretch of the stream."""
        base, limit = row * self.stretch, min(len(self.tokens), (row + 1) * self.stretch)
        join = self.separator.join
        return (
            join(self.tokens[max(base, base + start - width) : base + start]),
            join(self.tokens[base + start : base + end]),
            join(self.tokens[base + end : min(limit, base + end + width)]),
        )


def _sizes(lstms: list[tuple[str, torch.nn.LSTM]]) -> dict[tuple[str, int, str], int]:
    sizes = {}
    for name, lstm in lstms:
        for layer in range(lstm.num_layers):
            for direction in ("forward", "backward")[: 2 if lstm.bidirectional else 1]:
                sizes[(name, layer, direction)] = lstm.hidden_size
    return sizes


def open_corpus(model, path: str | Path, *, input_format: str = "conllu", **options) -> TaggerCorpus | LMCorpus:
    """The right source for a loaded model: a ``Predictor`` (tagger) or a ``LanguageModel``."""
    if model.capabilities.generates:
        return LMCorpus(model, path, **{k: v for k, v in options.items() if k in ("streams", "window", "max_chars")})
    keep = ("column", "batch_size", "max_tokens", "chunk_sentences", "max_sentences")
    return TaggerCorpus(model, path, input_format=input_format, **{k: v for k, v in options.items() if k in keep})
