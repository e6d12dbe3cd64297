"""Tagger training: vocabularies, length-bucketed batches and the dev score, run by the shared loop.

After every epoch the model is scored on dev; the best one is written to ``out`` and the full
training state (weights, optimizer, averaged weights, counters) to a resume file beside it (loop.py).
Both writes are atomic, so a kill at any moment loses at most the epoch in progress.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from lstmtag import checkpoint, devices, distill, distributed, loop
from lstmtag.batch import Vocabs, bucketed, make_batch
from lstmtag.config import Config
from lstmtag.data import Sentence
from lstmtag.distributed import Context
from lstmtag.feats import COLUMN as FEATS
from lstmtag.feats import PER_FEATURE, feature_names, label_columns, with_features
from lstmtag.lemma import COLUMN as LEMMA
from lstmtag.lemma import with_scripts
from lstmtag.models import TaggerBundle, build_tagger, for_config, save_tagger
from lstmtag.predict import Predictor
from lstmtag.tagger import TaggerLoss
from lstmtag.vocab import Vocab

Progress = loop.Progress  # what ``on_progress`` receives: event "step", or "eval" after each dev score


@dataclass
class TrainResult:
    best_accuracy: float
    best_epoch: int
    epochs_run: int
    seconds: float
    stopped_by: str  # "epochs", "patience", "time"


resume_path = checkpoint.state_path  # where ``train_tagger`` keeps its training state


def build_vocabs(sentences: Sequence[Sentence], config: Config) -> Vocabs:
    """Vocabularies from training data ``prepare``d for ``config``; words below ``min_word_count`` map to <unk>."""
    lookup = for_config(config).word_key
    word_counts = Counter(lookup(w) for s in sentences for w in s.words)
    char_counts = Counter(ch for s in sentences for w in s.words for ch in w)
    words = Vocab.from_counts(word_counts, min_count=config.data.min_word_count)
    labels = {}
    for name in label_columns(config.data, sentences):
        counts = Counter(t for s in sentences for t in s.labels[name] if t)  # "": no class (lemma.with_scripts)
        labels[name] = Vocab.from_counts(counts, specials=False)
    vocabs = Vocabs(words, Vocab.from_counts(char_counts), labels)
    vocabs.word_counts = [0, 0] + [word_counts[w] for w in words.itos[2:]]
    return vocabs


def prepare(sentences: Sequence[Sentence], config: Config) -> list[Sentence]:
    """Training sentences with the label columns the heads learn: lemma edit scripts, one column per feature."""
    columns, sentences = config.data.columns, list(sentences)
    if LEMMA in columns:
        if not for_config(config).declared(config).distributions:
            raise ValueError("a lemma column needs an LSTM tagger with softmax heads (it predicts edit scripts)")
        sentences = with_scripts(sentences)
    if FEATS in columns and config.data.format == "conllu" and PER_FEATURE in config.data.feats_heads:
        if not for_config(config).declared(config).trained:
            raise ValueError("per-feature FEATS heads need an LSTM tagger (model.kind = 'lstm')")
        sentences = with_features(sentences, feature_names(sentences))
    return sentences


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
    Under torchrun (distributed.py) every worker calls this with the same arguments.
    """
    if not train or not dev:
        raise ValueError(f"no {'training' if not train else 'dev'} sentences to {'train on' if not train else 'score'}")
    if config.model.kind == "segmenter":  # labels characters of the raw text, not words: its own loop
        from lstmtag.segmenter_train import train_segmenter

        if teacher is not None:
            raise ValueError("a segmenter learns from gold text only; it has no teacher to distill")
        return train_segmenter(train, dev, config, out, resume=resume, on_progress=on_progress, info=info)
    settings = config.train
    device = devices.resolve(settings.device)
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    train = prepare(train, config)
    vocabs = build_vocabs(train, config)
    model = build_tagger(config, vocabs)
    info = dict(info or {})
    if not model.capabilities.trained:  # an HMM is counted: one pass, then score on dev
        if distributed.current().world > 1:
            raise ValueError("an HMM is counted in one pass, not trained: run it on one process, without torchrun")
        started = time.perf_counter()
        model.fit(train, vocabs)
        bundle = TaggerBundle(model, vocabs, config, {**info, "train_seconds": time.perf_counter() - started})
        accuracy = _evaluate(bundle, dev)
        bundle.info["dev_accuracy"] = accuracy
        save_tagger(out, bundle)
        return TrainResult(accuracy, 1, 1, time.perf_counter() - started, "epochs")

    targets: dict[int, distill.Targets] = {}
    if teacher is not None:
        distill.check_student(model)
        targets = dict(zip(map(id, train), distill.teacher_targets(teacher, train, vocabs), strict=True))
    model.to(device)  # the teacher's targets stay on the CPU; the loop moves each batch's share
    task = TaggerTask(train, dev, config, vocabs, model, out, info=info, targets=targets, weight=distill_weight)
    if teacher is not None:
        weights = [float(t.double().sum()) for t in teacher.bundle.model.state_dict().values() if t.is_floating_point()]
        task.teacher = distributed.digest(teacher.bundle.config.to_dict(), weights, distill_weight)
    loop_settings = loop.Settings(
        epochs=settings.epochs,
        lr=settings.lr,
        clip=settings.clip,
        seed=settings.seed,
        lr_floor=0.05,
        betas=(0.9, settings.beta2),
        weight_decay=settings.weight_decay,
        ema=settings.ema,
        max_minutes=settings.max_minutes,
        patience=settings.patience,
        higher_is_better=True,
    )
    result = loop.fit(task, loop_settings, out, config=config.to_dict(), resume=resume, on_progress=on_progress)
    return TrainResult(result.best_score, result.best_epoch, result.epochs_run, result.seconds, result.stopped_by)


