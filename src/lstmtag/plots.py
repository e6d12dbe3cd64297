"""Heatmaps of an LSTM trace: h_t, c_t and the four gates over the tokens, per layer and direction."""

from __future__ import annotations

from pathlib import Path

from lstmtag.inspector import GATES, Trace

TITLES = {
    "h": "h (hidden)",
    "c": "c (cell)",
    "i": "i (input gate)",
    "f": "f (forget gate)",
    "g": "g (cell candidate)",
    "o": "o (output gate)",
}


def token_labels(trace: Trace) -> list[str]:
    """'word/TAG' for the first tag column, or the words alone."""
    if not trace.tags:
        return list(trace.tokens)
    first = next(iter(trace.tags.values()))
    return [f"{token}/{tag['tag']}" for token, tag in zip(trace.tokens, first, strict=True)]


def plot_trace(trace: Trace, path: str | Path, *, units: list[list[int]] | None = None) -> Path:
    """Draw one row of heatmaps per layer and direction (h, c, i, f, g, o) and save as PNG or SVG.

    ``units`` (one list per layer, from ``views.order_units``) draws only those units, in that order,
    labelled by index; a layer with none is left out.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("h", "c", *GATES)
    chosen = units if units is not None else [list(range(layer.h.shape[-1])) for layer in trace.layers]
    shown = [(layer, picked) for layer, picked in zip(trace.layers, chosen, strict=True) if picked]
    rows = len(shown)
    width = max(14.0, 0.45 * len(trace.tokens) * len(names))
    height = 2.6 * rows + 1
    figure, axes = plt.subplots(rows, len(names), figsize=(width, height), squeeze=False)
    labels = token_labels(trace)
    for row, (layer, picked) in enumerate(shown):
        for column, name in enumerate(names):
            axis = axes[row][column]
            values = getattr(layer, name)[:, picked].detach().float().numpy().T  # (units, tokens)
            if name in ("i", "f", "o"):
                limits = {"cmap": "viridis", "vmin": 0.0, "vmax": 1.0}
            else:
                bound = max(float(abs(values).max()), 1e-6)
                limits = {"cmap": "RdBu_r", "vmin": -bound, "vmax": bound}
            image = axis.imshow(values, aspect="auto", interpolation="nearest", **limits)
            axis.set_xticks(range(len(labels)))
            axis.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
            if units is not None and len(picked) <= 40:
                axis.set_yticks(range(len(picked)), [str(u) for u in picked], fontsize=5)
            else:
                axis.set_yticks([])
            if row == 0:
                axis.set_title(TITLES[name], fontsize=9)
            if column == 0:
                axis.set_ylabel(f"{layer.module} L{layer.layer}\n{layer.direction}\n(units)", fontsize=8)
            figure.colorbar(image, ax=axis, fraction=0.046, pad=0.02)
    figure.suptitle(" ".join(trace.tokens), fontsize=11)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / height))  # keep half an inch on top for the title
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
