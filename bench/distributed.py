"""Data-parallel training on this machine: 1 worker against 2 (DDP over gloo), one thread each, same budget.

    python bench/distributed.py --minutes 3

Trains the shipped tagger's architecture (configs/pos.toml) on EWT train for the same wall-clock
budget in each configuration, scoring on EWT dev after every epoch, and reports: training tokens/s
(steps only, all workers together), seconds per epoch (dev scoring included), scaling efficiency
(tokens/s of N workers / (N x tokens/s of 1)) and the best dev accuracy reached in the budget.

Configurations: 1 worker x 32 sentences a batch; 2 workers x 32 (global batch 64: the usual way to
scale out, more tokens per step); 2 workers x 16 (global batch 32: the same optimisation as 1 worker,
only faster if the split pays); and, as a control, 2 separate 1-worker runs side by side with no
communication at all: what two processes get of this machine's cores, the ceiling for DDP here.
The workers are started by torch.multiprocessing and run the same
loop as ``torchrun -m lstmtag train`` (loop.py, distributed.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from common import SHARED, machine, write

EWT = SHARED / "ud" / "en_ewt"
# (workers, global batch in sentences, joined by DDP); the last is a control: 2 separate 1-worker runs
# side by side, no communication, to show what 2 processes get of this machine's cores at all.
CONFIGS = [(1, 32, True), (2, 64, True), (2, 32, True), (2, 32, False)]


def worker(rank: int, world: int, store: str, batch: int, minutes: float, folder: str, joined: bool) -> None:
    """One rank: train under the budget and record every progress report to a JSON file."""
    from lstmtag.config import load_config
    from lstmtag.data import load_labelled
    from lstmtag.train import train_tagger

    torch.set_num_threads(1)
    if joined and world > 1:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    # No averaged weights: at 0.999 they lag far behind in a few-minute run and hide the progress.
    settings = [f"train.batch_size={batch}", f"train.max_minutes={minutes}", "train.threads=1", "train.ema=0.0"]
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "pos.toml", settings)
    columns = config.data.columns
    train = load_labelled(EWT / "en_ewt-ud-train.conllu", "conllu", columns)
    dev = load_labelled(EWT / "en_ewt-ud-dev.conllu", "conllu", columns)
    events: list[dict] = []
    out = Path(folder) / f"model-{rank if not joined else 0}.safetensors"
    result = train_tagger(train, dev, config, out, on_progress=lambda p: events.append(vars(p)))
    all_reduce = _all_reduce_seconds(config, train) if joined and world > 1 else None
    if rank == 0 or not joined:
        payload = {"events": events, "result": vars(result), "tokens": sum(len(s.words) for s in train)}
        payload["all_reduce_seconds"] = all_reduce
        (Path(folder) / f"events-{rank}.json").write_text(json.dumps(payload))
    if joined and world > 1:
        dist.destroy_process_group()


def _all_reduce_seconds(config, train) -> float:
    """Median time of one gloo all-reduce of a gradient the size of the model's (what DDP adds per step)."""
    from lstmtag.models import build_tagger
    from lstmtag.train import build_vocabs

    model = build_tagger(config, build_vocabs(train, config))
    gradient = torch.zeros(sum(p.numel() for p in model.parameters()))
    dist.barrier()
    times = []
    for _ in range(20):
        started = time.perf_counter()
        dist.all_reduce(gradient)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(world: int, batch: int, minutes: float, joined: bool) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        load = os.getloadavg()[0]
        mp.spawn(worker, args=(world, f"{folder}/store", batch, minutes, folder, joined), nprocs=world, join=True)
        payloads = [json.loads(path.read_text()) for path in sorted(Path(folder).glob("events-*.json"))]
    runs = [_summary(payload) for payload in payloads]
    row = {**runs[0], "tokens_per_second": sum(r["tokens_per_second"] for r in runs)}  # all workers together
    return {
        "workers": world,
        "joined": joined,
        "global_batch": batch if joined else batch * world,
        "per_worker_batch": batch // world if joined else batch,
        **row,
        "wall_seconds": time.perf_counter() - started,
        "load_average_before": load,
    }