class TaggerTask(loop.Task):
    """Tagger training for the loop: epochs of length-bucketed batches, mean dev accuracy as the score.

    Each global batch holds sentences of one length, so a rank's share of the sentences is its share
    of the tokens: 2 workers x B/2 sentences make the same gradient as 1 worker x B.
    """

    def __init__(
        self,
        train: Sequence[Sentence],
        dev: Sequence[Sentence],
        config: Config,
        vocabs: Vocabs,
        model: torch.nn.Module,
        out: str | Path,
        *,
        info: dict,
        targets: dict[int, distill.Targets],
        weight: float,
    ) -> None:
        self.train, self.dev, self.config, self.vocabs, self.out, self.info = train, dev, config, vocabs, out, info
        self.model, self.targets = model, targets
        self.teacher = "none"  # a digest of the teacher's settings and weights when distilling
        self.objective = distill.DistillLoss(model, weight=weight) if targets else TaggerLoss(model)
        self.steps_per_epoch = len(bucketed(train, config.train.batch_size, shuffle=False))

    def batches(self, epoch: int) -> list[list[Sentence]]:
        order = random.Random(loop.seed_for(self.config.train.seed, "order", epoch))
        return bucketed(list(self.train), self.config.train.batch_size, shuffle=True, rng=order)

    def piece(self, batch: list[Sentence], context: Context, rng: random.Random) -> tuple[tuple, float]:
        mine = batch[distributed.share(len(batch), context)]
        weight = context.world * self.tokens(mine) / max(self.tokens(batch), 1)  # losses are means over tokens
        mine = mine or batch[:1]  # more ranks than sentences: take part in the step with weight 0
        tensors = make_batch(mine, self.vocabs, word_dropout=self.config.model.word_dropout, rng=rng)
        if self.targets:
            return (tensors, [self.targets[id(s)] for s in mine]), weight
        return (tensors,), weight

    def tokens(self, batch: list[Sentence]) -> int:
        return sum(len(s.words) for s in batch)

    def evaluate(self, model: torch.nn.Module) -> float:
        model.eval()
        return _evaluate(TaggerBundle(devices.on_cpu(model), self.vocabs, self.config), self.dev)  # CPU runtime

    def save_model(self, model: torch.nn.Module, score: float, info: dict) -> None:
        best_info = {**self.info, "epoch": info["epoch"], "dev_accuracy": score, "train_seconds": info["train_seconds"]}
        save_tagger(self.out, TaggerBundle(devices.on_cpu(model), self.vocabs, self.config, best_info))

    def fingerprint(self) -> dict[str, str]:
        columns = self.config.data.columns
        return {
            "training data": _digest(self.train, columns),
            "dev data": _digest(self.dev, columns),
            "teacher": self.teacher,
        }


def _digest(sentences: Sequence[Sentence], columns: Sequence[str]) -> str:
    return distributed.digest(*((s.words, [s.labels.get(c) for c in columns]) for s in sentences))


def with_overrides(config: Config, **train_settings: object) -> Config:
    """A copy of ``config`` with some [train] settings replaced (used for --max-minutes)."""
    return replace(config, train=replace(config.train, **train_settings))
