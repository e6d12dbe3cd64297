"""One training loop for every objective (gold tags, distillation, language modelling), on one worker or many.

The loop owns what every trainer repeats: seeding, the cosine learning rate, gradient clipping, the
averaged (EMA) weights, the time budget, early stopping, progress reports and the atomic resumable
state. A ``Task`` says what is particular to a model kind: its batches, its objective (an
``nn.Module`` whose ``forward(*inputs)`` returns the loss, so a DistributedDataParallel wrapper sees
the whole computation, as nanoGPT's ``model(x, y) -> loss`` does), its dev score and its model file.

Randomness is a function of (seed, step, rank), drawn afresh at the start and after every
evaluation, so a resumed run repeats the draws of an uninterrupted one without storing generator
states. Every rank walks the same global batches and takes its share of each (``Task.piece``); its
loss is weighted by its share of the batch's tokens, so the gradient DDP averages is the gradient of
the whole batch, whatever the number of workers.

The loop trains on the device the task's model is on (the trainers place it: ``devices.resolve``).
Tasks build their inputs on the CPU; the loop moves them to a GPU before each step and does nothing
on the CPU. Resume files hold CPU tensors, loaded into the model wherever it is.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lstmtag import checkpoint, devices, distributed
from lstmtag.config import saved_config
from lstmtag.distributed import Context

FORMAT = "loop-1"  # the layout of ``info`` in a resume file written by this loop


@dataclass(frozen=True)
class Settings:
    """How to optimise and when to stop; trainers fill it from their config section."""

    epochs: int
    lr: float
    clip: float
    seed: int
    lr_floor: float = 0.05  # the cosine ends at lr * lr_floor
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    ema: float = 0.0  # 0: no averaged weights
    max_minutes: float = 0.0  # 0: no time budget
    patience: int = 0  # evaluations without improvement before stopping; 0: never stop early
    eval_every: int = 0  # steps between evaluations; 0: at the end of every epoch
    higher_is_better: bool = True  # accuracy; False for a loss
    report_every: int = 20  # steps between progress reports


@dataclass
class Progress:
    """What the loop reports to its caller (the CLI draws it); only rank 0 reports."""

    epoch: int
    epochs: int
    step: int  # within the epoch
    steps: int  # per epoch
    global_step: int
    loss: float  # mean since the last report
    tokens_per_second: float  # all workers together
    elapsed: float
    score: float | None = None
    best_score: float | None = None
    lr: float = 0.0
    event: str = "step"  # "step" or "eval"


@dataclass
class Result:
    best_score: float
    best_epoch: int
    best_step: int
    steps: int
    epochs_run: int
    seconds: float
    stopped_by: str  # "epochs", "patience" or "time"
    milestones: dict[str, float] = field(default_factory=dict)  # "5 min" -> best score by then


class Task:
    """What the loop needs of one kind of training. Subclasses: train.TaggerTask, lm_train.LMTask."""

    model: nn.Module  # the network that is evaluated and saved
    objective: nn.Module  # forward(*inputs) -> loss; holds ``model``
    steps_per_epoch: int

    def batches(self, epoch: int) -> Sequence[Any]:
        """The global batches of ``epoch`` (1-based), in order: the same on every rank."""
        raise NotImplementedError

    def piece(self, batch: Any, context: Context, rng: random.Random) -> tuple[tuple[Any, ...], float]:
        """This rank's inputs for the objective, and its loss weight (world x its share of the tokens).

        Inputs are built on the CPU (tensors, lists, dicts, batches); the loop moves them to the model's device.
        """
        raise NotImplementedError

    def tokens(self, batch: Any) -> int:
        """Tokens in a global batch (for tokens per second)."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module) -> float:
        """The dev score of ``model`` (rank 0 only), wherever ``model`` is."""
        raise NotImplementedError

    def save_model(self, model: nn.Module, score: float, info: dict[str, Any]) -> None:
        """Write ``model`` as the best so far (rank 0 only)."""
        raise NotImplementedError

    def fingerprint(self) -> dict[str, str]:
        """Digests of what every rank must agree on (data, settings), by name."""
        return {}

    def start_epoch(self) -> None:
        """Called before the first step of each epoch (the LM starts its carried state afresh)."""

    def carried(self, context: Context) -> dict[str, torch.Tensor]:
        """State carried from step to step that a resumed run needs, whole (a collective call)."""
        return {}

    def restore_carried(self, tensors: dict[str, torch.Tensor], context: Context) -> None:
        """Take this rank's part of the state ``carried`` saved (CPU tensors) onto the model's device."""


