"""The ``lstmtag`` command: thin wrappers over the library. The only module that prints.

Bad input (a malformed file, a broken model file, a wrong setting) ends with a one-line error that
names the file and line and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from lstmtag import memory
from lstmtag.checkpoint import ModelFileError
from lstmtag.data import DataError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="LSTM sequence models you can see inside.")
lm_app = typer.Typer(add_completion=False, no_args_is_help=True, help="LSTM language models.")
app.add_typer(lm_app, name="lm")
# markup=False: text from the data (tokens, file names, messages) is printed literally, never read as rich markup.
console = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)


def friendly_errors(command):
    """Turn the library's input errors into a clear message and exit code 2.

    SIGTERM raises ``SystemExit(143)`` while the command runs, so the clean-up that runs for
    exceptions (an output file's temporary copy is removed) runs for a plain ``kill`` too.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        previous = _on_sigterm(_terminate)
        try:
            return command(*args, **kwargs)
        except (DataError, ModelFileError, ValueError, OSError, RecursionError) as error:
            error_line(_describe(error))
            raise typer.Exit(2) from None
        except MemoryError:
            error_line("out of memory (is the input within the documented limits?)")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("interrupted")
            raise typer.Exit(130) from None
        finally:
            _on_sigterm(previous)

    return wrapper


def error_line(message: str) -> None:
    """``error: MESSAGE`` on stderr, the message printed literally (brackets in data are not markup)."""
    console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False)


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and not isinstance(error, (DataError, ModelFileError)) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    if isinstance(error, RecursionError):
        return "input nested too deeply"
    return str(error)


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _on_sigterm(handler):
    """Install ``handler`` for SIGTERM and return the previous one (a no-op outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler if handler is not None else signal.SIG_DFL)


ModelOption = Annotated[str, typer.Option("--model", "-m", help="Model file, or a shipped model's short name (en).")]
OutOption = Annotated[Path, typer.Option("--out", help="Where to write the best model (.safetensors).")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a setting: section.key=value.")]
MaxMinutesOption = Annotated[float | None, typer.Option(help="Stop after this many minutes, keeping the best model.")]
ResumeOption = Annotated[bool, typer.Option(help="Continue from the training state saved beside --out.")]
SegmenterOption = Annotated[
    str | None,
    typer.Option(help="A trained segmenter file for raw text (default: the model's own, else the rule tokenizer)."),
]
NprocOption = Annotated[
    int | None,
    typer.Option("--nproc", help="Train on this many data-parallel workers on this machine (starts torchrun)."),
]
PortOption = Annotated[int | None, typer.Option("--port", help="The workers' rendezvous port (default: a free one).")]
DeviceOption = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="auto, cpu, cuda or cuda:N (default: the config's, auto: a GPU if torch sees one). "
        "Under torchrun each worker takes cuda:LOCAL_RANK.",
    ),
]
PrecisionOption = Annotated[
    str | None,
    typer.Option(help="float, int8 or bf16 weights for the encoder (default: what the model file names, else float)."),
]


@app.command()
@friendly_errors
def train(
    train_file: Annotated[
        Path, typer.Option("--train", help="Training data (CoNLL-U unless data.format says otherwise).")
    ],
    dev_file: Annotated[Path, typer.Option("--dev", help="Development data, for early stopping.")],
    out_file: OutOption,
    config_file: Annotated[Path | None, typer.Option("--config", help="TOML preset, e.g. configs/pos.toml.")] = None,
    overrides: SetOption = None,
    max_minutes: MaxMinutesOption = None,
    resume: ResumeOption = False,
    nproc: NprocOption = None,
    port: PortOption = None,
    device: DeviceOption = None,
) -> None:
    """Train a tagger (LSTM, LSTM+CRF or HMM) and keep the model that scores best on dev."""
    _train(
        train_file,
        dev_file,
        out_file,
        config_file,
        overrides,
        max_minutes,
        resume,
        nproc=nproc,
        port=port,
        device=device,
    )


@app.command()
@friendly_errors
def distill(
    teacher: Annotated[str, typer.Argument(help="The teacher: a tagger or ensemble file, or a shipped name (en).")],
    train_file: Annotated[Path, typer.Option("--train", help="Training data (the teacher's training data).")],
    dev_file: Annotated[Path, typer.Option("--dev", help="Development data, for early stopping.")],
    out_file: OutOption,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="The student's TOML preset, e.g. configs/student.toml.")
    ] = None,
    overrides: SetOption = None,
    max_minutes: MaxMinutesOption = None,
    resume: ResumeOption = False,
    weight: Annotated[
        float, typer.Option(help="Weight of the teacher's distributions; the gold labels get 1 - weight.")
    ] = 0.5,
    nproc: NprocOption = None,
    port: PortOption = None,
    device: DeviceOption = None,
) -> None:
    """Train a small, fast student tagger on a teacher's tag distributions (and the gold labels)."""
    from lstmtag.predict import Predictor

    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"--weight must be between 0 and 1, got {weight}")
    teacher_predictor = Predictor.load(teacher, precision="float")
    _train(
        train_file,
        dev_file,
        out_file,
        config_file,
        overrides,
        max_minutes,
        resume,
        teacher_predictor,
        weight,
        nproc=nproc,
        port=port,
        device=device,
    )


