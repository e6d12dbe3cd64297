"""Per-unit statistics over a corpus: what each hidden unit does, summed up from exact traces.

For every module, layer, direction and unit: the mean and spread of h and c over all real steps;
how often each gate is saturated (Karpathy, Johnson & Fei-Fei 2015: a gate left-saturated below
0.1 is shut, right-saturated above 0.9 is wide open); and the unit's *selectivity*: for each label
(gold tag, or character class for a language model) Cohen's d of h between steps with and without
the label, ``d = (mean_with - mean_without) / pooled standard deviation``. The candidate g lies in
(-1, 1), so its thresholds apply to (g + 1) / 2, i.e. g < -0.8 and g > 0.8.

Only sums are kept (float64: count, sum, sum of squares, per label too), so a corpus of any size
costs the memory of one batch of traces plus K x H numbers per layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from lstmtag.corpus_trace import TracedChunk
from lstmtag.inspector import GATES

LEFT, RIGHT = 0.1, 0.9


@dataclass
class Sums:
    """Running sums for one layer and direction (H units, K labels)."""

    count: int = 0
    h: torch.Tensor | None = None  # (H,) sum of h
    h2: torch.Tensor | None = None  # (H,) sum of h squared
    c: torch.Tensor | None = None
    c2: torch.Tensor | None = None
    left: dict[str, torch.Tensor] = field(default_factory=dict)  # gate -> (H,) steps below LEFT
    right: dict[str, torch.Tensor] = field(default_factory=dict)
    label_count: torch.Tensor | None = None  # (K,)
    label_h: torch.Tensor | None = None  # (K, H) sum of h over steps with the label
    label_h2: torch.Tensor | None = None  # (K, H)

    def add(self, trace, mask: torch.Tensor, labels: torch.Tensor | None) -> None:
        h = trace.h[mask].double()  # (N, H): real steps only
        c = trace.c[mask].double()
        if self.h is None:
            size = h.shape[1]
            self.h, self.h2, self.c, self.c2 = (torch.zeros(size, dtype=torch.float64) for _ in range(4))
            self.left = {g: torch.zeros(size, dtype=torch.long) for g in GATES}
            self.right = {g: torch.zeros(size, dtype=torch.long) for g in GATES}
        self.count += h.shape[0]
        self.h += h.sum(0)
        self.h2 += (h * h).sum(0)
        self.c += c.sum(0)
        self.c2 += (c * c).sum(0)
        for gate in GATES:
            value = getattr(trace, gate)[mask]
            if gate == "g":
                value = (value + 1) / 2
            self.left[gate] += (value < LEFT).sum(0)
            self.right[gate] += (value > RIGHT).sum(0)
        if labels is not None:
            chosen = labels[mask].double()  # (N, K)
            if self.label_count is None:
                self.label_count = torch.zeros(chosen.shape[1], dtype=torch.float64)
                self.label_h = torch.zeros(chosen.shape[1], h.shape[1], dtype=torch.float64)
                self.label_h2 = torch.zeros_like(self.label_h)
            self.label_count += chosen.sum(0)
            self.label_h += chosen.T @ h
            self.label_h2 += chosen.T @ (h * h)


def cohens_d(n1, sum1, sq1, n0, sum0, sq0) -> torch.Tensor:
    """Cohen's d of group 1 against group 0 from counts, sums and sums of squares (broadcasting).

    The pooled variance uses each group's sample variance (n - 1); a group under two steps or no
    spread at all gives 0.
    """
    n1, n0 = torch.as_tensor(n1, dtype=torch.float64), torch.as_tensor(n0, dtype=torch.float64)
    mean1, mean0 = sum1 / n1.clamp(min=1), sum0 / n0.clamp(min=1)
    within = (sq1 - n1 * mean1**2).clamp(min=0) + (sq0 - n0 * mean0**2).clamp(min=0)
    pooled = (within / (n1 + n0 - 2).clamp(min=1)).sqrt()
    d = (mean1 - mean0) / pooled.clamp(min=1e-12)
    valid = (n1 >= 2) & (n0 >= 2) & (pooled > 1e-12)
    return torch.where(valid, d, torch.zeros_like(d))


@dataclass
class UnitStats:
    """Statistics of every unit, accumulated chunk by chunk; ``to_json`` gives the documented shape."""

    label_names: list[str]
    sums: dict[tuple[str, int, str], Sums] = field(default_factory=dict)
    tokens: int = 0

    def add(self, chunk: TracedChunk) -> None:
        self.tokens += int(chunk.mask.sum())
        for trace in chunk.layers:
            key = (trace.module, trace.layer, trace.direction)
            self.sums.setdefault(key, Sums()).add(trace, chunk.mask, chunk.labels)

    def effects(self, key: tuple[str, int, str]) -> torch.Tensor | None:
        """(K, H) Cohen's d of h for each label and unit, or None without labels."""
        s = self.sums[key]
        if s.label_count is None:
            return None
        n1 = s.label_count[:, None]
        return cohens_d(n1, s.label_h, s.label_h2, s.count - n1, s.h[None] - s.label_h, s.h2[None] - s.label_h2)

    def to_json(self, *, top: int = 5, min_count: int = 10) -> dict[str, object]:
        """``{"tokens", "labels": {label: count}, "units": [{module, layer, direction, unit, ...}]}``.

        ``selective_for`` lists at most ``top`` labels seen on ``min_count`` or more steps, largest |d| first.
        """
        units = []
        label_counts: dict[str, int] = {}
        for key, s in self.sums.items():
            n = s.count
            h_mean, c_mean = s.h / n, s.c / n
            h_std = (s.h2 / n - h_mean**2).clamp(min=0).sqrt()
            c_std = (s.c2 / n - c_mean**2).clamp(min=0).sqrt()
            effects = self.effects(key)
            if s.label_count is not None and not label_counts:
                label_counts = {name: int(v) for name, v in zip(self.label_names, s.label_count.tolist(), strict=True)}
            for unit in range(h_mean.numel()):
                selective = []
                if effects is not None:
                    column = effects[:, unit]
                    for k in column.abs().argsort(descending=True).tolist():
                        count = int(s.label_count[k])
                        if count >= min_count and len(selective) < top:
                            selective.append({"label": self.label_names[k], "effect": float(column[k]), "count": count})
                units.append(
                    {
                        "module": key[0],
                        "layer": key[1],
                        "direction": key[2],
                        "unit": unit,
                        "h_mean": float(h_mean[unit]),
                        "h_std": float(h_std[unit]),
                        "c_mean": float(c_mean[unit]),
                        "c_std": float(c_std[unit]),
                        "saturation": {g: [float(s.left[g][unit]) / n, float(s.right[g][unit]) / n] for g in GATES},
                        "selective_for": selective,
                    }
                )
        return {"tokens": self.tokens, "labels": label_counts, "units": units}

    def most_selective(self, label: str, *, top: int = 3, sign: int = 0) -> list[tuple[str, float]]:
        """The units whose h best tells ``label`` apart, as (name, d), over every layer and direction.

        ``sign`` +1 keeps units that fire for the label, -1 units that go quiet, 0 either.
        """
        k = self.label_names.index(label)
        found = []
        for key in self.sums:
            effects = self.effects(key)
            if effects is None:
                continue
            for unit, d in enumerate(effects[k].tolist()):
                if sign == 0 or d * sign > 0:
                    found.append((unit_name(*key, unit), d))
        return sorted(found, key=lambda item: -abs(item[1]))[:top]


def unit_name(module: str, layer: int, direction: str, unit: int) -> str:
    """``module:layer:direction:unit``, the name ``search`` and the page take."""
    return f"{module}:{layer}:{direction}:{unit}"


def collect(corpus, chunks: Iterable[TracedChunk] | None = None) -> UnitStats:
    """Statistics of every unit over a corpus source (``corpus_trace.open_corpus``)."""
    stats = UnitStats(list(corpus.label_names))
    for chunk in chunks if chunks is not None else corpus.chunks():
        stats.add(chunk)
    if stats.tokens == 0:
        raise ValueError(f"{corpus.path}: no tokens to read")
    return stats
