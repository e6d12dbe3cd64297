"""How often a finished 2-worker job dies at process exit: N small torchrun jobs, counted.

    python bench/exit_abort.py [--jobs 30] [--kind lm|tagger] [--name exit_abort]

Each job is `lstmtag lm train ... --nproc 2` (or `lstmtag train ... --nproc 2` on the test fixture)
with a tiny model: a few seconds of training, then exit. A job that trained but exits non-zero, or
prints "terminate called" (a C++ abort while gloo's threads still ran at interpreter shutdown),
counts as an abort. Run it before and after a change to distributed.py's teardown to compare.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import lstmtag_command, machine, write

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "data"
TEXT = "the cat sat on the mat. the dog sat on the log. " * 20
LM = ["lm.embed_dim=16", "lm.hidden_size=24", "lm.batch_size=5", "lm.seq_len=16", "lm.epochs=2", "lm.threads=1"]
TAGGER = ["model.word_dim=16", "model.char_dim=8", "model.char_hidden=8", "model.hidden_size=16", "train.epochs=2"]


def command(kind: str, folder: Path) -> list[str]:
    out = folder / "m.safetensors"
    if kind == "lm":
        (folder / "t.txt").write_text(TEXT, encoding="utf-8")
        args = ["lm", "train", "--text", str(folder / "t.txt"), "--out", str(out), *[f"--set={s}" for s in LM]]
    else:
        sample = FIXTURES / "ewt_sample.conllu"
        args = ["train", "--train", str(sample), "--dev", str(FIXTURES / "ewt_dev_sample.conllu")]
        args += ["--out", str(out), *[f"--set={s}" for s in TAGGER]]
    return [*lstmtag_command(), *args, "--nproc", "2"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--kind", choices=["lm", "tagger"], default="lm")
    parser.add_argument("--name", default="exit_abort")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent / "src")}
    aborts, seconds, examples = 0, [], []
    for job in range(args.jobs):
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            done = subprocess.run(command(args.kind, Path(folder)), env=env, capture_output=True, text=True)
            seconds.append(time.perf_counter() - started)
            trained = (Path(folder) / "m.safetensors").is_file()
        output = done.stdout + done.stderr
        if not trained:
            raise SystemExit(f"job {job} did not train (exit {done.returncode}):\n{output[-2000:]}")
        if done.returncode != 0 or "terminate called" in output:
            aborts += 1
            examples.append(
                next((line for line in output.splitlines() if "terminate" in line), f"exit {done.returncode}")
            )
        print(f"job {job + 1}/{args.jobs}: exit {done.returncode}, {seconds[-1]:.1f} s", flush=True)
    payload = {
        "command": "python " + " ".join(sys.argv),
        "kind": args.kind,
        "jobs": args.jobs,
        "aborts": aborts,
        "examples": examples[:3],
        "seconds_per_job": sum(seconds) / len(seconds),
        "machine": machine(),
        "load": os.getloadavg(),
    }
    table = "\n".join(
        [
            f"# Exit aborts of 2-worker jobs ({args.kind})",
            "",
            f"`{payload['command']}`: {aborts} of {args.jobs} finished jobs aborted at exit "
            f"({payload['seconds_per_job']:.1f} s a job; {payload['machine']['cpu']}, "
            f"{payload['machine']['cores']} cores, load {payload['load'][0]:.1f}, {payload['machine']['date']}).",
        ]
    )
    write(args.name, payload, table)


if __name__ == "__main__":
    main()