@app.command()
@friendly_errors
def export(
    model: Annotated[str, typer.Argument(help="Model file or shipped short name.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the ONNX model (.onnx).")],
    int8: Annotated[bool, typer.Option("--int8", help="int8 weights (ONNX Runtime dynamic quantization).")] = False,
) -> None:
    """Write a tagger's network (emissions; heads decode outside) as ONNX, for ONNX Runtime."""
    from lstmtag.models import load_tagger
    from lstmtag.onnx_backend import export as export_onnx

    export_onnx(load_tagger(model), out_file, int8=int8)
    console.print(f"wrote {out_file} ({out_file.stat().st_size / 1e6:.1f} MB)")


def _train(
    train_file: Path,
    dev_file: Path,
    out_file: Path,
    config_file: Path | None,
    overrides: list[str] | None,
    max_minutes: float | None,
    resume: bool,
    teacher=None,
    weight: float = 0.5,
    *,
    nproc: int | None = None,
    port: int | None = None,
    device: str | None = None,
) -> None:
    from lstmtag.config import load_config
    from lstmtag.data import load_labelled
    from lstmtag.models import for_config
    from lstmtag.train import train_tagger, with_overrides

    config = load_config(config_file, overrides)
    if max_minutes is not None:
        config = with_overrides(config, max_minutes=max_minutes)
    if device is not None:
        config = with_overrides(config, device=device)
    where = _device(config.train.device, nproc)
    train_data = load_labelled(train_file, config.data.format, config.data.columns)
    dev_data = load_labelled(dev_file, config.data.format, config.data.columns)
    _launch_if_asked(nproc, port)  # after the checks above: bad input is one error line, before any worker starts
    with _workers(where) as (report, workers):
        learns = (  # a segmenter learns from the text and tokens, not from label columns
            "sentences and tokens of the text"
            if for_config(config).declared(config).segments
            else f"columns {list(config.data.columns)}"
        )
        report.print(f"train: {len(train_data)} sentences, dev: {len(dev_data)}; learning {learns}")
        if teacher is not None:
            report.print(f"teacher: {teacher.columns}; computing its tag distributions on train")
        command = "lstmtag " + " ".join(sys.argv[1:])

        def describe(progress) -> str:
            return (
                f"epoch {progress.epoch}: dev {progress.score:.4f}  best {progress.best_score:.4f}  "
                f"{progress.elapsed / 60:.1f} min"
            )

        with _training_display(report, lambda loss: f"{loss:.4f}", describe) as show:
            info = {"command": command, "train_file": str(train_file)}
            if workers > 1:
                info["workers"] = workers
            result = train_tagger(
                train_data,
                dev_data,
                config,
                out_file,
                resume=resume,
                on_progress=show,
                info=info,
                teacher=teacher,
                distill_weight=weight,
            )
        if not out_file.is_file():
            raise ValueError(f"{out_file}: training ended ({result.stopped_by}) without writing a model")
        report.print(
            f"best dev accuracy {result.best_accuracy:.4f} at epoch {result.best_epoch}; "
            f"stopped by {result.stopped_by} after {result.seconds / 60:.1f} min; model: {out_file}"
            + (f"; {workers} workers" if workers > 1 else "")
        )


