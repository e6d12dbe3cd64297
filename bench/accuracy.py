"""Accuracy and speed of the shipped English tagger on EWT test, plus a Turkish (IMST) model.

    python bench/accuracy.py [--model models/en_ewt.safetensors] [--turkish-minutes 10]

Every number is measured by this run through the `lstmtag` command (evaluation in child processes,
so the tokens/s at 1 and 2 threads and the peak memory are each process's own). Writes
bench/results/accuracy.json and accuracy.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import SHARED, lstmtag_command, machine, train_minutes, write
from lstmtag.checkpoint import read


def evaluate(model: str, data: Path, threads: int) -> tuple[dict, float]:
    """`lstmtag evaluate --json` in a child limited to ``threads``; returns the report and peak MiB."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    command = [*lstmtag_command(), "evaluate", model, str(data), "--json"]
    print("$", f"OMP_NUM_THREADS={threads}", " ".join(command), flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    return json.loads(done.stdout), peak


def train_turkish(minutes: float, out: Path) -> float:
    imst = SHARED / "ud" / "tr_imst"
    command = [
        *lstmtag_command(),
        "train",
        "--train",
        str(imst / "tr_imst-ud-train.conllu"),
        "--dev",
        str(imst / "tr_imst-ud-dev.conllu"),
        "--out",
        str(out),
        "--config",
        "configs/pos.toml",
        "--max-minutes",
        str(minutes),
    ]
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/en_ewt.safetensors")
    parser.add_argument("--turkish-minutes", type=float, default=10.0)
    parser.add_argument("--turkish-model", default="runs/tr_imst.safetensors", help="trained here if missing")
    args = parser.parse_args()

    test = SHARED / "ud" / "en_ewt" / "en_ewt-ud-test.conllu"
    one, peak_one = evaluate(args.model, test, 1)
    two, peak_two = evaluate(args.model, test, 2)
    info = read(args.model).info
    results = {
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": machine(),
        "model": args.model,
        "model_mb": Path(args.model).stat().st_size / 1e6,  # decimal MB, as the 20 MB limit
        "train_minutes": train_minutes(info),
        "train_command": info.get("command"),
        "ewt_test": {
            name: {k: column[k] for k in ("accuracy", "known_accuracy", "unknown_accuracy", "unknown_tokens")}
            for name, column in one["columns"].items()
        },
        "tokens": one["tokens"],
        "tokens_per_second_1_thread": one["tokens_per_second"],
        "tokens_per_second_2_threads": two["tokens_per_second"],
        "peak_memory_mb": max(peak_one, peak_two),
    }
    turkish = Path(args.turkish_model)
    if not turkish.is_file():
        results["turkish_train_seconds"] = train_turkish(args.turkish_minutes, turkish)
    imst_test = SHARED / "ud" / "tr_imst" / "tr_imst-ud-test.conllu"
    tr_report, _ = evaluate(str(turkish), imst_test, 2)
    tr_info = read(turkish).info
    results["imst_test"] = {
        name: {k: column[k] for k in ("accuracy", "known_accuracy", "unknown_accuracy")}
        for name, column in tr_report["columns"].items()
    }
    results["turkish_model"] = {
        "path": str(turkish),
        "train_minutes": train_minutes(tr_info),
        "command": tr_info.get("command"),
    }
    ewt = results["ewt_test"]
    rows = [
        "| measure | value |",
        "| --- | --- |",
        *(
            f"| EWT test {name.upper()} accuracy (all / known / unknown) | {c['accuracy']:.2%} / {c['known_accuracy']:.2%} / "
            f"{c['unknown_accuracy']:.2%} |"
            for name, c in ewt.items()
        ),
        f"| IMST (Turkish) test UPOS (all / known / unknown) | {results['imst_test']['upos']['accuracy']:.2%} / "
        f"{results['imst_test']['upos']['known_accuracy']:.2%} / {results['imst_test']['upos']['unknown_accuracy']:.2%} "
        f"({results['turkish_model']['train_minutes']:.1f} min training) |",
        f"| training time (English) | {results['train_minutes']:.1f} min |",
        f"| tagging speed, 1 thread | {results['tokens_per_second_1_thread']:,.0f} tokens/s |",
        f"| tagging speed, 2 threads | {results['tokens_per_second_2_threads']:,.0f} tokens/s |",
        f"| model size | {results['model_mb']:.1f} MB |",
        f"| peak memory (evaluate process) | {results['peak_memory_mb']:.0f} MB |",
    ]
    note = (
        f"\nMeasured {results['machine']['date']} on {results['machine']['cpu']} ({results['machine']['cores']} cores), "
        f"torch {results['machine']['torch']}, by `{results['command']}`; EWT test has {results['tokens']:,} tokens."
    )
    write("accuracy", results, "\n".join(rows) + "\n" + note)


if __name__ == "__main__":
    main()
