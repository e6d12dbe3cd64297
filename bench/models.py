"""HMM vs the lesson's LSTM vs BiLSTM+char (softmax) vs BiLSTM+char+CRF, trained and scored on EWT.

    python bench/models.py [--minutes 10] [--only hmm,lesson,bilstm,crf] [--jobs 2]

Each model is trained by `lstmtag train` on EWT train (dev for early stopping) with the same time
budget, then scored by `lstmtag evaluate` on EWT test in a one-thread process. Models already in
runs/bench/ are reused (delete them to retrain). Writes bench/results/models.json and models.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import SHARED, lstmtag_command, machine, train_minutes, write
from lstmtag.checkpoint import read

MODELS = {
    "hmm": ("Trigram HMM (TnT-style)", "configs/hmm.toml"),
    "lesson": ("Lesson LSTM: words, unidirectional, softmax", "configs/lesson.toml"),
    "bilstm": ("BiLSTM + char features, softmax", "configs/pos.toml"),
    "crf": ("BiLSTM + char features + CRF", "configs/pos_crf.toml"),
    "shipped": ("Shipped model (see models/README.md; its own budget)", "configs/pos.toml"),
}
EWT = SHARED / "ud" / "en_ewt"


def train_and_score(key: str, minutes: float, folder: Path) -> dict:
    name, config = MODELS[key]
    out = Path("models/en_ewt.safetensors") if key == "shipped" else folder / f"{key}.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not out.is_file():
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
            config,
            "--max-minutes",
            str(minutes),
        ]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    command = [*lstmtag_command(), "evaluate", str(out), str(EWT / "en_ewt-ud-test.conllu"), "--json"]
    print("$", "OMP_NUM_THREADS=1", " ".join(command), flush=True)
    report = json.loads(subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout)
    info = read(out).info
    return {
        "model": name,
        "config": config,
        "train_minutes": train_minutes(info),
        "columns": {
            c: {k: v[k] for k in ("accuracy", "known_accuracy", "unknown_accuracy")}
            for c, v in report["columns"].items()
        },
        "tokens_per_second_1_thread": report["tokens_per_second"],
    }


def _duration(minutes: float) -> str:
    return f"{minutes:.1f} min" if minutes >= 1 else f"{minutes * 60:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per neural model")
    parser.add_argument("--only", default=",".join(MODELS))
    parser.add_argument("--jobs", type=int, default=2, help="models trained at once (one thread each)")
    parser.add_argument("--folder", default="runs/bench")
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    keys = args.only.split(",")
    started = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda k: train_and_score(k, args.minutes, folder), keys))
    results = {
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": machine(),
        "minutes_budget": args.minutes,
        "wall_seconds": time.perf_counter() - started,
        "models": rows,
    }
    lines = [
        "| model | UPOS all / known / unknown | XPOS all / known / unknown | training | tokens/s (1 thread) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = []
        for column in ("upos", "xpos"):
            c = row["columns"][column]
            cells.append(f"{c['accuracy']:.2%} / {c['known_accuracy']:.2%} / {c['unknown_accuracy']:.2%}")
        lines.append(
            f"| {row['model']} | {cells[0]} | {cells[1]} | {_duration(row['train_minutes'])} | "
            f"{row['tokens_per_second_1_thread']:,.0f} |"
        )
    note = (
        f"\nEWT test, gold tokens. Measured {results['machine']['date']} on {results['machine']['cpu']}, "
        f"torch {results['machine']['torch']}, by `{results['command']}` ({args.jobs} models trained at once, one "
        f"thread each, budget {args.minutes:g} min per neural model)."
    )
    write("models", results, "\n".join(lines) + "\n" + note)


if __name__ == "__main__":
    main()
