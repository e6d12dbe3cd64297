"""Tagging speed of two source trees, A against B: did a refactor slow the inference path down?

    python bench/ab.py A_SRC B_SRC [--model en] [--rounds 3] [--passes 3] [--results-dir bench/results]

A_SRC and B_SRC are ``src`` folders of two checkouts (``../main/src src``). In each round each tree
runs in a fresh child process of its own (``PYTHONPATH`` set to that tree), one thread, alternating
A, B, A, B so drift in machine load hits both alike. A child loads the model and EWT test (not
timed), tags it once to warm up, then times ``--passes`` passes of ``Predictor.predict``, keeping
wall and CPU seconds (CPU time is steadier on a shared machine), and a digest of every tag and
probability, so the two trees are also checked to give the same output. Writes bench/results/ab.json
and ab.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from common import RESULTS, SHARED, machine

CHILD = """
import hashlib, json, sys, time, torch
torch.set_num_threads(1)
import lstmtag
from lstmtag.data import load_labelled
sentences = load_labelled(sys.argv[1], "conllu", [])
predictor = lstmtag.load(sys.argv[2])
first = predictor.predict(sentences)
digest = hashlib.sha256(json.dumps([(t.tags, t.probs) for t in first]).encode()).hexdigest()
tokens = sum(len(s.words) for s in sentences) * int(sys.argv[3])
wall, cpu = time.perf_counter(), time.process_time()
for _ in range(int(sys.argv[3])):
    predictor.predict(sentences)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({"source": lstmtag.__file__, "wall": tokens / wall, "cpu": tokens / cpu, "digest": digest}))
"""


def child(src: Path, model: str, passes: int) -> dict[str, object]:
    environment = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    test = SHARED / "ud" / "en_ewt" / "en_ewt-ud-test.conllu"
    command = [sys.executable, "-c", CHILD, str(test), model, str(passes)]
    done = subprocess.run(command, env=environment, cwd=src.parent, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--model", default="en")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    runs: dict[str, list[dict[str, object]]] = {"A": [], "B": []}
    for round_number in range(1, args.rounds + 1):
        for name, src in trees.items():
            result = child(src, args.model, args.passes)
            runs[name].append({**result, "load": os.getloadavg()[0]})
            print(
                f"round {round_number} {name} ({src}): {result['wall']:,.0f} tokens/s wall, "
                f"{result['cpu']:,.0f} tokens/s CPU",
                flush=True,
            )
    same = len({r["digest"] for rs in runs.values() for r in rs}) == 1
    rows = [
        "| tree | source | tokens/s wall, per round | tokens/s CPU, per round | median CPU |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, results in runs.items():
        walls = ", ".join(f"{r['wall']:,.0f}" for r in results)
        cpus = ", ".join(f"{r['cpu']:,.0f}" for r in results)
        rows.append(
            f"| {name} | {trees[name]} | {walls} | {cpus} | {statistics.median(r['cpu'] for r in results):,.0f} |"
        )
    ratio = statistics.median(r["cpu"] for r in runs["B"]) / statistics.median(r["cpu"] for r in runs["A"])
    command = "python bench/ab.py " + " ".join(sys.argv[1:])
    info = machine()
    text = "\n".join(
        [
            f"# A/B tagging speed (`{command}`)",
            "",
            *rows,
            "",
            f"B/A median CPU tokens/s: {ratio:.3f}. Outputs (every tag and probability) identical: {same}.",
            f"Model {args.model}, EWT test, one thread, {args.passes} passes a round, alternating A, B. "
            f"Load average during the runs: {min(r['load'] for rs in runs.values() for r in rs):.1f} to "
            f"{max(r['load'] for rs in runs.values() for r in rs):.1f}. Measured {info['date']} on {info['cpu']}, "
            f"torch {info['torch']}.",
            "",
        ]
    )
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "ab.md").write_text(text, encoding="utf-8")
    payload = {"command": command, "machine": info, "runs": runs, "ratio": ratio, "identical": same}
    (args.results_dir / "ab.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
