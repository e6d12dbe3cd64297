"""Training loop for taggers: bucketed batches, AdamW, clipping, early stopping, resumable state.

After every epoch the model is scored on dev; the best one is written to ``out`` and the full
training state (weights, optimizer, averaged weights, random states, counters) to a resume file
beside it. Both writes are atomic, so a kill at any moment loses at most the epoch in progress.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lstmtag import checkpoint, distill
from lstmtag.batch import Vocabs, bucketed, make_batch
from lstmtag.config import Config
from lstmtag.data import Sentence
from lstmtag.lemma import COLUMN as LEMMA
from lstmtag.lemma import with_scripts
from lstmtag.models import TaggerBundle, build_tagger, for_config, save_tagger
from lstmtag.predict import Predictor
from lstmtag.vocab import Vocab


@dataclass
class Progress:
    """What the loop reports to its caller (the CLI draws it as a progress bar)."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    tokens_per_second: float
    elapsed: float
    dev_accuracy: float | None = None
    best_accuracy: float | None = None
    lr: float = 0.0
    event: str = "step"  # "step", "epoch" or "stop"


@dataclass
class TrainResult:
    best_accuracy: float
    best_epoch: int
    epochs_run: int
    seconds: float
    stopped_by: str  # "epochs", "patience", "time"


resume_path = checkpoint.state_path  # where ``train_tagger`` keeps its training state


def build_vocabs(sentences: Sequence[Sentence], config: Config) -> Vocabs:
    """Vocabularies from the training data; words below ``min_word_count`` map to <unk>."""
    lookup = for_config(config).word_key
    word_counts = Counter(lookup(w) for s in sentences for w in s.words)
    char_counts = Counter(ch for s in sentences for w in s.words for ch in w)
    words = Vocab.from_counts(word_counts, min_count=config.data.min_word_count)
    labels = {}
    for name in config.data.columns:
        counts = Counter(t for s in sentences for t in s.labels[name] if t)  # "": no class (lemma.with_scripts)
        labels[name] = Vocab.from_counts(counts, specials=False)
    vocabs = Vocabs(words, Vocab.from_counts(char_counts), labels)
    vocabs.word_counts = [0, 0] + [word_counts[w] for w in words.itos[2:]]
    return vocabs


def _evaluate(bundle: TaggerBundle, dev: Sequence[Sentence]) -> float:
    """Mean accuracy over the label columns: the early-stopping score."""
    return Predictor(bundle).score(dev).mean


