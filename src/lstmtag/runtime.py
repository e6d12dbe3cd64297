"""The inference form of a neural tagger: mixed-length padded batches, cached char features, int8/bf16.

Why a separate form: training wants ``nn.LSTM`` as it is (one call, dropout between layers, equal-length
batches). Tagging wants large batches of mixed lengths, and ``nn.LSTM`` over a padded batch would
let the backward direction read the padding first. Packing fixes that but takes a slow path on CPU,
so here each layer and direction runs as its own unidirectional LSTM (oneDNN's fused kernel), and
the backward direction reads every sentence reversed *within its own length*::

    tokens      a b c _ _        (length 3, padded to 5)
    reversed    c b a _ _        index = [2, 1, 0, 3, 4]: padding stays at the end
    backward    h(c) h(b) h(a)   then the same index puts each state back at its token

A forward LSTM never reads past a token, and padding now only follows the real tokens, so the
outputs at real tokens are those of the sentence alone (up to float rounding of the batch size).

Character features are the same for every occurrence of a spelling, so they are computed once per
spelling and kept (up to ``CharCache.capacity`` spellings); only new spellings run the char LSTM, in
groups of similar length (``encode_spellings``).
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from lstmtag.batch import Batch, Vocabs, char_tensors, make_batch
from lstmtag.contract import Capabilities, TaggingModel
from lstmtag.data import Sentence
from lstmtag.embed import CharEncoder
from lstmtag.ensemble import Ensemble, average
from lstmtag.tagger import SoftmaxHead, Tagger

PRECISIONS = ("float", "int8", "bf16")


def reversal_index(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """(B, T) positions that reverse each row within its length and leave the padding in place."""
    positions = torch.arange(total)[None, :]  # (1, T)
    lengths = lengths[:, None]  # (B, 1)
    return torch.where(positions < lengths, lengths - 1 - positions, positions)


class PaddedEncoder(nn.Module):
    """A (bi)directional ``nn.LSTM`` as one unidirectional one-layer LSTM per layer and direction.

    ``whole`` is the same LSTM as one module sharing those weights: where no sentence is padded
    (one sentence alone, or a batch of one length) or the LSTM reads one way only, it is exact, and
    one call of it was faster (0.89 against 1.14 ms for one sentence of 20 tokens, bf16).
    """

    def __init__(self, lstm: nn.LSTM) -> None:
        super().__init__()
        directions = ("", "_reverse") if lstm.bidirectional else ("",)
        out_size = lstm.proj_size or lstm.hidden_size
        self.layers = nn.ModuleList()
        for layer in range(lstm.num_layers):
            input_size = lstm.input_size if layer == 0 else out_size * len(directions)
            pair = nn.ModuleList()
            for suffix in directions:
                single = nn.LSTM(input_size, lstm.hidden_size, batch_first=True, proj_size=lstm.proj_size)
                names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] + (["weight_hr"] if lstm.proj_size else [])
                single.load_state_dict({f"{n}_l0": getattr(lstm, f"{n}_l{layer}{suffix}").detach() for n in names})
                pair.append(single)
            self.layers.append(pair)
        self.whole = nn.LSTM(
            lstm.input_size,
            lstm.hidden_size,
            num_layers=lstm.num_layers,
            bidirectional=lstm.bidirectional,
            batch_first=True,
            proj_size=lstm.proj_size,
        )
        for name in self.whole._flat_weights_names:  # the singles' parameters, shared: no second copy
            base, layer = name.removesuffix("_reverse").rsplit("_l", 1)
            single = self.layers[int(layer)][1 if name.endswith("_reverse") else 0]
            setattr(self.whole, name, getattr(single, f"{base}_l0"))

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Inputs (B, T, F), lengths (B,) -> outputs (B, T, directions * H); padded rows hold junk."""
        batch, total = inputs.shape[:2]
        if len(self.layers[0]) == 1 or bool((lengths == total).all()):
            return self.whole(inputs)[0]
        # Reversal within each length swaps pairs of cells, so one flat index reverses and restores;
        # index_select on the flattened rows was faster here than indexing with (rows, reverse).
        reverse = (reversal_index(lengths, total) + torch.arange(batch)[:, None] * total).reshape(-1)
        outputs = inputs
        for pair in self.layers:
            forward = pair[0](outputs)[0]
            backward = pair[1](_rows(outputs, reverse))[0]
            outputs = torch.cat([forward, _rows(backward, reverse)], dim=-1)
        return outputs