def learning_rate(settings: Settings, fraction: float) -> float:
    """Cosine decay from ``lr`` to ``lr * lr_floor`` as ``fraction`` of the run goes from 0 to 1."""
    floor = settings.lr_floor
    return settings.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(fraction, 1.0))))


def seed_for(*parts: object) -> int:
    """A 60-bit seed from ``parts``: the same parts give the same seed on every rank and every run."""
    return int(distributed.digest(*parts)[:15], 16)


def fit(
    task: Task,
    settings: Settings,
    out: str | Path,
    *,
    config: dict[str, Any],
    resume: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    context: Context | None = None,
) -> Result:
    """Train ``task`` until its epochs, its patience or its time run out; the best model goes to ``out``."""
    context = context or distributed.current()
    model = task.model
    device = devices.of(model)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, betas=settings.betas, weight_decay=settings.weight_decay
    )
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(settings.ema)) if settings.ema > 0 else None
    evaluated = averaged.module if averaged is not None else model
    run: dict[str, Any] = {
        "step": 0,
        "best_score": None,
        "best_step": 0,
        "best_epoch": 0,
        "bad_evaluations": 0,
        "elapsed": 0.0,
        "milestones": {},
    }
    state_file = checkpoint.state_path(out)
    resuming = resume and state_file.is_file()
    agreed = {**task.fingerprint(), "config": distributed.digest(config)}
    if resume:
        agreed["resume state"] = distributed.digest(state_file.read_bytes() if resuming else b"none")
    distributed.check_agreement(agreed, context)
    if resuming:
        _restore(state_file, task, model, optimizer, averaged, run, context, config)
    objective = distributed.wrap(task.objective, context)
    per_epoch = task.steps_per_epoch
    total = settings.epochs * per_epoch
    budget = settings.max_minutes * 60 if settings.max_minutes > 0 else math.inf
    started = time.perf_counter() - run["elapsed"]
    rng = _reseed(settings.seed, run["step"], context)
    stopped_by = "epochs"
    last_evaluated = run["step"]
    report = _Window()
    objective.train()
    while run["step"] < total and stopped_by == "epochs":
        epoch, offset = run["step"] // per_epoch + 1, run["step"] % per_epoch
        batches = task.batches(epoch)
        if offset == 0:
            task.start_epoch()
        for index in range(offset, per_epoch):
            (elapsed,) = distributed.broadcast_floats([time.perf_counter() - started], context)  # rank 0's clock
            if elapsed > budget:
                stopped_by = "time"
                break
            lr = learning_rate(settings, max(run["step"] / total, elapsed / budget))
            for group in optimizer.param_groups:
                group["lr"] = lr
            inputs, weight = task.piece(batches[index], context, rng)
            if device.type != "cpu":
                inputs = devices.move(inputs, device)
            loss = objective(*inputs)
            optimizer.zero_grad(set_to_none=True)
            (loss * weight).backward()
            if settings.clip > 0:  # 0: no clipping (clip_grad_norm_ with 0 would zero every gradient)
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            run["step"] += 1
            report.add(float(loss.detach()), task.tokens(batches[index]))
            if (
                on_progress is not None
                and context.main
                and ((index + 1) % settings.report_every == 0 or index + 1 == per_epoch)
            ):
                on_progress(
                    Progress(epoch, settings.epochs, index + 1, per_epoch, run["step"], *report.take(), elapsed, lr=lr)
                )
            due = settings.eval_every > 0 and run["step"] % settings.eval_every == 0
            if due or run["step"] == total or (settings.eval_every == 0 and index + 1 == per_epoch):
                stop = _evaluate(task, settings, config, evaluated, out, run, started, optimizer, averaged, context)
                rng = _reseed(settings.seed, run["step"], context)
                last_evaluated = run["step"]
                report = _Window()  # tokens/s counts training steps, not the dev scoring
                objective.train()
                if on_progress is not None and context.main:
                    on_progress(_eval_progress(settings, run, epoch, index + 1, per_epoch))
                if stop:
                    stopped_by = "patience"
                    break
    if run["step"] > last_evaluated:  # stopped by the clock between evaluations
        _evaluate(task, settings, config, evaluated, out, run, started, optimizer, averaged, context)
        if on_progress is not None and context.main:
            epoch = (run["step"] - 1) // per_epoch + 1
            on_progress(_eval_progress(settings, run, epoch, (run["step"] - 1) % per_epoch + 1, per_epoch))
    seconds = time.perf_counter() - started
    # Only the milestones the run reached: a half-minute run has no "best by 5 min".
    reached = {key: value for key, value in run["milestones"].items() if float(key.split()[0]) * 60 <= seconds}
    best = run["best_score"] if run["best_score"] is not None else math.nan
    epochs_run = math.ceil(run["step"] / per_epoch)
    return Result(best, run["best_epoch"], run["best_step"], run["step"], epochs_run, seconds, stopped_by, reached)


