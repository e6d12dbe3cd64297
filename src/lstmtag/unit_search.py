"""Pattern search over a corpus: the spans where chosen units are all on (LSTMVis's select-and-match).

Strobelt et al. (2017) select a few units of h that are high over a span of a sentence, then search
the corpus for other spans where the same units are high. Here a span is a maximal run of steps
where every chosen unit's h is above the threshold, at least ``min_length`` steps long; spans are
ranked by length, then by their strength (the mean over the span of the weakest chosen unit).
Runs carry across a language model's windows, so a span can be longer than one window. Only the
best ``keep`` spans are kept (a heap), so memory does not grow with the corpus.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass

import torch

from lstmtag.corpus_trace import TracedChunk

DIRECTIONS = ("forward", "backward")


@dataclass(frozen=True)
class UnitRef:
    """One unit of one layer and direction of a module's LSTM."""

    module: str
    layer: int
    direction: str
    unit: int
    sign: int = 1  # -1: the unit counts as on where -h is above the threshold (h below -threshold)


def parse_units(spec: str, module: str, modules: list[str], sizes: dict[tuple[str, int, str], int]) -> list[UnitRef]:
    """``"1:forward:17,-0:backward:3"`` -> units of ``module``; each is checked against the model.

    A unit may also be named in full, as ``units --json`` names it (``members.1.encoder:1:backward:94``),
    which picks its module. A leading ``-`` flips the unit's sign, to search for where it is strongly negative.
    """
    refs = []
    for part in (p.strip() for p in spec.split(",")):
        sign = -1 if part.startswith("-") else 1
        pieces = part.removeprefix("-").split(":")
        owner = pieces.pop(0) if len(pieces) == 4 else module
        if owner not in modules:
            raise ValueError(f"--module {owner!r}: the model's LSTMs are {modules}")
        number = re.compile(r"[0-9]+")
        if (
            len(pieces) != 3
            or not number.fullmatch(pieces[0])
            or not number.fullmatch(pieces[2])
            or pieces[1] not in DIRECTIONS
        ):
            raise ValueError(
                f"--units {part!r}: name a unit as LAYER:DIRECTION:UNIT (e.g. 1:forward:17) or MODULE:LAYER:DIRECTION:UNIT"
            )
        ref = UnitRef(owner, int(pieces[0]), pieces[1], int(pieces[2]), sign)
        size = sizes.get((owner, ref.layer, ref.direction))
        if size is None:
            raise ValueError(f"--units {part!r}: {owner} has no layer {ref.layer} {ref.direction}")
        if ref.unit >= size:
            raise ValueError(f"--units {part!r}: layer {ref.layer} {ref.direction} has units 0 to {size - 1}")
        refs.append(ref)
    if not refs:
        raise ValueError("--units: name at least one unit")
    return refs


@dataclass(order=True)
class Span:
    """A match: steps [start, end) of corpus row ``row``."""

    rank: tuple[int, float]
    row: int
    start: int
    end: int
    strength: float
    left: str = ""
    text: str = ""
    right: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "row": self.row,
            "start": self.start,
            "end": self.end,
            "length": self.end - self.start,
            "strength": self.strength,
            "left": self.left,
            "text": self.text,
            "right": self.right,
        }


class Search:
    """Feed traced chunks in corpus order; ``best()`` gives the top spans, longest and strongest first."""

    def __init__(self, corpus, units: list[UnitRef], *, threshold: float, min_length: int = 1, keep: int = 20) -> None:
        if min_length < 1:
            raise ValueError(f"--min-length must be 1 or more, got {min_length}")
        self.corpus, self.units = corpus, units
        self.threshold, self.min_length, self.keep = threshold, min_length, keep
        self.heap: list[Span] = []
        self.matches = 0
        self.open: dict[int, tuple[int, float]] = {}  # row -> (start, sum of the weakest unit) of a running span

    def add(self, chunk: TracedChunk) -> None:
        by_key = {(t.module, t.layer, t.direction): t for t in chunk.layers}
        values = torch.stack([u.sign * by_key[(u.module, u.layer, u.direction)].h[..., u.unit] for u in self.units], -1)
        weakest = values.min(-1).values.masked_fill(~chunk.mask, float("-inf"))  # (B, T)
        on = (weakest > self.threshold).tolist()
        weakest = weakest.tolist()
        lengths = chunk.mask.sum(1).tolist()
        for b, row in enumerate(chunk.rows):
            offset = chunk.offsets[b]
            if lengths[b] == 0:
                continue
            start, total = self.open.pop(row, (None, 0.0))
            for t in range(lengths[b]):
                if on[b][t]:
                    if start is None:
                        start, total = offset + t, 0.0
                    total += weakest[b][t]
                elif start is not None:
                    self._close(row, start, offset + t, total)
                    start = None
            if start is not None and self.corpus.carries:  # a stream goes on in the next window
                self.open[row] = (start, total)
            elif start is not None:  # a sentence ends with its batch
                self._close(row, start, offset + lengths[b], total)

    def _close(self, row: int, start: int, end: int, total: float) -> None:
        if end - start < self.min_length:
            return
        self.matches += 1
        strength = total / (end - start)
        span = Span((end - start, strength), row, start, end, strength)
        if len(self.heap) < self.keep:
            heapq.heappush(self.heap, span)
        elif span > self.heap[0]:
            heapq.heapreplace(self.heap, span)
        else:
            return
        span.left, span.text, span.right = self.corpus.context(row, start, end)

    def finish(self) -> None:
        """Close the spans still running at the end of the corpus."""
        for row in list(self.open):
            start, total = self.open.pop(row)
            self._close(row, start, self.corpus.row_length(row), total)

    def best(self) -> list[Span]:
        return sorted(self.heap, reverse=True)


def search(corpus, units: list[UnitRef], *, threshold: float, min_length: int = 1, keep: int = 20) -> Search:
    """Run the search over the whole corpus source; the result holds the best spans and the match count."""
    finder = Search(corpus, units, threshold=threshold, min_length=min_length, keep=keep)
    for chunk in corpus.chunks():
        finder.add(chunk)
    finder.finish()
    return finder
