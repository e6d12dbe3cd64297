"""The ``units``, ``search`` and ``probe`` commands and the terminal drawing of a sentence view.

Thin adapters over ``units``, ``unit_search``, ``probe`` and ``views``; ``cli.py`` registers them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

GATES = ("i", "f", "g", "o")  # as lstmtag.inspector names them (not imported: it would load torch at start-up)

ModelOption = Annotated[str, typer.Option("--model", "-m", help="Model file, or a shipped model's short name (en).")]
CorpusOption = Annotated[
    Path, typer.Option("--corpus", help="CoNLL-U or text (one sentence a line) for a tagger; text for an LM.")
]
InputOption = Annotated[str, typer.Option("--input", help="A tagger's corpus format: conllu, conll, text or jsonl.")]
MaxOption = Annotated[int, typer.Option(help="Read at most this many sentences (tagger) or characters (LM); 0: all.")]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _load(model: str):
    import torch

    import lstmtag

    torch.set_num_threads(1)  # the statistics are sums: one thread leaves the other cores to others
    return lstmtag.load(model)


def _corpus(loaded, corpus: Path, input_format: str, limit: int):
    from lstmtag.corpus_trace import open_corpus

    if not Path(corpus).is_file():
        raise ValueError(f"{corpus}: no such corpus file")
    return open_corpus(loaded, corpus, input_format=input_format, max_sentences=limit, max_chars=limit)


def units(
    model: ModelOption = "en",
    corpus: CorpusOption = ...,
    input_format: InputOption = "conllu",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (shape in the README).")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw saturation and selectivity to a .png/.svg.")] = None,
    top: Annotated[int, typer.Option(help="Labels listed per unit in --json (largest |effect| first).")] = 5,
    min_count: Annotated[int, typer.Option(help="Ignore labels seen on fewer steps than this.")] = 10,
    limit: MaxOption = 0,
) -> None:
    """Per unit over a corpus: mean and spread of h and c, gate saturation, and which labels make it fire."""
    from lstmtag.units import collect

    if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ValueError(f"--plot {plot}: name a .png, .svg or .pdf file (the suffix picks the format)")
    source = _corpus(_load(model), corpus, input_format, limit)
    started = time.perf_counter()
    stats = collect(source)
    seconds = time.perf_counter() - started
    report = stats.to_json(top=top, min_count=min_count)
    err.print(f"{stats.tokens:,} tokens in {seconds:.1f} s ({stats.tokens / seconds:,.0f} tokens/s, 1 thread)")
    if plot is not None:
        from lstmtag.unit_plots import plot_units

        err.print(f"plot written to {plot_units(stats, report, plot, min_count=min_count)}")
    if as_json:
        out.print(json.dumps(report))
        return
    table = Table(
        title="gate saturation: share of steps below 0.1 / above 0.9, mean over units; "
        "f>0.9 often: units whose forget gate is above 0.9 on over half the steps"
    )
    for heading in ("module", "layer", "dir", "units", "|mean h|", *GATES, "f>0.9 often"):
        table.add_column(heading, justify="left" if heading in ("module", "direction") else "right")
    for (module, layer, direction), sums in stats.sums.items():
        n = sums.count
        cells = [
            f"{float(sums.left[g].double().mean()) / n:.2f}/{float(sums.right[g].double().mean()) / n:.2f}"
            for g in GATES
        ]
        remembering = int((sums.right["f"].double() / n > 0.5).sum())
        size = sums.h.numel()
        mean_abs = float((sums.h / n).abs().mean())
        table.add_row(module, str(layer), direction[:3], str(size), f"{mean_abs:.3f}", *cells, str(remembering))
    out.print(table)
    if report["labels"]:
        table = Table(title="most selective units per label (Cohen's d of h; + fires for it, - goes quiet)")
        for heading in ("label", "steps", "units (d)"):
            table.add_column(heading, justify="right" if heading == "steps" else "left")
        for label, count in report["labels"].items():
            if count >= min_count:
                best = ", ".join(f"{name} ({d:+.2f})" for name, d in stats.most_selective(label, top=3))
                table.add_row(label, f"{count:,}", best)
        out.print(table)


def search(
    model: ModelOption = "en",
    corpus: CorpusOption = ...,
    units_spec: Annotated[
        str, typer.Option("--units", help="LAYER:DIRECTION:UNIT,... as `units --json` names them.")
    ] = ...,
    threshold: Annotated[float, typer.Option(help="Every chosen unit's h must be above this.")] = ...,
    module: Annotated[
        str | None, typer.Option(help="Which LSTM (default: the first word-level encoder, or the LM's).")
    ] = None,
    min_length: Annotated[int, typer.Option(help="Shortest span to report, in tokens.")] = 1,
    show: Annotated[int, typer.Option(help="How many spans to print.")] = 20,
    input_format: InputOption = "conllu",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    limit: MaxOption = 0,
) -> None:
    """Find the spans of a corpus where chosen units are all above a threshold (LSTMVis's match), ranked."""
    from lstmtag.unit_search import parse_units
    from lstmtag.unit_search import search as run_search

    source = _corpus(_load(model), corpus, input_format, limit)
    chosen_module = module or source.modules[0]
    refs = parse_units(units_spec, chosen_module, source.modules, source.sizes())
    result = run_search(source, refs, threshold=threshold, min_length=min_length, keep=show)
    spans = result.best()
    if as_json:
        out.print(json.dumps({"matches": result.matches, "spans": [s.to_json() for s in spans]}))
        return
    modules = ", ".join(sorted({ref.module for ref in refs}))
    out.print(f"{result.matches:,} spans of {min_length}+ tokens where {units_spec} > {threshold} ({modules})")
    joiner = source.separator
    for span in spans:
        line = Text.assemble(
            (f"{span.end - span.start:3d} x {span.strength:+.2f}  ", "dim"),
            _visible(span.left),
            joiner,
            ("[" + _visible(span.text) + "]", "bold reverse"),
            joiner,
            _visible(span.right),
        )
        out.print(line)


def probe(
    model: ModelOption = "en",
    train_file: Annotated[Path, typer.Option("--train", help="Gold CoNLL-U the probes learn from.")] = ...,
    dev_file: Annotated[Path, typer.Option("--dev", help="Gold CoNLL-U the probes are scored on.")] = ...,
    ridge: Annotated[float, typer.Option(help="Ridge penalty, relative to each feature's scale.")] = 1e-3,
    limit: MaxOption = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train a linear probe from each layer's h to each gold column; report its dev accuracy per layer."""
    from lstmtag.probe import probe as run_probe

    loaded = _load(model)
    train_source = _corpus(loaded, train_file, "conllu", limit)
    dev_source = _corpus(loaded, dev_file, "conllu", 0)
    started = time.perf_counter()
    report = run_probe(train_source, dev_source, ridge=ridge)
    err.print(f"probes fitted and scored in {time.perf_counter() - started:.1f} s")
    if as_json:
        out.print(json.dumps(report))
        return
    columns = list(report["majority"])
    table = Table(title="linear probe accuracy on dev (ridge least squares from h)")
    for heading in ("module", "features", "size", *columns):
        table.add_column(heading, justify="left" if heading in ("module", "features") else "right")
    table.add_row("-", "majority tag", "-", *(f"{report['majority'][c]:.2%}" for c in columns))
    for row in report["probes"]:
        what = "input (word + chars)" if row["layer"] is None else f"layer {row['layer']} {row['direction']}"
        table.add_row(row["module"], what, str(row["size"]), *(f"{row['dev_accuracy'].get(c, 0):.2%}" for c in columns))
    out.print(table)


def _visible(text: str) -> str:
    return text.replace("\n", "⏎")


def _cell(value: float, gate: bool) -> tuple[str, str]:
    """A value as 5 characters on a background: green for a gate's 0..1, blue-white-red for h, c, g."""
    if gate:
        level = int(max(0.0, min(1.0, value)) * 4)
        style = ["", "on #d9f0d3", "on #a6dba0", "on #5aae61", "on #1b7837"][level]
    else:
        level = int(min(1.0, abs(value)) * 3.99)
        reds, blues = ["", "on #fddbc7", "on #f4a582", "on #d6604d"], ["", "on #d1e5f0", "on #92c5de", "on #4393c3"]
        style = (reds if value > 0 else blues)[level]
    text = f"{value:.2f}" if gate else f"{value:+.2f}"
    return text[:5].rjust(5) + " ", style


def render_view(view: dict, console: Console, *, show: tuple[str, ...] = ("h",)) -> None:
    """Draw a ``views.sentence_view`` to fit the console: token blocks wrap, units down, summary under."""
    tokens = [_visible(t).replace(" ", "␣") for t in view["tokens"]]
    per_block = max(1, (console.width - 9) // 6)
    column = next(iter(view["tags"]), None)  # upos for a tagger, next (the predicted character) for an LM
    first_tags = view["tags"][column] if column is not None else None
    for layer in view["layers"]:
        if not layer["units"]:
            continue
        how = "all units" if view["top"] == 0 or len(layer["units"]) == layer["size"] else f"top {len(layer['units'])}"
        console.print(
            Text(
                f"{layer['module']} layer {layer['layer']} {layer['direction']}: {how} of {layer['size']} units, by {view['order']}",
                style="bold",
            )
        )
        for start in range(0, len(tokens), per_block):
            stop = min(len(tokens), start + per_block)
            console.print(Text("token".ljust(9) + "".join(t[:5].rjust(5) + " " for t in tokens[start:stop])))
            if first_tags is not None:
                console.print(
                    Text(
                        str(column)[:8].ljust(9)
                        + "".join(str(x["tag"])[:5].rjust(5) + " " for x in first_tags[start:stop]),
                        style="dim",
                    )
                )
            for name in show:
                for k, unit in enumerate(layer["units"]):
                    line = Text(f"{name}[{unit}]".ljust(9))
                    for t in range(start, stop):
                        line.append(*_cell(layer[name][t][k], name in ("i", "f", "o")))
                    console.print(line)
            for key, label in (
                ("h_norm", "|h|"),
                ("c_norm", "|c|"),
                *((g, f"mean {g}") for g in GATES),
                ("kept", "f keeps"),
            ):
                values = [layer["summary"][t][key] for t in range(start, stop)]
                console.print(
                    Text(
                        label.ljust(9)
                        + "".join(("    -" if v is None else f"{v:5.2f}"[:5].rjust(5)) + " " for v in values),
                        style="italic",
                    )
                )
        console.print()