class _Window:
    """Loss and tokens since the last progress report."""

    def __init__(self) -> None:
        self.loss, self.count, self.tokens, self.start = 0.0, 0, 0, time.perf_counter()

    def add(self, loss: float, tokens: int) -> None:
        self.loss += loss
        self.count += 1
        self.tokens += tokens

    def take(self) -> tuple[float, float]:
        now = time.perf_counter()
        values = self.loss / max(self.count, 1), self.tokens / max(now - self.start, 1e-9)
        self.__init__()
        return values


def _reseed(seed: int, step: int, context: Context) -> random.Random:
    """Seed torch (dropout) and return a Python generator (word dropout) for this rank from ``step`` on."""
    value = seed_for(seed, "step", step, "rank", context.rank)
    torch.manual_seed(value)
    return random.Random(value)


def _evaluate(task, settings, config, evaluated, out, run, started, optimizer, averaged, context) -> bool:
    """Score on dev (rank 0, shared with all), keep the best model, write the resume state; True: stop."""
    score = task.evaluate(evaluated) if context.main else 0.0
    score, elapsed = distributed.broadcast_floats([score, time.perf_counter() - started], context)
    run["last_score"] = score
    epoch = (run["step"] - 1) // task.steps_per_epoch + 1
    best = run["best_score"]
    if best is None or (score > best if settings.higher_is_better else score < best):
        run.update(best_score=score, best_step=run["step"], best_epoch=epoch, bad_evaluations=0)
        if context.main:
            task.save_model(evaluated, score, {"epoch": epoch, "step": run["step"], "train_seconds": elapsed})
    else:
        run["bad_evaluations"] += 1
    for minutes in (5, 10, 20, 30):  # the best score reached by each wall-clock milestone
        if elapsed <= minutes * 60:
            run["milestones"][f"{minutes} min"] = run["best_score"]
    run["elapsed"] = elapsed
    carried = task.carried(context)  # every rank takes part in gathering it
    if context.main:
        modules = {"model": task.model, **({"averaged": averaged} if averaged is not None else {})}
        if carried:
            modules["carried"] = _Holder(carried)
        checkpoint.save_training_state(
            checkpoint.state_path(out),
            config=config,
            modules=modules,
            optimizer=optimizer,
            info={"format": FORMAT, "run": run},
        )
    return settings.patience > 0 and run["bad_evaluations"] >= settings.patience


# Settings a resumed run may change (a run started on a GPU may go on on the CPU, and the other way).
MAY_CHANGE = {"epochs", "patience", "threads", "max_minutes", "eval_every", "device"}


def _changed_settings(saved: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """``section.key=saved -> now`` for every setting that differs, other than those in ``MAY_CHANGE``."""
    changed = []
    for section in sorted(set(saved) | set(config)):
        old, new = saved.get(section) or {}, config.get(section) or {}
        for key in sorted(set(old) | set(new)):
            if key not in MAY_CHANGE and old.get(key) != new.get(key):
                changed.append(f"{section}.{key}={old.get(key)!r} -> {new.get(key)!r}")
    return changed


def _restore(path: Path, task: Task, model, optimizer, averaged, run: dict, context: Context, config: dict) -> None:
    saved = checkpoint.read(path)
    if saved.info.get("format") != FORMAT:
        raise ValueError(f"{path}: a training state from an older lstmtag; start again without --resume")
    changed = _changed_settings(saved_config(saved.config).to_dict(), config)  # a setting it predates: its default
    if changed:
        raise ValueError(
            f"{path}: the run was started with other settings ({', '.join(changed)}); resume with the same "
            f"settings (only {', '.join(sorted(MAY_CHANGE))} may change) or start again without --resume"
        )
    modules = {"model": model, **({"averaged": averaged} if averaged is not None else {})}
    info = checkpoint.load_training_state(path, modules=modules, optimizer=optimizer)
    run.update(info["run"])
    carried = {name.removeprefix("carried."): t for name, t in saved.tensors.items() if name.startswith("carried.")}
    if carried:
        task.restore_carried(carried, context)


class _Holder(nn.Module):
    """Named tensors as buffers, so the resume file stores them beside the weights."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        for name, tensor in tensors.items():
            self.register_buffer(name, tensor.detach().clone())


def _eval_progress(settings: Settings, run: dict, epoch: int, step: int, per_epoch: int) -> Progress:
    return Progress(
        epoch,
        settings.epochs,
        step,
        per_epoch,
        run["step"],
        0.0,
        0.0,
        run["elapsed"],
        score=run["last_score"],
        best_score=run["best_score"],
        event="eval",
    )