@contextlib.contextmanager
def _training_display(report: Console, loss_text, describe):
    """The one live display of every trainer; yields the ``on_progress`` callback for the loop.

    A bar over the epoch's steps with the loss, tokens/s and the last dev score, and a line per evaluation.
    """
    with Progress(
        TextColumn("epoch {task.fields[epoch]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}  {task.fields[speed]:,.0f} tok/s  dev {task.fields[score]}"),
        TimeElapsedColumn(),
        console=report,
    ) as bar:
        task = bar.add_task("train", total=1, epoch=0, loss="-", speed=0.0, score="-")

        def show(progress) -> None:
            if progress.event == "eval":
                bar.update(task, score=f"{progress.score:.4f} (best {progress.best_score:.4f})")
                bar.console.print(describe(progress))
            else:
                bar.update(
                    task,
                    completed=progress.step,
                    total=progress.steps,
                    epoch=progress.epoch,
                    loss=loss_text(progress.loss),
                    speed=progress.tokens_per_second,
                )

        yield show


def _launch_if_asked(nproc: int | None, port: int | None) -> None:
    """With ``--nproc N`` (and not already a torchrun worker): run this command on N workers, then exit."""
    from lstmtag import distributed

    if nproc is None or distributed.launched_by_torchrun():
        if port is not None and nproc is None:
            raise ValueError("--port goes with --nproc (under torchrun, give torchrun --master-port)")
        return
    code = distributed.launch(nproc, distributed.without_launch_options(sys.argv[1:]), port=port)
    if code != 0:
        error_line(f"the {nproc} workers stopped with exit code {code} (their messages are above)")
    raise typer.Exit(code)


def _device(setting: str, nproc: int | None):
    """Where this process trains (``devices.resolve``): checked before any worker starts, for one clear error."""
    from lstmtag import devices, distributed

    launching = nproc is not None and not distributed.launched_by_torchrun()
    return devices.resolve(setting, local_workers=nproc if launching else None)


@contextlib.contextmanager
def _workers(device=None):
    """Join torchrun's workers if started by it; yields (console for reports, number of workers).

    Only rank 0 reports; a failure of the link between workers becomes one clear error line.
    ``device``: where this worker trains, which picks the process group's backend.
    """
    import torch.distributed as dist

    from lstmtag import distributed

    try:
        context = distributed.setup(device)
    except (RuntimeError, dist.DistError) as error:
        raise ValueError(f"could not join the other workers: {error}".splitlines()[0]) from None
    report = console if context.main else Console(stderr=True, quiet=True)
    try:
        yield report, context.world
    except RuntimeError as error:
        if not distributed.lost_peer(error):
            raise
        raise ValueError(f"rank {context.rank}: lost the other workers ({str(error).splitlines()[0]})") from None
    finally:
        distributed.teardown()


