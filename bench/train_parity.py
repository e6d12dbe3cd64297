"""Training on two source trees, A against B: does a change to the trainers keep CPU results bit for bit?

    python bench/train_parity.py A_SRC B_SRC [--results-dir bench/results]

A_SRC and B_SRC are ``src`` folders of two checkouts (e.g. ``git archive BASE src | tar -x -C /tmp/base``
gives ``/tmp/base/src``). Each tree runs, in a child process of its own with one thread, the same
short trainings: a softmax tagger with EMA, dropout and word dropout; a CRF tagger; a student
distilled from the first; a language model with reset streams; a segmenter. Then every tensor of every
model and resume file is compared byte for byte (the JSON metadata is not: a new setting changes
it), and the CPU seconds each tree took are reported. Writes bench/results/train_parity.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open

from common import RESULTS, machine

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "ewt_sample.conllu"

CHILD = """
import json, sys, time, torch
from pathlib import Path
torch.set_num_threads(1)
import lstmtag
from lstmtag.config import load_config
from lstmtag.data import load_labelled
from lstmtag.lm_train import train_lm
from lstmtag.predict import Predictor
from lstmtag.train import train_tagger
out, sample = Path(sys.argv[1]), load_labelled(sys.argv[2], "conllu", ["upos", "xpos"])
train, dev = sample[:24], sample[24:30]
tagger = ["model.word_dim=16", "model.char_dim=8", "model.char_hidden=8", "model.hidden_size=24",
          "model.num_layers=2", "model.dropout=0.2", "model.word_dropout=0.25", "train.ema=0.9", "train.lr=0.02",
          "train.batch_size=8", "train.threads=1", "train.epochs=2"]
lm = ["lm.embed_dim=16", "lm.hidden_size=24", "lm.num_layers=2", "lm.dropout=0.1", "lm.batch_size=5", "lm.seq_len=16",
      "lm.eval_every=7", "lm.threads=1", "lm.epochs=2", "lm.reset_fraction=0.3"]
segmenter = ["model.kind=segmenter", "model.char_dim=8", "model.hidden_size=16", "model.num_layers=1",
             "train.epochs=1", "train.threads=1", "train.batch_size=8", "train.ema=0.5"]
cpu = time.process_time()
train_tagger(train, dev, load_config(None, tagger), out / "tagger.safetensors")
train_tagger(train, dev, load_config(None, [*tagger, "model.head=crf"]), out / "crf.safetensors")
teacher = Predictor.load(out / "tagger.safetensors", precision="float")
train_tagger(train, dev, load_config(None, tagger), out / "student.safetensors", teacher=teacher)
train_lm("the cat sat on the mat. the dog sat on the log. " * 20, load_config(None, lm), out / "lm.safetensors")
train_tagger(train, dev, load_config(None, segmenter), out / "segmenter.safetensors")
print(json.dumps({"source": lstmtag.__file__, "cpu_seconds": time.process_time() - cpu}))
"""


def child(src: Path, out: Path) -> dict[str, object]:
    environment = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", CHILD, str(out), str(SAMPLE)]
    done = subprocess.run(command, env=environment, cwd=out, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_tensors(a: Path, b: Path) -> bool:
    """Every tensor of ``a`` and ``b``: the same names, dtypes, shapes and bytes."""
    with safe_open(str(a), "pt") as x, safe_open(str(b), "pt") as y:
        if sorted(x.keys()) != sorted(y.keys()):
            return False
        for name in x.keys():  # noqa: SIM118 - safe_open is not a dict
            s, t = x.get_tensor(name), y.get_tensor(name)
            if s.dtype != t.dtype or s.shape != t.shape:
                return False
            if not s.reshape(-1).view(torch.uint8).equal(t.reshape(-1).view(torch.uint8)):
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        outs = {name: Path(scratch) / name for name in ("A", "B")}
        runs = {}
        for name, src in (("A", args.a.resolve()), ("B", args.b.resolve())):
            outs[name].mkdir()
            runs[name] = child(src, outs[name])
            print(f"{name} ({runs[name]['source']}): {runs[name]['cpu_seconds']:.1f} CPU seconds", flush=True)
        files = sorted(p.name for p in outs["A"].glob("*.safetensors"))
        if files != sorted(p.name for p in outs["B"].glob("*.safetensors")):
            raise SystemExit(f"the trees wrote different files: {files}")
        verdicts = {name: same_tensors(outs["A"] / name, outs["B"] / name) for name in files}
    rows = ["| file | every tensor bit-identical |", "| --- | --- |"]
    rows += [f"| {name} | {'yes' if same else 'NO'} |" for name, same in verdicts.items()]
    cpu = ", ".join(f"{name}: {run['cpu_seconds']:.1f} s" for name, run in runs.items())
    details = machine()
    footer = f"CPU seconds of all five trainings, one thread: {cpu}. Measured {details['date']} on {details['cpu']}."
    table = "\n".join(rows) + "\n\n" + footer
    print(table)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "train_parity.json").write_text(
        json.dumps({"runs": runs, "files": verdicts, "machine": details}, indent=2)
    )
    (args.results_dir / "train_parity.md").write_text(table + "\n")
    if not all(verdicts.values()):
        raise SystemExit("some tensors differ")


if __name__ == "__main__":
    main()