def _summary(payload: dict) -> dict:
    """Tokens/s, seconds per epoch and dev accuracy of one run (rank 0's reports)."""
    steps = [e for e in payload["events"] if e["event"] == "step"]
    evals = [e for e in payload["events"] if e["event"] == "eval"]
    result = payload["result"]
    ends = [e["elapsed"] for e in evals if e["step"] == e["steps"]]  # evaluations at the end of an epoch
    epochs = [b - a for a, b in zip([0.0, *ends], ends, strict=False)]
    tokens_per_second = statistics.median(e["tokens_per_second"] for e in steps[1:] or steps)
    tokens_per_step = payload["tokens"] / steps[0]["steps"]
    return {
        "tokens_per_second": tokens_per_second,
        "ms_per_step": 1000 * tokens_per_step / tokens_per_second,
        "all_reduce_ms": payload["all_reduce_seconds"] * 1000 if payload["all_reduce_seconds"] else None,
        "seconds_per_epoch": statistics.median(epochs) if epochs else None,  # None: no whole epoch in the budget
        "seconds_per_epoch_from_tokens": payload["tokens"] / tokens_per_second,
        "epochs": result["epochs_run"],
        "dev_by_epoch": [round(e["score"], 4) for e in evals],
        "best_dev_accuracy": result["best_accuracy"],
        "stopped_by": result["stopped_by"],
    }


def _label(row: dict) -> str:
    label = f"{row['workers']} x {row['per_worker_batch']}"
    if not row["joined"]:
        return label + " separate runs, no DDP (control; first run's epochs and accuracy)"
    return label + f" (global batch {row['global_batch']})"


def _step(row: dict) -> str:
    reduce = f" ({row['all_reduce_ms']:.0f})" if row["all_reduce_ms"] is not None else ""
    return f"{row['ms_per_step']:.0f}{reduce}"


def _epoch_seconds(row: dict) -> str:
    if row["seconds_per_epoch"] is not None:
        return f"{row['seconds_per_epoch']:.0f}"
    return f"~{row['seconds_per_epoch_from_tokens']:.0f} (from tokens/s; no whole epoch)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget per configuration")
    args = parser.parse_args()
    rows = [measure(world, batch, args.minutes, joined) for world, batch, joined in CONFIGS]
    single = rows[0]["tokens_per_second"]
    for row in rows:
        row["scaling_efficiency"] = row["tokens_per_second"] / (row["workers"] * single)
    header = (
        "| workers x batch | tokens/s (training) | scaling efficiency | ms per step (of which gradient all-reduce) "
        "| s per epoch (with dev) | epochs begun | best dev accuracy (mean of UPOS, XPOS) |\n"
        "| --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = [
        f"| {_label(r)} | {r['tokens_per_second']:,.0f} | {r['scaling_efficiency']:.0%} | {_step(r)} "
        f"| {_epoch_seconds(r)} | {r['epochs']} | {r['best_dev_accuracy']:.2%} |"
        for r in rows
    ]
    info = machine()
    loads = ", ".join(f"{r['load_average_before']:.1f}" for r in rows)
    table = "\n".join(
        [
            header,
            *lines,
            "",
            f"EWT train/dev, configs/pos.toml without averaged weights (train.ema=0), {args.minutes:g} min per "
            f"configuration, one thread per worker. "
            f"Measured {info['date']} on {info['cpu']} ({info['cores']} cores), torch {info['torch']}, by "
            f"`nice -n 10 python bench/distributed.py --minutes {args.minutes:g}`; load average before each "
            f"configuration: {loads} (the machine was shared).",
        ]
    )
    write("distributed", {"machine": info, "minutes": args.minutes, "rows": rows}, table)


if __name__ == "__main__":
    main()
