"""Pictures of ``units`` statistics: gate saturation per layer, and the most selective unit per label.

The top row follows Karpathy, Johnson & Fei-Fei (2015, fig. 3): one point per unit, the share of
steps its gate is left-saturated (< 0.1) across, right-saturated (> 0.9) up; a unit in the top left
corner keeps its gate open nearly always (for f: a unit that remembers), one near the origin works
in the gate's linear middle. The bottom panel shows, per label, the unit whose h best tells it apart.
"""

from __future__ import annotations

from pathlib import Path

from lstmtag.inspector import GATES
from lstmtag.units import UnitStats

GATE_NAMES = {"i": "input gate i", "f": "forget gate f", "g": "candidate g (as (g+1)/2)", "o": "output gate o"}


def plot_units(stats: UnitStats, report: dict, path: str | Path, *, min_count: int = 10) -> Path:
    """Write the saturation scatter (one panel per gate) and the selectivity bars to a PNG/SVG/PDF file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for label, count in report["labels"].items() if count >= min_count]
    figure = plt.figure(figsize=(16, 4.2 + (0.28 * len(labels) + 1 if labels else 0)))
    grid = figure.add_gridspec(2 if labels else 1, 4, height_ratios=[4.2, 0.28 * len(labels) + 1] if labels else None)
    colours = plt.get_cmap("tab10")
    for column, gate in enumerate(GATES):
        axis = figure.add_subplot(grid[0, column])
        for index, ((module, layer, direction), sums) in enumerate(stats.sums.items()):
            n = sums.count
            axis.scatter(
                (sums.left[gate].double() / n).numpy(),
                (sums.right[gate].double() / n).numpy(),
                s=6,
                alpha=0.6,
                color=colours(index % 10),
                label=f"{module.replace('.encoder', '')} L{layer} {direction[:3]}",
            )
        axis.plot([0, 1], [1, 0], color="#bbb", linewidth=0.8)
        axis.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), title=GATE_NAMES[gate])
        axis.set_xlabel("share of steps < 0.1 (left-saturated)", fontsize=8)
        if column == 0:
            axis.set_ylabel("share of steps > 0.9 (right-saturated)", fontsize=8)
    figure.axes[0].legend(fontsize=7, markerscale=2, loc="upper right")
    if labels:
        axis = figure.add_subplot(grid[1, :])
        best = [stats.most_selective(label, top=1)[0] for label in labels]
        values = [d for _, d in best]
        axis.barh(range(len(labels)), values, color=["#d6604d" if d > 0 else "#4393c3" for d in values])
        axis.set_yticks(range(len(labels)), [f"{label} ({report['labels'][label]:,})" for label in labels], fontsize=8)
        for row, (name, d) in enumerate(best):
            axis.text(d, row, f" {name} ", va="center", ha="left" if d > 0 else "right", fontsize=7)
        axis.axvline(0, color="#444", linewidth=0.8)
        axis.invert_yaxis()
        axis.set_xlabel("Cohen's d of h, steps with the label against steps without (most selective unit per label)")
        limit = max(abs(v) for v in values) * 1.6
        axis.set_xlim(-limit, limit)
    figure.suptitle(f"units over {stats.tokens:,} steps", fontsize=11)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
