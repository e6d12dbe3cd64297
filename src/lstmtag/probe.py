"""Linear probes: how much of each gold column a linear classifier can read off each layer's h.

A probe (Alain & Bengio 2016; Belinkov et al. 2017) trains a linear map from a layer's states to a
label and scores it on held-out data: if a layer's h tells tags apart linearly, the information is
there in an easily used form. Here each probe is a ridge least-squares classifier (one-hot targets,
argmax to predict), fitted in closed form from streamed sums ``X^T X`` and ``X^T Y``: one pass over
the training corpus, memory independent of its size, no learning rate or epochs to tune, and the
same answer every run. The penalty is ``ridge`` times the diagonal of ``X^T X`` (so it does not
depend on the scale of a feature).

Probed features, per encoder: its input (word embedding + character features), then each layer's h
per direction and both directions side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from lstmtag.corpus_trace import TaggerCorpus, TracedChunk


def features(chunk: TracedChunk) -> Iterator[tuple[tuple[str, int | None, str | None], torch.Tensor]]:
    """((module, layer, direction), (N, F) features of the real steps) for every probed feature set."""
    mask = chunk.mask
    for module, inputs in chunk.inputs.items():
        yield (module, None, None), inputs[mask]
    by_layer: dict[tuple[str, int], list[torch.Tensor]] = {}
    for trace in chunk.layers:
        h = trace.h[mask]
        yield (trace.module, trace.layer, trace.direction), h
        by_layer.setdefault((trace.module, trace.layer), []).append(h)
    for (module, layer), parts in by_layer.items():
        if len(parts) == 2:
            yield (module, layer, "both"), torch.cat(parts, -1)


@dataclass
class Normal:
    """``X^T X`` and ``X^T Y`` per column, with a bias feature, in float64."""

    xtx: torch.Tensor
    xty: dict[str, torch.Tensor] = field(default_factory=dict)


class Probe:
    """Fit with ``add`` over the training chunks, then ``score`` the dev chunks."""

    def __init__(self, columns: dict[str, int], *, ridge: float = 1e-3) -> None:
        self.columns, self.ridge = columns, ridge
        self.normals: dict[tuple, Normal] = {}
        self.weights: dict[tuple, dict[str, torch.Tensor]] = {}
        self.correct: dict[tuple, dict[str, int]] = {}
        self.counts = {name: torch.zeros(size, dtype=torch.float64) for name, size in columns.items()}
        self.dev_tokens = {name: 0 for name in columns}
        self.majority_correct = {name: 0 for name in columns}

    def add(self, chunk: TracedChunk) -> None:
        gold = {name: chunk.gold[name][chunk.mask] for name in self.columns if name in chunk.gold}
        targets = {name: _one_hot(ids, self.columns[name]) for name, ids in gold.items()}
        for name, y in targets.items():
            self.counts[name] += y.sum(0)
        for key, x in features(chunk):
            x = _with_bias(x)
            normal = self.normals.setdefault(key, Normal(torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)))
            normal.xtx += x.T @ x
            for name, y in targets.items():
                normal.xty[name] = normal.xty.get(name, 0) + x.T @ y

    def fit(self) -> None:
        if not self.normals:
            raise ValueError("the probe's training corpus holds no tokens with gold labels")
        for key, normal in self.normals.items():
            penalty = torch.diag(normal.xtx.diagonal() * self.ridge + 1e-9)
            system = normal.xtx + penalty
            self.weights[key] = {name: torch.linalg.solve(system, xty) for name, xty in normal.xty.items()}

    def score(self, chunk: TracedChunk) -> None:
        gold = {name: chunk.gold[name][chunk.mask] for name in self.columns if name in chunk.gold}
        for name, ids in gold.items():
            self.dev_tokens[name] += ids.numel()
            self.majority_correct[name] += int((ids == int(self.counts[name].argmax())).sum())
        for key, x in features(chunk):
            x = _with_bias(x)
            correct = self.correct.setdefault(key, {})
            for name, weight in self.weights[key].items():
                if name in gold:
                    predicted = (x @ weight).argmax(-1)
                    correct[name] = correct.get(name, 0) + int((predicted == gold[name]).sum())

    def report(self) -> dict[str, object]:
        """``{"majority": {column: acc}, "probes": [{module, layer, direction, size, dev_accuracy}]}``."""
        rows = []
        for key, correct in self.correct.items():
            module, layer, direction = key
            rows.append(
                {
                    "module": module,
                    "layer": layer,
                    "direction": direction,
                    "size": int(self.normals[key].xtx.shape[0] - 1),
                    "dev_accuracy": {n: c / self.dev_tokens[n] for n, c in correct.items() if self.dev_tokens[n]},
                }
            )
        majority = {n: c / self.dev_tokens[n] for n, c in self.majority_correct.items() if self.dev_tokens[n]}
        return {"majority": majority, "dev_tokens": self.dev_tokens, "probes": rows}


def _with_bias(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=torch.float64)], -1)


def _one_hot(ids: torch.Tensor, size: int) -> torch.Tensor:
    """(N,) ids -> (N, size) float64; an id of -1 (a tag the model never saw) is all zeros."""
    y = torch.zeros(ids.numel(), size, dtype=torch.float64)
    known = ids >= 0
    y[known.nonzero().squeeze(-1), ids[known]] = 1.0
    return y


def probe(train_corpus, dev_corpus, *, ridge: float = 1e-3) -> dict[str, object]:
    """Fit every probe on ``train_corpus`` and score it on ``dev_corpus`` (tagger corpus sources)."""
    if not isinstance(train_corpus, TaggerCorpus):
        raise ValueError("probe needs a tagger and gold tag columns; a language model has no gold columns")
    columns = {name: len(vocab.itos) for name, vocab in train_corpus.bundle.vocabs.labels.items()}
    prober = Probe(columns, ridge=ridge)
    for chunk in train_corpus.chunks():
        prober.add(chunk)
    prober.fit()
    for chunk in dev_corpus.chunks():
        prober.score(chunk)
    return prober.report()