def _rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values`` (B, T, F) with its B * T cells reordered by the flat ``index``."""
    batch, total, width = values.shape
    return values.reshape(batch * total, width).index_select(0, index).reshape(batch, total, width)


# Padded character cells (spellings x longest spelling) the char LSTM reads in one call. Its activations
# grow with the cells, so reading a batch's new spellings at once (1,740 in one of EWT test's first
# batches) took +27 MiB; EWT test's 5,629 spellings in groups as batches bring them +108 MiB and 1.0 s
# of CPU. Length-sorted groups of 1,024 cells: +9 MiB and 0.72 s (4,096 cells: +27 MiB, 0.84 s).
CHAR_CELLS = 1024


def encode_spellings(
    encoder: CharEncoder, chars: torch.Tensor, lengths: torch.Tensor, *, max_cells: int = CHAR_CELLS
) -> torch.Tensor:
    """``encoder(chars, lengths)`` (U, 2 * char_hidden), run on groups of similar length, each at most ``max_cells``.

    A group is as many spellings, shortest first, as fit ``max_cells`` when padded to the longest of
    them (a longer spelling gets a group of its own). Each spelling gets the features it gets alone (to float
    rounding).
    """
    order = torch.argsort(lengths.clamp(min=1), stable=True).tolist()
    widths = lengths.clamp(min=1).tolist()
    parts, groups, start = [], [], 0
    while start < len(order):
        end = start + 1  # sorted: the newest spelling of a group is its longest
        while end < len(order) and (end - start + 1) * widths[order[end]] <= max_cells:
            end += 1
        rows = torch.tensor(order[start:end])
        parts.append(encoder(chars[rows, : widths[order[end - 1]]], lengths[rows]))
        groups.append(rows)
        start = end
    if not parts:
        return encoder(chars, lengths)
    features = torch.cat(parts)  # (U, 2 * char_hidden) in sorted order
    return features[torch.argsort(torch.cat(groups))]


class CharCache:
    """Character features by spelling, computed once each; the ``capacity`` most recently used are kept.

    Why least-recently-used: spellings follow Zipf's law, so 8,192 kept spellings answer almost every
    token of running text (all of EWT test's 7,600 distinct ones), while memory stays fixed however
    much text streams through (a cache of every spelling seen grew a long stream by tens of MB).

    Given ``words`` (the word embedding), a row holds the spelling's whole input to the encoder, word
    embedding then character features: a spelling has one word id, so a batch's input is one lookup
    of its spellings' rows instead of two lookups and a concatenation per token.
    """

    def __init__(
        self,
        encoder: CharEncoder,
        *,
        capacity: int = 8192,
        dtype: torch.dtype = torch.float32,
        words: nn.Embedding | None = None,
    ) -> None:
        self.encoder = encoder
        self.words = words
        self.capacity = capacity
        self.index: OrderedDict[str, int] = OrderedDict()  # spelling -> row of ``table``, oldest use first
        width = encoder.output_size + (words.embedding_dim if words is not None else 0)
        self.table = torch.empty(0, width, dtype=dtype)  # bf16 models keep bf16 features: half the memory
        self.rows = 0  # rows of ``table`` in use
        self.lock = threading.Lock()  # the cache is shared by every thread that tags with this model

    @torch.no_grad()
    def __call__(self, batch: Batch) -> torch.Tensor:
        """Features (U, width) of the batch's distinct spellings, in ``batch.spellings`` order."""
        if not batch.spellings or len(batch.spellings) > self.capacity:  # nothing to look up, or too much to keep
            return self._compute(batch, range(len(batch.spellings)))
        with self.lock:
            return self._lookup(batch)

    def _compute(self, batch: Batch, rows: Sequence[int]) -> torch.Tensor:
        """Rows of features for the batch's spellings at ``rows``, in the table's dtype."""
        features = encode_spellings(self.encoder, *_chars_of(batch, rows)).to(self.table.dtype)
        if self.words is None:
            return features
        if batch.spelling_words is None:
            raise ValueError("a cache of word and character features needs batches with spelling_words")
        words = self.words(batch.spelling_words[torch.tensor(list(rows), dtype=torch.long)]).to(self.table.dtype)
        return torch.cat([words, features], dim=-1)

    def _lookup(self, batch: Batch) -> torch.Tensor:
        missing = []
        for u, spelling in enumerate(batch.spellings):
            if spelling in self.index:
                self.index.move_to_end(spelling)  # used now: evicted last
            else:
                missing.append(u)
        if missing:
            new = self._compute(batch, missing)
            slots = self._take(len(missing))
            self.table[torch.tensor(slots)] = new
            for slot, u in zip(slots, missing, strict=True):
                self.index[batch.spellings[u]] = slot
        return self.table[[self.index[s] for s in batch.spellings]]

    def _take(self, count: int) -> list[int]:
        """``count`` free rows: unused ones first, then those of the least recently used spellings."""
        fresh = min(count, self.capacity - self.rows)
        if self.rows + fresh > self.table.shape[0]:
            size = min(max(self.rows + fresh, 2 * self.table.shape[0], 1024), self.capacity)
            table = torch.empty(size, self.table.shape[1], dtype=self.table.dtype)
            table[: self.rows] = self.table[: self.rows]
            self.table = table
        slots = list(range(self.rows, self.rows + fresh))
        self.rows += fresh
        # The batch's own spellings were just moved to the end, so the oldest are never among them.
        slots += [self.index.popitem(last=False)[1] for _ in range(count - fresh)]
        return slots


def _chars_of(batch: Batch, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Character ids and lengths of the batch's spellings at ``rows``, built now if the batch left them for later."""
    if batch.char_vocab is not None:
        return char_tensors([batch.spellings[u] for u in rows], batch.char_vocab)
    index = torch.tensor(list(rows), dtype=torch.long)
    return batch.chars[index], batch.char_lengths[index]


class InferenceForm(TaggingModel):
    """What the inference forms share: the made-from model's capabilities, and decoding with its heads.

    Each form sets ``declared``, ``refused`` and ``heads`` from the model it was made from.
    """

    declared: Capabilities
    refused: dict[str, str]
    heads: nn.ModuleDict

    @property
    def capabilities(self) -> Capabilities:
        return self.declared

    @property
    def refusals(self) -> dict[str, str]:
        return self.refused

    def batch(self, sentences: Sequence[Sentence], vocabs: Vocabs) -> Batch:
        """A batch without gold labels, whose character tensors are built only for spellings not cached."""
        return make_batch(sentences, vocabs, chars=self.capabilities.uses_chars, labels=False, lazy_chars=True)

    @torch.no_grad()
    def decode(self, batch: Batch) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Name -> (tag ids (B, T), probability of each chosen tag (B, T))."""
        emissions = self(batch)
        return {name: self.heads[name].decode(emissions[name], batch.mask) for name in emissions}

    @torch.no_grad()
    def decode_tokens(self, batch: Batch) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``decode`` of the real tokens only; softmax heads then skip the padding (13% of EWT test's cells)."""
        if not all(isinstance(head, SoftmaxHead) for head in self.heads.values()):
            return super().decode_tokens(batch)  # a CRF decodes whole sequences
        emissions = self(batch, tokens=True)  # name -> (N, num_tags)
        return {name: _best(scores) for name, scores in emissions.items()}


class InferenceTagger(InferenceForm):
    """A trained ``Tagger`` for tagging only: padded mixed-length batches, cached char features.

    A snapshot: the encoder and output layers are copied, and the cached character features belong
    to the weights of the moment, so build a new one (a new ``Predictor``) after changing the weights.
    """

    kind = "tagger"

    def __init__(self, tagger: Tagger, *, precision: str = "float") -> None:
        super().__init__()
        self.declared, self.refused = tagger.capabilities, tagger.refusals
        self.words = tagger.embedder.words
        self.encoder = PaddedEncoder(tagger.encoder)
        self.columns = [(name, linear.out_features) for name, linear in tagger.outputs.items()]
        self.outputs = nn.ModuleDict({"all": _fused(list(tagger.outputs.values()))})  # one matmul for every head
        self.heads = tagger.heads
        self.precision = _reduce(self, precision)
        self.dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32  # the encoder's input
        chars = tagger.embedder.chars
        # With characters, a spelling's word embedding and char features are one cached row.
        self.chars = CharCache(chars, dtype=self.dtype, words=self.words) if chars is not None else None

    def forward(self, batch: Batch, *, tokens: bool = False) -> dict[str, torch.Tensor]:
        """Emissions per column: name -> (B, T, num_tags), float32; (N, num_tags) of the real tokens if ``tokens``."""
        if self.chars is not None:
            features = self.chars(batch)[batch.word_types]  # (B, T, word_dim + 2 * char_hidden)
        else:
            features = self.words(batch.words).to(self.dtype)  # (B, T, word_dim)
        encoded = self.encoder(features, batch.lengths)
        if tokens:
            encoded = encoded[batch.mask]
        scores = self.outputs["all"](encoded).split([size for _, size in self.columns], dim=-1)
        return {name: part.float() for (name, _), part in zip(self.columns, scores, strict=True)}


class InferenceEnsemble(InferenceForm):
    """An ``Ensemble`` whose members are ``InferenceTagger``s: log of the mean probabilities."""

    kind = "ensemble"

    def __init__(self, ensemble: Ensemble, *, precision: str = "float") -> None:
        super().__init__()
        self.declared, self.refused = ensemble.capabilities, ensemble.refusals
        self.members = nn.ModuleList([InferenceTagger(m, precision=precision) for m in ensemble.members])
        self.heads = ensemble.heads
        self.precision = self.members[0].precision

    def forward(self, batch: Batch, *, tokens: bool = False) -> dict[str, torch.Tensor]:
        return average([member(batch, tokens=tokens) for member in self.members])


def _best(emissions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``SoftmaxHead.decode`` without a mask: the best tag and its probability, per row."""
    best, tags = emissions.softmax(-1).max(-1)
    return tags, best


def _fused(linears: list[nn.Linear]) -> nn.Linear:
    """One linear layer computing all of ``linears`` (same input) side by side: one call, one pass over the input."""
    fused = nn.Linear(linears[0].in_features, sum(linear.out_features for linear in linears))
    with torch.no_grad():
        fused.weight.copy_(torch.cat([linear.weight for linear in linears]))
        fused.bias.copy_(torch.cat([linear.bias for linear in linears]))
    return fused


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def _reduce(tagger: InferenceTagger, precision: str) -> str:
    """Switch the encoder and output layers to ``precision``; returns the precision in effect.

    int8 is PyTorch's dynamic quantization (weights int8, activations quantized per batch); bf16 runs
    the LSTMs and output layers in bfloat16. Where the installed torch or the CPU lacks what either
    needs, tagging goes on in float, with one warning.
    """
    if precision == "bf16":
        if not native_bf16():
            warnings.warn("this CPU has no native bfloat16 arithmetic; tagging in float", stacklevel=3)
            return "float"
        tagger.encoder.to(torch.bfloat16)
        tagger.outputs.to(torch.bfloat16)
    elif precision == "int8":
        if tagger.encoder.layers[0][0].proj_size:
            warnings.warn("int8 LSTMs have no projection layer here; tagging in float", stacklevel=3)
            return "float"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao.quantization is deprecated
                from torch.ao.quantization import quantize_dynamic

                encoder = quantize_dynamic(tagger.encoder, {nn.LSTM}, dtype=torch.qint8)
                outputs = quantize_dynamic(tagger.outputs, {nn.Linear}, dtype=torch.qint8)
        except (ImportError, RuntimeError, AttributeError, NotImplementedError) as error:
            warnings.warn(f"int8 is not available in this torch ({error}); tagging in float", stacklevel=3)
            return "float"
        tagger.encoder, tagger.outputs = encoder, outputs
    return precision


def native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively here (AVX-512 or AMX); elsewhere bf16 is slower than float."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