@app.command()
@friendly_errors
def evaluate(
    model: Annotated[str, typer.Argument(help="Model file or shipped short name.")],
    data_file: Annotated[Path, typer.Argument(help="Gold data in the model's format.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    precision: PrecisionOption = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="Tag the gold file's text from raw and score it as CoNLL 2018 does.")
    ] = False,
    segmenter: SegmenterOption = None,
) -> None:
    """Accuracy (all, known and unknown words), per-tag scores, confusions and speed; or --raw: CoNLL 2018 F1."""
    from lstmtag.data import load_labelled
    from lstmtag.metrics import shown_classes
    from lstmtag.predict import UFEATS, Predictor

    predictor = Predictor.load(model, precision=precision, segmenter=segmenter)
    config = predictor.bundle.config
    if raw:
        _evaluate_raw(predictor, data_file, as_json)
        return
    sentences = load_labelled(data_file, config.data.format, predictor.columns)
    report = predictor.evaluate(sentences)
    if as_json:
        out.print(json.dumps(report))
        return
    for name, column in report["columns"].items():
        filled = f" ({FEATS_FROM[report['feats_from']]})" if name == "feats" and "feats_from" in report else ""
        filled = " (universal features only, as CoNLL 2018's UFeats)" if name == UFEATS else filled
        per_tag = shown_classes(column["per_tag"])
        more = len(column["per_tag"]) - len(per_tag)
        table = Table(
            title=f"{name}{filled}: accuracy {column['accuracy']:.2%}  known {column['known_accuracy']:.2%}  "
            f"unknown {column['unknown_accuracy']:.2%} ({column['unknown_tokens']} unknown tokens)"
        )
        for heading in ("tag", "precision", "recall", "F1", "support"):
            table.add_column(heading, justify="left" if heading == "tag" else "right")
        for tag, scores in per_tag.items():
            table.add_row(
                tag,
                f"{scores['precision']:.3f}",
                f"{scores['recall']:.3f}",
                f"{scores['f1']:.3f}",
                str(scores["support"]),
            )
        out.print(table)
        if more:
            out.print(
                f"{name}: the {len(per_tag)} most frequent of {len(column['per_tag']):,} classes; --json lists all"
            )
        confusions = ", ".join(f"{c['gold']}->{c['predicted']} {c['count']}" for c in column["confusions"])
        out.print(f"top confusions (gold->predicted): {confusions}")
        if "spans" in column:
            spans = column["spans"]
            out.print(f"spans: precision {spans['precision']:.2%} recall {spans['recall']:.2%} F1 {spans['f1']:.2%}")
    summary = Table(title="accuracy per column")
    for heading in ("column", "all", "known", "unknown", "classes"):
        summary.add_column(heading, justify="left" if heading == "column" else "right")
    for name, column in report["columns"].items():
        accuracies = (column[key] for key in ("accuracy", "known_accuracy", "unknown_accuracy"))
        summary.add_row(name, *(f"{value:.2%}" for value in accuracies), f"{len(column['per_tag']):,}")
    out.print(summary)
    out.print(
        f"{report['sentences']} sentences, {report['tokens']} tokens, {report['seconds']:.2f} s, "
        f"{report['tokens_per_second']:,.0f} tokens/s"
    )


FEATS_FROM = {"whole": "whole-string head", "per_feature": "assembled from the per-feature heads"}


def _evaluate_raw(predictor, data_file: Path, as_json: bool) -> None:
    from lstmtag.data import load_labelled
    from lstmtag.pipeline import evaluate_raw

    gold = load_labelled(data_file, "conllu", [])
    report = evaluate_raw(predictor, gold, predictor.segmenter)
    report["segmenter"] = getattr(predictor.segmenter, "info", {}).get("source", "rule tokenizer")
    if as_json:
        out.print(json.dumps(report))
        return
    table = Table(title=f"{data_file} from raw text ({report['segmenter']}): CoNLL 2018 scores")
    for heading in ("metric", "precision", "recall", "F1", "aligned accuracy"):
        table.add_column(heading, justify="left" if heading == "metric" else "right")
    for name, score in report["scores"].items():
        aligned = f"{score['aligned_accuracy']:.2%}" if "aligned_accuracy" in score else ""
        table.add_row(name, f"{score['precision']:.2%}", f"{score['recall']:.2%}", f"{score['f1']:.2%}", aligned)
    out.print(table)


@app.command()
@friendly_errors
def tag(
    input_file: Annotated[str, typer.Argument(help="Input file, or - for standard input.")] = "-",
    model: ModelOption = "en",
    input_format: Annotated[
        str, typer.Option("--input", help="conllu, conll, text (tokens split on spaces), raw or jsonl.")
    ] = "conllu",
    output_format: Annotated[
        str, typer.Option("--output", help="conllu, tsv, jsonl, or table (for reading).")
    ] = "conllu",
    output_file: Annotated[
        Path | None, typer.Option("--out", help="Write here (atomically) instead of stdout.")
    ] = None,
    precision: PrecisionOption = None,
    segmenter: SegmenterOption = None,
) -> None:
    """Tag a file, streaming: CoNLL-U keeps every other column, comment and multiword line.

    Raw text (``--input raw``) is split by the segmenter and written with ``# sent_id``, ``# text``,
    ``# newpar``, multiword tokens and ``SpaceAfter=No``.
    """
    from lstmtag.data import atomic_writer, format_conllu, format_jsonl, format_tsv, read_sentences
    from lstmtag.predict import Predictor

    if output_format not in ("conllu", "tsv", "jsonl", "table"):
        raise ValueError(f"--output must be conllu, tsv, jsonl or table, got {output_format!r}")
    if input_format not in ("conllu", "conll", "text", "raw", "jsonl"):
        raise ValueError(f"--input must be conllu, conll, text, raw or jsonl, got {input_format!r}")
    if output_file is not None and output_file.is_dir():
        raise ValueError(f"{output_file}: is a directory; --out names the file to write")
    memory.bound_heap()  # a long stream must not keep every batch's freed tensors
    predictor = Predictor.load(model, precision=precision, segmenter=segmenter)
    memory.freeze_loaded()  # the collector's full passes skip torch and the model from here on
    data_format = predictor.bundle.config.data.format
    source_format = data_format if input_format == "conllu" and data_format == "conll" else input_format

    def write(handle) -> None:
        # A terminal's table folds long cells to fit its width; a file or a pipe gets each table at its own width.
        wide = Console(file=handle, highlight=False, soft_wrap=True, width=100_000)
        table_console = out if handle is sys.stdout and out.is_terminal else wide
        count = 0
        for sentence, tagged in predictor.stream(
            read_sentences(input_file, source_format, segmenter=predictor.segmenter)
        ):
            count += 1
            if output_format == "table":
                print_table(sentence.words, tagged, table_console)
            elif output_format == "conllu":
                handle.write(format_conllu(sentence, tagged.tags, "conll" if source_format == "conll" else "conllu"))
            elif output_format == "tsv":
                handle.write(format_tsv(sentence, tagged.tags, tagged.probs))
            else:
                handle.write(format_jsonl(sentence, tagged.tags, tagged.probs))
        if count == 0:  # raised inside the atomic writer, so an existing --out file is kept as it was
            raise DataError("<stdin>" if input_file == "-" else input_file, 0, "no sentences to tag; nothing written")

    if output_file is None:
        write(sys.stdout)
    else:
        with atomic_writer(output_file) as handle:
            write(handle)


def print_table(words: list[str], tagged, console_out: Console) -> None:
    """A readable table: token, then each column's tag and its probability (text shown literally).

    A word's features stand one per line (``Number=Sing`` under ``Mood=Ind``, not joined by ``|``); in
    a narrow terminal a long cell folds onto more lines rather than being cut short.
    """
    table = Table(show_edge=False)
    table.add_column("token", overflow="fold")
    for name in tagged.tags:
        table.add_column(name.upper(), overflow="fold")
        table.add_column("p", justify="right", no_wrap=True)
    for position, word in enumerate(words):
        cells = [word]
        for name in tagged.tags:
            tag = tagged.tags[name][position]
            cells += ["\n".join(tag.split("|")) if name == "feats" else tag, f"{tagged.probs[name][position]:.3f}"]
        table.add_row(*map(Text, cells))  # Text: a token like '[b]' is shown, not read as rich markup
    console_out.print(table)


@app.command()
@friendly_errors
def inspect(
    sentence: Annotated[
        str, typer.Argument(help="A sentence; tokens are split on whitespace (text for a character LM).")
    ],
    model: ModelOption = "en",
    as_json: Annotated[bool, typer.Option("--json", help="Every vector in full, as JSON.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw heatmaps to this .png or .svg file.")] = None,
    order: Annotated[str, typer.Option(help="variance, tag:LABEL or units:LIST (indices or unit names).")] = "variance",
    top: Annotated[int, typer.Option(help="Units shown per layer, most telling first.")] = 32,
    all_units: Annotated[bool, typer.Option("--all-units", help="Show every unit, in the chosen order.")] = False,
    show: Annotated[str, typer.Option(help="Arrays drawn per unit: any of h,c,i,f,g,o.")] = "h",
    stats: Annotated[
        Path | None, typer.Option(help="`units --json` output: order tag:LABEL by corpus selectivity.")
    ] = None,
) -> None:
    """Show h_t, c_t and the input/forget/cell/output gates, token by token, per layer and direction."""
    import lstmtag

    if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ValueError(f"--plot {plot}: name a .png, .svg or .pdf file (the suffix picks the format)")
    trace = lstmtag.load(model).inspect(sentence)  # each model splits text into the units it reads
    from lstmtag.units_cli import render_view
    from lstmtag.views import ARRAYS, load_stats, sentence_view

    arrays = tuple(name.strip() for name in show.split(",") if name.strip())
    if not arrays or any(name not in ARRAYS for name in arrays):
        raise ValueError(f"--show {show!r}: choose from {','.join(ARRAYS)}")
    view = sentence_view(
        trace, order=order, top=0 if all_units else top, stats=load_stats(stats) if stats is not None else None
    )
    if plot is not None:
        from lstmtag.plots import plot_trace

        console.print(f"plot written to {plot_trace(trace, plot, units=[layer['units'] for layer in view['layers']])}")
    if as_json:
        out.print(json.dumps(trace.to_json()))
        return
    render_view(view, out, show=arrays)


@lm_app.command("train")
@friendly_errors
def lm_train(
    text_file: Annotated[Path, typer.Option("--text", help="Plain UTF-8 text to train on.")],
    out_file: OutOption,
    unit: Annotated[str | None, typer.Option(help="char or word (overrides lm.unit).")] = None,
    valid_file: Annotated[Path | None, typer.Option("--valid", help="Validation text (default: the last 10%).")] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="TOML preset, e.g. configs/lm_char.toml.")
    ] = None,
    overrides: SetOption = None,
    max_minutes: MaxMinutesOption = None,
    resume: ResumeOption = False,
    nproc: NprocOption = None,
    port: PortOption = None,
    device: DeviceOption = None,
) -> None:
    """Train an LSTM language model with truncated BPTT; the hidden state carries across batches."""
    from dataclasses import replace

    from lstmtag.config import load_config
    from lstmtag.lm_train import read_text_file, train_lm
    from lstmtag.metrics import headline

    config = load_config(config_file, overrides)
    changes = {k: v for k, v in (("unit", unit), ("max_minutes", max_minutes), ("device", device)) if v is not None}
    config = replace(config, lm=replace(config.lm, **changes))
    where = _device(config.lm.device, nproc)
    text = read_text_file(text_file)
    valid = read_text_file(valid_file) if valid_file is not None else None
    _launch_if_asked(nproc, port)  # after the checks above: bad input is one error line, before any worker starts
    per = headline(0.0, config.lm.unit)[0]

    def measure(nats: float) -> float:
        return headline(nats, config.lm.unit)[1]

    def describe(progress) -> str:
        return (
            f"step {progress.global_step}: valid loss {progress.score:.4f} nats ({per} {measure(progress.score):.3f}), "
            f"best {progress.best_score:.4f}, {progress.elapsed / 60:.1f} min"
        )

    with _workers(where) as (report, workers):
        with _training_display(report, lambda loss: f"{loss:.4f} ({per} {measure(loss):.3f})", describe) as show:
            info = {"command": "lstmtag " + " ".join(sys.argv[1:]), "text_file": str(text_file)}
            if workers > 1:
                info["workers"] = workers
            result = train_lm(text, config, out_file, valid_text=valid, resume=resume, on_progress=show, info=info)
        report.print(
            f"best valid loss {result.best_valid_loss:.4f} nats after {result.steps} steps, "
            f"{result.seconds / 60:.1f} min (stopped by {result.stopped_by})"
            + (f"; best by {result.milestones}" if result.milestones else "")
            + (f"; {workers} workers" if workers > 1 else "")
        )


