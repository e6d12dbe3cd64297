"""The ``ensemble`` and ``pack`` commands: make a tagger file ready to ship.

Both end the same way (``finish``): weights rounded to float16, the precision the model tags with by
default recorded, each input and the result scored on dev with the weights as saved. ``ensemble``
first averages several taggers; ``pack`` takes one (a distilled student, say) as it is, and can store
a lemma lexicon built from the training treebank (``--lemma-lexicon``, lexicon.py).
``cli.py`` registers them.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

OutOption = Annotated[Path, typer.Option("--out", help="Where to write the model (.safetensors).")]
DevOption = Annotated[Path | None, typer.Option("--dev", help="Score the input(s) and the result on this file.")]
HalfOption = Annotated[bool, typer.Option(help="Store weights as float16 (half the size).")]
LexiconOption = Annotated[
    Path | None,
    typer.Option(
        "--lemma-lexicon",
        help="Store a (form, XPOS) -> lemma table built from this training treebank (CoNLL-U); its lemmas win "
        "over the lemma head's edit scripts.",
    ),
]
PrecisionOption = Annotated[
    str | None,
    typer.Option(help="Record float, int8 or bf16 as the precision the model tags with by default; --dev uses it."),
]


def ensemble(
    models: Annotated[list[str], typer.Argument(help="Two or more LSTM tagger files trained on the same data.")],
    out_file: OutOption,
    dev_file: DevOption = None,
    half: HalfOption = True,
    precision: PrecisionOption = None,
) -> None:
    """Combine taggers into one that averages their tag probabilities (train members with different seeds)."""
    from lstmtag.models import ensemble as combine
    from lstmtag.models import load_tagger

    if len(models) < 2:
        raise ValueError("ensemble needs two or more models; `lstmtag pack` prepares a single one")
    bundles = [load_tagger(name) for name in models]
    combined = combine(bundles, list(models))
    finish(
        combined,
        list(zip(models, bundles, strict=True)),
        out_file,
        dev_file,
        half=half,
        precision=precision,
        label="ensemble",
    )
    size = out_file.stat().st_size / 1e6
    err.print(f"ensemble of {len(models)} written to {out_file} ({size:.1f} MB)")


def pack(
    model: Annotated[str, typer.Argument(help="A trained tagger file.")],
    out_file: OutOption,
    dev_file: DevOption = None,
    half: HalfOption = True,
    precision: PrecisionOption = None,
    lexicon_file: LexiconOption = None,
) -> None:
    """Prepare one tagger to ship: float16 weights, a default tagging precision, a lemma lexicon, checked on dev."""
    from lstmtag.models import load_tagger

    bundle = load_tagger(model)
    finish(bundle, [], out_file, dev_file, half=half, precision=precision, label="packed", lexicon_file=lexicon_file)
    err.print(f"packed {model} into {out_file} ({out_file.stat().st_size / 1e6:.1f} MB)")


def finish(
    bundle,
    inputs: list,
    out_file: Path,
    dev_file: Path | None,
    *,
    half: bool,
    precision: str | None,
    label: str,
    lexicon_file: Path | None = None,
) -> None:
    """Round, record and score ``bundle`` (and each of ``inputs``, (name, bundle) pairs), then save it.

    ``lexicon_file``: the training treebank to build ``bundle``'s lemma lexicon from (replacing any it has).
    """
    from lstmtag.data import load_labelled
    from lstmtag.models import round_to_half, save_tagger
    from lstmtag.predict import Predictor
    from lstmtag.runtime import check_precision

    # An ensemble is made by this command; a packed model keeps the command that trained it.
    command = "lstmtag " + " ".join(sys.argv[1:])
    if label == "ensemble":
        bundle.info["command"] = command
    else:
        if "packed_by" in bundle.info:  # packed again: the first packing stays on record
            bundle.info.setdefault("first_packed_by", bundle.info["packed_by"])
        bundle.info["packed_by"] = command
    if precision is not None:
        check_precision(precision)
        bundle.info["precision"] = precision
    if half:
        round_to_half(bundle.model)  # so the dev scores below are those of the weights saved
    if lexicon_file is not None:
        bundle.lexicon = lemma_lexicon(bundle, lexicon_file, precision=precision)
        bundle.info["lemma_lexicon"] = {"train_file": str(lexicon_file), "entries": len(bundle.lexicon)}
        numbers = ", numbers lose their thousands commas" if bundle.lexicon.numbers else ""
        out.print(f"lemma lexicon: {len(bundle.lexicon):,} (form, {bundle.lexicon.column}) entries{numbers}")
    if dev_file is not None:
        dev = load_labelled(dev_file, bundle.config.data.format, Predictor(bundle).columns)
        for name_, each in [*inputs, (label, bundle)]:
            score = Predictor(each, precision=precision).score(dev)
            shown = "  ".join(f"{name} {value:.2%}" for name, value in score.columns.items())
            out.print(f"{name_}: dev {shown}  mean {score.mean:.2%}")
        bundle.info["dev_accuracy"] = score.mean
        if lexicon_file is not None:
            alone = Predictor(replace(bundle, lexicon=None), precision=precision).score(dev).columns["lemma"]
            out.print(
                f"dev lemma: {alone:.2%} from the edit scripts alone, {score.columns['lemma']:.2%} with the lexicon"
            )
    save_tagger(out_file, bundle, half=half)


def lemma_lexicon(bundle, train_file: Path, *, precision: str | None):
    """``bundle``'s lemma lexicon from ``train_file``, left without the pairs its lemma head gets right anyway.

    Keyed by the model's predicted XPOS (UPOS when it has no XPOS column); a model without a lemma head
    that predicts edit scripts is refused.
    """
    from lstmtag.data import load_labelled
    from lstmtag.lexicon import build
    from lstmtag.predict import Predictor

    head = Predictor(replace(bundle, lexicon=None), precision=precision)
    if not head.lemma_scripts:
        raise ValueError("--lemma-lexicon needs a model with a lemma head (data.columns with lemma)")
    columns = bundle.vocabs.labels
    column = "xpos" if "xpos" in columns else "upos" if "upos" in columns else None
    if column is None:
        raise ValueError("--lemma-lexicon needs a model that predicts XPOS or UPOS (the lexicon is keyed by them)")
    train = load_labelled(train_file, "conllu", [column, "lemma"])
    predicted = [tagged.tags["lemma"] for tagged in head.predict(train)]
    return build(train, column=column, predicted=predicted)