def train_tagger(
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    config: Config,
    out: str | Path,
    *,
    resume: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    info: dict | None = None,
    teacher: Predictor | None = None,
    distill_weight: float = 0.5,
) -> TrainResult:
    """Train a tagger (LSTM or HMM, by ``config.model.kind``) and write the best model to ``out``.

    With a ``teacher``, the tagger is a student distilled from its tag distributions (distill.py).
    """
    if not train or not dev:
        raise ValueError(f"no {'training' if not train else 'dev'} sentences to {'train on' if not train else 'score'}")
    if config.model.kind == "segmenter":  # labels characters of the raw text, not words: its own loop
        from lstmtag.segmenter_train import train_segmenter

        if resume or teacher is not None:
            raise ValueError("a segmenter trains from the start and from gold text only (no --resume, no distill)")

        return train_segmenter(train, dev, config, out, on_progress=on_progress, info=info)
    settings = config.train
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    if LEMMA in config.data.columns:
        if not for_config(config).declared(config).distributions:
            raise ValueError("a lemma column needs an LSTM tagger with softmax heads (it predicts edit scripts)")
        train = with_scripts(train)
    vocabs = build_vocabs(train, config)
    model = build_tagger(config, vocabs)
    info = dict(info or {})
    targets: dict[int, distill.Targets] = {}
    if teacher is not None:
        distill.check_student(model)
        targets = dict(zip(map(id, train), distill.teacher_targets(teacher, train, vocabs), strict=True))

    if not model.capabilities.trained:  # an HMM is counted: one pass, then score on dev
        started = time.perf_counter()
        model.fit(train, vocabs)
        bundle = TaggerBundle(model, vocabs, config, {**info, "train_seconds": time.perf_counter() - started})
        accuracy = _evaluate(bundle, dev)
        bundle.info["dev_accuracy"] = accuracy
        save_tagger(out, bundle)
        return TrainResult(accuracy, 1, 1, time.perf_counter() - started, "epochs")

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, betas=(0.9, settings.beta2), weight_decay=settings.weight_decay
    )
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(settings.ema)) if settings.ema > 0 else None
    evaluated = averaged.module if averaged is not None else model
    state = {"epoch": 0, "best_accuracy": -1.0, "best_epoch": 0, "bad_epochs": 0, "elapsed": 0.0}
    state_file = resume_path(out)
    if resume and state_file.is_file():
        _restore(state_file, model, optimizer, averaged, rng, state)

    budget = settings.max_minutes * 60 if settings.max_minutes > 0 else math.inf
    started = time.perf_counter() - state["elapsed"]
    stopped_by = "epochs"
    while state["epoch"] < settings.epochs:
        epoch = state["epoch"] + 1
        model.train()
        batches = bucketed(train, settings.batch_size, shuffle=True, rng=rng)
        window_tokens, window_start, loss_sum = 0, time.perf_counter(), 0.0
        for step, sentences in enumerate(batches, start=1):
            elapsed = time.perf_counter() - started
            if elapsed > budget:
                stopped_by = "time"
                break
            progress_fraction = max((epoch - 1 + step / len(batches)) / settings.epochs, elapsed / budget)
            lr = settings.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress_fraction, 1.0))))
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = make_batch(sentences, vocabs, word_dropout=config.model.word_dropout, rng=rng)
            if targets:
                loss = distill.loss(model, batch, [targets[id(s)] for s in sentences], weight=distill_weight)
            else:
                loss = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            window_tokens += int(batch.lengths.sum())
            loss_sum += float(loss.detach())
            if on_progress is not None and (step % 20 == 0 or step == len(batches)):
                now = time.perf_counter()
                on_progress(
                    Progress(
                        epoch,
                        settings.epochs,
                        step,
                        len(batches),
                        loss_sum / step,
                        window_tokens / max(now - window_start, 1e-9),
                        now - started,
                        best_accuracy=max(state["best_accuracy"], 0.0),
                        lr=lr,
                    )
                )
        if stopped_by == "time" and step == 1:
            break  # the budget ran out before this epoch did any work
        evaluated.eval()
        accuracy = _evaluate(TaggerBundle(evaluated, vocabs, config), dev)
        state["epoch"] = epoch
        if accuracy > state["best_accuracy"]:
            state.update(best_accuracy=accuracy, best_epoch=epoch, bad_epochs=0)
            best_info = {
                **info,
                "epoch": epoch,
                "dev_accuracy": accuracy,
                "train_seconds": time.perf_counter() - started,
            }
            save_tagger(out, TaggerBundle(evaluated, vocabs, config, best_info))
        else:
            state["bad_epochs"] += 1
        state["elapsed"] = time.perf_counter() - started
        _save_state(state_file, model, optimizer, averaged, rng, state, config)
        if on_progress is not None:
            on_progress(
                Progress(
                    epoch,
                    settings.epochs,
                    len(batches),
                    len(batches),
                    loss_sum / max(step, 1),
                    0.0,
                    state["elapsed"],
                    dev_accuracy=accuracy,
                    best_accuracy=state["best_accuracy"],
                    event="epoch",
                )
            )
        if stopped_by == "time":
            break
        if state["bad_epochs"] >= settings.patience:
            stopped_by = "patience"
            break
    return TrainResult(
        state["best_accuracy"], state["best_epoch"], state["epoch"], time.perf_counter() - started, stopped_by
    )


def _modules(model, averaged) -> dict:
    return {"model": model, **({"averaged": averaged} if averaged is not None else {})}


def _save_state(path: Path, model, optimizer, averaged, rng: random.Random, state: dict, config: Config) -> None:
    version, internal, gauss = rng.getstate()
    checkpoint.save_training_state(
        path,
        config=config.to_dict(),
        modules=_modules(model, averaged),
        optimizer=optimizer,
        info={"state": state, "python_rng": [version, list(internal), gauss]},
    )


def _restore(path: Path, model, optimizer, averaged, rng: random.Random, state: dict) -> None:
    info = checkpoint.load_training_state(path, modules=_modules(model, averaged), optimizer=optimizer)
    version, internal, gauss = info["python_rng"]
    rng.setstate((version, tuple(internal), gauss))
    state.update(info["state"])


def with_overrides(config: Config, **train_settings: object) -> Config:
    """A copy of ``config`` with some [train] settings replaced (used for --max-minutes)."""
    return replace(config, train=replace(config.train, **train_settings))