@lm_app.command()
@friendly_errors
def generate(
    model: ModelOption,
    prompt: Annotated[str, typer.Option(help="Text to continue.")] = "",
    length: Annotated[int, typer.Option(help="How many tokens to generate.")] = 500,
    temperature: Annotated[float, typer.Option(help="Below 1 is safer, above 1 wilder.")] = 1.0,
    top_k: Annotated[int, typer.Option(help="Sample only from the k likeliest tokens (0: all).")] = 0,
    seed: Annotated[int | None, typer.Option(help="Random seed, for reproducible samples.")] = None,
) -> None:
    """Continue a prompt, streaming each token as it is produced (one LSTM step per token)."""
    import lstmtag
    from lstmtag.limits import MAX_GENERATE_LENGTH

    if not 0 <= length <= MAX_GENERATE_LENGTH:
        raise ValueError(f"--length must be between 0 and {MAX_GENERATE_LENGTH:,}, got {length}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"--temperature must be a finite number above 0, got {temperature}")
    if top_k < 0:
        raise ValueError(f"--top-k must be 0 (all tokens) or more, got {top_k}")
    language_model = _load_lm(lstmtag, model)
    unknown = sorted({ch for ch in prompt if ch not in language_model.vocab}) if language_model.is_char_model else []
    if unknown:
        console.print(f"note: characters not in the model's vocabulary are read as <unk>: {unknown}")
    sys.stdout.write(prompt)
    for piece in language_model.generate(prompt, length, temperature=temperature, top_k=top_k, seed=seed):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


@lm_app.command()
@friendly_errors
def score(
    model: ModelOption,
    text_file: Annotated[str, typer.Argument(help="Text file, or - for standard input.")],
    chunk_chars: Annotated[
        int, typer.Option(help="Read this many bytes at a time (the score does not depend on it).")
    ] = 65536,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Perplexity and bits per token of a file of any size, streamed with the state carried."""
    import lstmtag
    from lstmtag.data import text_chunks

    if chunk_chars < 1:
        raise ValueError(f"--chunk-chars must be at least 1, got {chunk_chars}")
    language_model = _load_lm(lstmtag, model)
    # Word models get whole lines (a chunk ends at a line end); broken or binary input stops at once.
    chunks = text_chunks(text_file, chunk_bytes=chunk_chars, lines=not language_model.is_char_model)
    result = language_model.score(chunks)
    if as_json:
        out.print(json.dumps(result))
    else:
        out.print(
            f"{result['tokens']} tokens: loss {result['loss']:.4f} nats, {result['bits_per_token']:.4f} bits per "
            f"{'character' if language_model.is_char_model else 'word'}, perplexity {result['perplexity']:.3f}"
        )


def _load_lm(lstmtag, model: str):
    loaded = lstmtag.load(model)
    if not loaded.capabilities.generates:
        raise ValueError(f"{model} is a tagger, not a language model")
    return loaded


@app.command()
@friendly_errors
def serve(
    models: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="A model to load: en, PATH or NAME=PATH (repeat).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            help="Extra wait for other requests to batch with (requests arriving while a batch runs are batched anyway)."
        ),
    ] = 0.0,
    precision: PrecisionOption = None,
    segmenter: SegmenterOption = None,
    corpus: Annotated[Path | None, typer.Option(help="CoNLL-U file the page's unit search reads.")] = None,
) -> None:
    """Serve taggers over HTTP (POST /tag, POST /inspect, GET /models, /health, /docs) and the web page at /."""
    import uvicorn

    from lstmtag.serve import Limits, create_app, load_predictors

    memory.bound_heap()  # a storm of requests must not leave the server holding what it freed
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535, got {port}")
    predictors = load_predictors(models or ["en"], precision=precision, segmenter=segmenter)
    memory.freeze_loaded()
    console.print(f"serving {sorted(predictors)} on http://{host}:{port}/ (API docs at /docs)")
    if corpus is not None and not corpus.is_file():
        raise ValueError(f"--corpus {corpus}: no such file")
    app_ = create_app(predictors, Limits(max_wait_ms=max_wait_ms), corpus=corpus)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


# Commands kept in modules of their own: combining/packing models, and the inspector's corpus tools.
from lstmtag import pack_cli, units_cli  # noqa: E402

for _name, _command in (
    ("ensemble", pack_cli.ensemble),
    ("pack", pack_cli.pack),
    ("units", units_cli.units),
    ("search", units_cli.search),
    ("probe", units_cli.probe),
):
    app.command(_name)(friendly_errors(_command))
