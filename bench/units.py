"""How long `lstmtag units` takes, and how much memory, as the corpus grows (one thread).

    python bench/units.py                  # the shipped tagger on EWT dev and train, the shipped LM on tinyshakespeare

Each run is its own `lstmtag units --json` process under OMP_NUM_THREADS=1 (and `units` sets one torch
thread itself); the time is the one the command reports for reading the corpus (model loading
excluded), the memory the process's peak RSS.
Statistics are running sums, so the peak should not grow with the corpus: EWT train is 8x EWT dev.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

from common import SHARED, lstmtag_command, machine, write

EWT = SHARED / "ud" / "en_ewt"
TEXT = SHARED / "text" / "tinyshakespeare.txt"


def measure(model: str, corpus: str, limit: int = 0) -> dict[str, object]:
    """One `units` run in a fresh process: seconds for the corpus, tokens, peak RSS (MB)."""
    command = [*lstmtag_command(), "units", "--model", model, "--corpus", corpus, "--json", "--limit", str(limit)]
    print("$", " ".join(command), flush=True)
    with tempfile.TemporaryFile("w+") as stderr:
        child = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS (KB), not the largest so far
        child.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        errors = stderr.read()
    found = re.search(r"([\d,]+) tokens in ([\d.]+) s", errors)
    if child.returncode != 0 or found is None:
        sys.exit(f"units failed: {errors}")
    return {
        "model": model,
        "corpus": corpus,
        "limit": limit,
        "tokens": int(found.group(1).replace(",", "")),
        "seconds": float(found.group(2)),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-train", action="store_true", help="leave out the EWT train run (about 2 minutes)")
    args = parser.parse_args()
    runs = [
        measure("en", str(EWT / "en_ewt-ud-dev.conllu"), 500),
        measure("en", str(EWT / "en_ewt-ud-dev.conllu")),
        *([] if args.skip_train else [measure("en", str(EWT / "en_ewt-ud-train.conllu"))]),
        measure("shakespeare", str(TEXT)),
    ]
    lines = [
        "| model | corpus | tokens | seconds (1 thread) | tokens/s | peak RSS |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in runs:
        corpus = os.path.basename(str(row["corpus"])) + (f" (first {row['limit']} sentences)" if row["limit"] else "")
        rss = f"{row['peak_rss_mb']:,.0f} MB"
        rate = row["tokens"] / row["seconds"]
        lines.append(f"| {row['model']} | {corpus} | {row['tokens']:,} | {row['seconds']:.1f} | {rate:,.0f} | {rss} |")
    write("units", {"machine": machine(), "runs": runs}, "\n".join(lines))


if __name__ == "__main__":
    main()
