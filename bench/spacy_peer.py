"""Train the spaCy peer of the speed benchmark: the shared efficiency `tagger,morphologizer` config on EWT.

    python bench/spacy_peer.py [--out runs/spacy_ewt] [--config ../shared/bench/spacy-efficiency-ewt.cfg]

Converts EWT train/dev with `spacy convert --converter conllu -n 10` into OUT/corpus/, then runs
`spacy train` on one thread (OMP_NUM_THREADS=1) with its log in OUT/train.log; the model is
OUT/model/model-best. spaCy is a bench-only extra (`pip install -e '.[bench]'`), never a runtime
dependency of lstmtag. See ../shared/bench/README.md for why every comparison uses this one peer.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from common import SHARED

EWT = SHARED / "ud" / "en_ewt"
CONFIG = SHARED.parent / "bench" / "spacy-efficiency-ewt.cfg"
OUT = Path("runs/spacy_ewt")


def model_path(out: Path = OUT) -> Path:
    return out / "model" / "model-best"


def convert(out: Path = OUT) -> tuple[Path, Path]:
    """EWT train and dev as spaCy DocBins (one Doc per sentence, gold tokens); skipped if present."""
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    paths = []
    for split in ("train", "dev"):
        source = EWT / f"en_ewt-ud-{split}.conllu"
        target = corpus / f"{source.stem}.spacy"
        if not target.exists():
            command = [sys.executable, "-m", "spacy", "convert", str(source), str(corpus), "--converter", "conllu"]
            command += ["-n", "10"]
            print("$", " ".join(command), flush=True)
            subprocess.run(command, check=True, capture_output=True, text=True)
        paths.append(target)
    return paths[0], paths[1]


def train(out: Path = OUT, config: Path = CONFIG) -> float:
    """Convert, then `spacy train` on one thread; returns the training wall time in seconds."""
    train_path, dev_path = convert(out)
    command = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(out / "model")]
    command += ["--paths.train", str(train_path), "--paths.dev", str(dev_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    log = out / "train.log"
    print("$ OMP_NUM_THREADS=1", " ".join(command), f"> {log} 2>&1", flush=True)
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        subprocess.run(command, check=True, stdout=handle, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - started
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"\ntrain_seconds {seconds:.1f}\n")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--config", type=Path, default=CONFIG)
    args = parser.parse_args()
    seconds = train(args.out, args.config)
    print(f"trained {model_path(args.out)} in {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
