"""Readable sentence views of a trace: a few meaningful units instead of a wall of stripes.

A layer of 128 units drawn in index order shows nothing a person can follow. A view picks the units
worth looking at (those that vary most across the sentence by default; those that best tell a tag
apart; or a list), keeps their indices, and adds one summary per token: |h|, |c|, the mean of each
gate, and how much of the previous cell the forget gate keeps, ``|f_t * c_prev| / |c_prev|``, where
``c_prev`` is the cell of the step read before this one (the next token for a backward direction).
The CLI and the web page draw the same view; the full vectors stay in ``Trace.to_json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lstmtag.inspector import GATES, LayerTrace, Trace
from lstmtag.units import cohens_d

ARRAYS = ("h", "c", *GATES)
DEFAULT_TOP = 32


def token_labels(trace: Trace) -> list[set[str]]:
    """What each token is, for ordering by a tag: a tagger's first predicted column, or an LM's character classes."""
    if "next" in trace.tags:  # a language model: the input characters' classes
        from lstmtag.corpus_trace import CHAR_CLASSES, char_classes

        if not all(len(token) == 1 for token in trace.tokens):
            return [set() for _ in trace.tokens]
        rows = char_classes("".join(trace.tokens)).tolist()
        return [{name for name, on in zip(CHAR_CLASSES, row, strict=True) if on} for row in rows]
    if not trace.tags:
        return [set() for _ in trace.tokens]
    first = next(iter(trace.tags.values()))
    return [{str(item["tag"])} for item in first]


def load_stats(path: str | Path) -> dict[tuple[str, int, str, int], dict[str, float]]:
    """``units --json`` output -> (module, layer, direction, unit) -> {label: effect}."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {
            (u["module"], int(u["layer"]), u["direction"], int(u["unit"])): {
                s["label"]: float(s["effect"]) for s in u["selective_for"]
            }
            for u in data["units"]
        }
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not the output of `lstmtag units --json` ({error})") from None


def stats_from(stats) -> dict[tuple[str, int, str, int], dict[str, float]]:
    """``units.UnitStats`` -> (module, layer, direction, unit) -> {label: effect}, every label seen."""
    mapping: dict[tuple[str, int, str, int], dict[str, float]] = {}
    for key, sums in stats.sums.items():
        effects = stats.effects(key)
        if effects is None:
            continue
        seen = [k for k, count in enumerate(sums.label_count.tolist()) if count > 0]
        for unit in range(effects.shape[1]):
            mapping[(*key, unit)] = {stats.label_names[k]: float(effects[k, unit]) for k in seen}
    return mapping


def order_units(
    layer: LayerTrace,
    *,
    order: str = "variance",
    labels: list[set[str]] | None = None,
    stats: dict[tuple[str, int, str, int], dict[str, float]] | None = None,
    top: int = DEFAULT_TOP,
) -> list[int]:
    """Unit indices of ``layer`` to show, most telling first; ``top`` 0 keeps every unit.

    ``order`` is ``variance`` (of h across the tokens), ``tag:LABEL`` (largest Cohen's d of h for the
    label: over the corpus when ``stats`` from ``units --json`` is given, else within this sentence
    from ``labels``), or ``units:LIST`` (indices, or names ``module:layer:direction:unit``; a layer
    none of the names belongs to shows no units).
    """
    size = layer.h.shape[-1]
    if order == "variance":
        score = layer.h.var(0, unbiased=False) if layer.h.shape[0] > 1 else layer.h.abs()[0]
        chosen = score.argsort(descending=True, stable=True).tolist()
    elif order.startswith("tag:"):
        label = order[4:]
        if stats is not None:
            effect = torch.tensor(
                [stats.get((layer.module, layer.layer, layer.direction, u), {}).get(label, 0.0) for u in range(size)]
            )
        else:
            has = torch.tensor([label in token for token in (labels or [])], dtype=torch.bool)
            if has.numel() != layer.h.shape[0]:
                raise ValueError(f"order {order!r}: no label for each token")
            h = layer.h.double()
            with_label, without = h[has], h[~has]
            effect = cohens_d(
                len(with_label),
                with_label.sum(0),
                (with_label**2).sum(0),
                len(without),
                without.sum(0),
                (without**2).sum(0),
            )
        chosen = effect.argsort(descending=True, stable=True).tolist()
    elif order.startswith("units:"):
        chosen = []
        for item in (part.strip() for part in order[6:].split(",") if part.strip()):
            index = _unit_index(item, layer, size)
            if index is not None and index not in chosen:
                chosen.append(index)
        return chosen
    else:
        raise ValueError(f"order {order!r}: use variance, tag:LABEL or units:LIST")
    return chosen[:top] if top > 0 else chosen


def _unit_index(item: str, layer: LayerTrace, size: int) -> int | None:
    pieces = item.split(":")
    if len(pieces) == 1 and item.isdigit():
        index = int(item)
    elif len(pieces) >= 4 and pieces[-1].isdigit() and pieces[-3].isdigit():
        module, layer_index, direction = ":".join(pieces[:-3]), int(pieces[-3]), pieces[-2]
        if (module, layer_index, direction) != (layer.module, layer.layer, layer.direction):
            return None
        index = int(pieces[-1])
    else:
        raise ValueError(f"unit {item!r}: give an index (17) or a name (module:layer:direction:unit)")
    if index >= size:
        raise ValueError(f"unit {item!r}: this layer has units 0 to {size - 1}")
    return index


def token_summary(layer: LayerTrace) -> list[dict[str, float | None]]:
    """Per token: |h|, |c|, mean i, f, g, o, and the share of the previous cell kept (None at the first step read)."""
    backward = layer.direction == "backward"
    c = layer.c
    previous = torch.cat([c[1:], torch.zeros_like(c[:1])]) if backward else torch.cat([torch.zeros_like(c[:1]), c[:-1]])
    kept = (layer.f * previous).norm(dim=-1) / previous.norm(dim=-1).clamp(min=1e-12)
    first = c.shape[0] - 1 if backward else 0
    rows = []
    for t in range(c.shape[0]):
        row: dict[str, float | None] = {"h_norm": float(layer.h[t].norm()), "c_norm": float(c[t].norm())}
        row.update({gate: float(getattr(layer, gate)[t].mean()) for gate in GATES})
        row["kept"] = None if t == first else float(kept[t])
        rows.append(row)
    return rows


def sentence_view(
    trace: Trace,
    *,
    order: str = "variance",
    top: int = DEFAULT_TOP,
    stats: dict[tuple[str, int, str, int], dict[str, float]] | None = None,
) -> dict[str, object]:
    """What the page and the CLI draw: per layer, the chosen units' arrays (tokens x units) and the summary."""
    labels = token_labels(trace)
    layers = []
    for layer in trace.layers:
        units = order_units(layer, order=order, labels=labels, stats=stats, top=top)
        layers.append(
            {
                "module": layer.module,
                "layer": layer.layer,
                "direction": layer.direction,
                "size": int(layer.h.shape[-1]),
                "units": units,
                **{name: getattr(layer, name)[:, units].tolist() for name in ARRAYS},
                "summary": token_summary(layer),
            }
        )
    return {"tokens": trace.tokens, "tags": trace.tags, "order": order, "top": top, "layers": layers}
