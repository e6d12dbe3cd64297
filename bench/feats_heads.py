"""FEATS as whole strings or one head per feature: dev accuracy of both, on one shared encoder.

    python bench/feats_heads.py [--minutes 15] [--epochs N] [--hidden 128] [--model FILE]

Trains one tagger on EWT train (UPOS, XPOS and FEATS, ``data.feats_heads = ["whole", "per_feature"]``,
the best epoch chosen on dev) through ``lstmtag train``, so the whole-string head and the per-feature
heads read the same encoder, then scores both on EWT dev: accuracy on all, known and unknown words,
and on the words whose gold FEATS string never occurs in train (the whole-string head cannot produce
those). The budget is ``--minutes`` of wall time and at most ``--epochs`` epochs; the output gives the
CPU time training got, which on a shared machine says more than the wall time. ``--model`` scores a
model trained before instead of training. Writes bench/results/feats_heads.json and feats_heads.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from common import SHARED, lstmtag_command, machine, run, train_minutes, write
from lstmtag.data import load_labelled
from lstmtag.feats import COLUMN, PER_FEATURE, WHOLE
from lstmtag.models import load_tagger
from lstmtag.predict import Predictor

EWT = SHARED / "ud" / "en_ewt"
COLUMNS = ("upos", "xpos", "feats")


def train(out: Path, minutes: float, epochs: int, hidden: int) -> tuple[list[str], float, str]:
    """``lstmtag train`` of the shared-encoder model: the command, the CPU seconds it used, its last line."""
    command = [
        *lstmtag_command(),
        "train",
        "--train",
        str(EWT / "en_ewt-ud-train.conllu"),
        "--dev",
        str(EWT / "en_ewt-ud-dev.conllu"),
        "--out",
        str(out),
        "--config",
        "configs/pos.toml",
        "--set",
        f"data.columns={','.join(COLUMNS)}",
        "--set",
        f"data.feats_heads={WHOLE},{PER_FEATURE}",
        "--set",
        f"model.hidden_size={hidden}",
        "--set",
        f"train.epochs={epochs}",
        "--max-minutes",
        str(minutes),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = run(command)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "best dev accuracy" in line]
    summary = " ".join(lines[-1].split()) if lines else ""
    return command, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), summary


def unseen_accuracy(predicted: list[list[str]], gold: list[list[str]], seen: set[str]) -> tuple[float, int]:
    """Accuracy on the words whose gold FEATS string is not in ``seen``, and how many there are."""
    pairs = [
        (p, g) for ps, gs in zip(predicted, gold, strict=True) for p, g in zip(ps, gs, strict=True) if g not in seen
    ]
    return (sum(p == g for p, g in pairs) / len(pairs) if pairs else 0.0), len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="training time budget")
    parser.add_argument("--epochs", type=int, default=60, help="at most this many epochs (configs/pos.toml: 60)")
    parser.add_argument("--hidden", type=int, default=128, help="LSTM hidden size per direction")
    parser.add_argument("--model", help="score this model (trained with both FEATS heads) instead of training")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="feats_heads_"))
    command = ["python", *sys.argv]
    train_command: list[str] | None = None
    cpu_seconds, summary = None, ""
    model = Path(args.model) if args.model else folder / "feats_heads.safetensors"
    if not args.model:
        train_command, cpu_seconds, summary = train(model, args.minutes, args.epochs, args.hidden)
    bundle = load_tagger(model)
    predictor = Predictor(bundle)
    if not predictor.alternatives:
        raise SystemExit(f"{model}: not trained with both FEATS heads (data.feats_heads = whole, per_feature)")
    dev = load_labelled(EWT / "en_ewt-ud-dev.conllu", "conllu", COLUMNS)
    started = time.perf_counter()
    report = predictor.evaluate(dev)
    seconds = time.perf_counter() - started
    tagged = predictor.predict(dev)
    seen = {t for s in load_labelled(EWT / "en_ewt-ud-train.conllu", "conllu", [COLUMN]) for t in s.labels[COLUMN]}
    gold = [s.labels[COLUMN] for s in dev]

    names = {WHOLE: COLUMN, PER_FEATURE: predictor.alternatives[0]}
    if predictor.feats_from == PER_FEATURE:
        names = {WHOLE: predictor.alternatives[0], PER_FEATURE: COLUMN}
    variants = {}
    for head, name in names.items():
        scores = report["columns"][name]
        predicted = [{**t.tags, **t.alternatives}[name] for t in tagged]
        unseen, unseen_tokens = unseen_accuracy(predicted, gold, seen)
        variants[head] = {
            "accuracy": scores["accuracy"],
            "known_accuracy": scores["known_accuracy"],
            "unknown_accuracy": scores["unknown_accuracy"],
            "unseen_string_accuracy": unseen,
            "unseen_string_tokens": unseen_tokens,
        }
    info = bundle.info
    config = bundle.config
    payload = {
        "command": " ".join(command),
        "train_command": " ".join(train_command) if train_command else info.get("command"),
        "data": {"train": str(EWT / "en_ewt-ud-train.conllu"), "dev": str(EWT / "en_ewt-ud-dev.conllu")},
        "machine": machine(),
        "settings": {
            "columns": list(config.data.columns),
            "feats_heads": list(config.data.feats_heads),
            "hidden_size": config.model.hidden_size,
            "num_layers": config.model.num_layers,
            "max_minutes": config.train.max_minutes,
            "threads": config.train.threads,
            "niceness": os.nice(0),
        },
        "training": {
            "minutes": round(train_minutes(info), 1),
            "cpu_minutes": round(cpu_seconds / 60, 1) if cpu_seconds is not None else None,
            "epochs_limit": config.train.epochs,
            "best_epoch": info.get("epoch"),
            "dev_mean_accuracy": info.get("dev_accuracy"),
            "summary": summary,  # lstmtag train's last line: best epoch, why it stopped
        },
        "whole_string_classes": len(bundle.vocabs.labels[COLUMN]),
        "feature_heads": len(predictor.feature_columns),
        "dev_tokens": report["tokens"],
        "dev_unknown_tokens": report["columns"][COLUMN]["unknown_tokens"],
        "upos_accuracy": report["columns"]["upos"]["accuracy"],
        "xpos_accuracy": report["columns"]["xpos"]["accuracy"],
        "evaluate_seconds": round(seconds, 1),
        "variants": variants,
    }
    rows = [
        "| FEATS head | all | known | unknown | gold string unseen in train |",
        "| --- | --- | --- | --- | --- |",
    ]
    labels = {
        WHOLE: f"whole string ({payload['whole_string_classes']} classes)",
        PER_FEATURE: f"per feature ({payload['feature_heads']} heads)",
    }
    for head, scores in variants.items():
        rows.append(
            f"| {labels[head]} | {scores['accuracy']:.2%} | {scores['known_accuracy']:.2%} | "
            f"{scores['unknown_accuracy']:.2%} | {scores['unseen_string_accuracy']:.2%} "
            f"({scores['unseen_string_tokens']} tokens) |"
        )
    training = payload["training"]
    table = "\n".join(
        [
            "# FEATS: whole string vs one head per feature (EWT dev, one shared encoder)",
            "",
            f"Command: `{payload['command']}`",
            f"Training: `{payload['train_command']}`",
            f"Machine: {payload['machine']['cpu']}, {payload['machine']['cores']} cores, torch "
            f"{payload['machine']['torch']}, {payload['machine']['date']}",
            f"Budget: {training['minutes']} min of training ({config.train.max_minutes:g} min and "
            f"{config.train.epochs} epochs at most; {config.train.threads} thread, niceness {os.nice(0)}, "
            f"{training['cpu_minutes']} CPU min on a machine shared with other work), best epoch "
            f"{training['best_epoch']}; "
            f"{config.model.num_layers}x{config.model.hidden_size} BiLSTM; UPOS {payload['upos_accuracy']:.2%}, "
            f"XPOS {payload['xpos_accuracy']:.2%}",
            f"Training ended: {summary}" if summary else "Training: scored a model trained before (--model)",
            f"Dev: {payload['dev_tokens']} tokens, {payload['dev_unknown_tokens']} unknown",
            "",
            *rows,
        ]
    )
    write("feats_heads", payload, table)


if __name__ == "__main__":
    main()
