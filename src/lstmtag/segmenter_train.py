"""Training the segmenter from a CoNLL-U file: character labels from ``# text`` and the tokens, then a loop.

The raw text of a paragraph is its sentences' ``# text`` lines joined with a space (a new paragraph
at ``# newpar`` or ``# newdoc``, as ``pipeline.gold_paragraphs`` reads it). Each token's form is found
in that text character by character (spaces skipped), and its last character is labelled token end,
multiword-token end or sentence end (``segmenter.LABELS``). Training runs in the one loop
(``loop.fit``: schedule, EMA, time budget, early stopping, resume, data-parallel workers); the dev
score that picks the best epoch is the mean F1 of Tokens, Sentences and Words on the dev file's text.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from lstmtag import checkpoint, devices, distributed, loop, ud_eval
from lstmtag.config import Config
from lstmtag.data import DataError, Sentence
from lstmtag.distributed import Context
from lstmtag.pipeline import gold_paragraphs
from lstmtag.raw import segmented
from lstmtag.segmenter import (
    INSIDE,
    LABELS,
    MULTIWORD,
    MULTIWORD_SENTENCE,
    SENTENCE,
    TOKEN,
    Expander,
    TrainedSegmenter,
    char_vocabulary,
    to_file,
)
from lstmtag.train import Progress, TrainResult

TRAIN_WINDOW = 400  # characters per training sequence; paragraphs are cut into pieces this long


def tokens_of(sentence: Sentence) -> list[tuple[str, list[str]]]:
    """(surface, words) of each token: a multiword token's range line with its words, or one word."""
    result: list[tuple[str, list[str]]] = []
    last = 0  # the last word ID inside the range being read
    for line in sentence.lines:
        if line.startswith("#"):
            continue
        cells = line.split("\t")
        if "." in cells[0]:
            continue
        if "-" in cells[0]:
            last = int(cells[0].split("-")[1])
            result.append((cells[1], []))
        elif int(cells[0]) <= last:
            result[-1][1].append(cells[1])
        else:
            result.append((cells[1], [cells[1]]))
    return result


def labelled(sentences: Sequence[Sentence]) -> tuple[list[tuple[str, list[int]]], int]:
    """Each paragraph's text with a label per character, and how many paragraphs were skipped.

    A paragraph whose tokens do not spell its ``# text`` (a treebank error) is skipped, not guessed at.
    """
    groups: list[list[Sentence]] = []
    for sentence in sentences:
        starts = any(line.startswith(("# newpar", "# newdoc")) for line in sentence.lines)
        if starts or not groups:
            groups.append([])
        groups[-1].append(sentence)
    result, skipped = [], 0
    for group in groups:
        (text,) = gold_paragraphs(group)
        labels = [INSIDE] * len(text)
        at = 0
        try:
            for sentence in group:
                tokens = tokens_of(sentence)
                for position, (surface, words) in enumerate(tokens):
                    for ch in "".join(surface.split()):
                        while at < len(text) and text[at].isspace():
                            at += 1
                        if at >= len(text) or text[at] != ch:
                            raise DataError(sentence.source, sentence.line, f"token {surface!r} is not in # text")
                        at += 1
                    end = position == len(tokens) - 1
                    multiword = len(words) != 1 or words[0] != surface
                    labels[at - 1] = (
                        (MULTIWORD_SENTENCE if multiword else SENTENCE) if end else (MULTIWORD if multiword else TOKEN)
                    )
        except DataError:
            skipped += 1
            continue
        result.append((text, labels))
    return result, skipped


def multiword_pairs(sentences: Sequence[Sentence]) -> list[tuple[str, list[str]]]:
    return [(surface, words) for s in sentences for surface, words in tokens_of(s) if len(words) > 1]


def expansion_coverage(expander: Expander, sentences: Sequence[Sentence]) -> tuple[int, int]:
    """(multiword tokens of ``sentences`` that ``expander`` expands exactly, all of them)."""
    pairs = multiword_pairs(sentences)
    return sum(1 for surface, words in pairs if list(expander.expand(surface)) == words), len(pairs)


def scores(segmenter: TrainedSegmenter, gold: Sequence[Sentence]) -> dict[str, float]:
    """Tokens, Sentences and Words F1 of the segmenter alone on the gold file's text."""
    numbers = itertools.count(1)
    system = list(segmented("\n\n".join(gold_paragraphs(gold)), segmenter, "<system>", 0, numbers))
    result = ud_eval.evaluate(ud_eval.document(gold), ud_eval.document(system))
    return {name: result[name].f1 for name in ("Tokens", "Sentences", "Words")}


def _pieces(data: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    return [
        (text[a : a + TRAIN_WINDOW], labels[a : a + TRAIN_WINDOW])
        for text, labels in data
        for a in range(0, len(text), TRAIN_WINDOW)
    ]


def train_segmenter(
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    config: Config,
    out: str | Path,
    *,
    resume: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    info: dict | None = None,
) -> TrainResult:
    """Train the character BiLSTM (in ``loop.fit``) and the expansion table; the best on dev goes to ``out``."""
    settings = config.train
    device = devices.resolve(settings.device)
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    data, skipped = labelled(train)
    if not data:
        raise ValueError("no training paragraph whose tokens spell its '# text' line")
    expander = Expander.learn(multiword_pairs(train))
    covered, total = expansion_coverage(expander, dev)
    info = {**(info or {}), "skipped_paragraphs": skipped, "dev_multiword_expanded": [covered, total]}
    segmenter = TrainedSegmenter(config, char_vocabulary(text for text, _ in data), expander, info)
    segmenter.net.to(device)
    task = SegmenterTask(segmenter, _pieces(data), dev, out)
    loop_settings = loop.Settings(
        epochs=settings.epochs,
        lr=settings.lr,
        clip=settings.clip,
        seed=settings.seed,
        betas=(0.9, settings.beta2),
        weight_decay=settings.weight_decay,
        ema=settings.ema,
        max_minutes=settings.max_minutes,
        patience=settings.patience,
    )
    result = loop.fit(task, loop_settings, out, config=config.to_dict(), resume=resume, on_progress=on_progress)
    return TrainResult(result.best_score, result.best_epoch, result.epochs_run, result.seconds, result.stopped_by)


class SegmenterLoss(nn.Module):
    """``forward(ids, lengths, gold) -> loss``: cross-entropy over the labels of non-space characters.

    ``multiword_weight`` scales the loss of characters whose gold label is a multiword-token end, so a
    treebank where they are rare (Turkish IMST) still teaches them; 1 leaves the loss plain.
    """

    def __init__(self, net: nn.Module, *, multiword_weight: float = 1.0) -> None:
        super().__init__()
        self.net = net
        weight = torch.ones(len(LABELS))
        weight[[MULTIWORD, MULTIWORD_SENTENCE]] = multiword_weight
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        scores = self.net(ids, lengths)  # (B, T, 5)
        return nn.functional.cross_entropy(
            scores.reshape(-1, scores.shape[-1]),
            gold.reshape(-1),
            weight=self.weight.to(scores.device),
            ignore_index=-100,
        )


class SegmenterTask(loop.Task):
    """Segmenter training for the loop: shuffled windows of paragraphs, dev F1 of Tokens/Sentences/Words."""

    def __init__(self, segmenter: TrainedSegmenter, pieces: list, dev: Sequence[Sentence], out: str | Path) -> None:
        self.segmenter, self.pieces, self.dev, self.out = segmenter, pieces, dev, out
        self.model = segmenter.net
        self.objective = SegmenterLoss(segmenter.net, multiword_weight=segmenter.config.train.multiword_weight)
        self.size = segmenter.config.train.batch_size
        self.steps_per_epoch = math.ceil(len(pieces) / self.size)

    def batches(self, epoch: int) -> list[list[tuple[str, list[int]]]]:
        order = list(self.pieces)
        random.Random(loop.seed_for(self.segmenter.config.train.seed, "order", epoch)).shuffle(order)
        return [order[i : i + self.size] for i in range(0, len(order), self.size)]

    def piece(self, batch: list, context: Context, rng: random.Random) -> tuple[tuple, float]:
        mine = batch[distributed.share(len(batch), context)]
        weight = context.world * self.tokens(mine) / max(self.tokens(batch), 1)
        return self._tensors(mine or batch[:1]), weight

    def tokens(self, batch: list) -> int:
        return sum(len(text) for text, _ in batch)

    def evaluate(self, model: nn.Module) -> float:
        model.eval()
        return sum(scores(self._with(model), self.dev).values()) / 3

    def save_model(self, model: nn.Module, score: float, info: dict) -> None:
        segmenter = self._with(model)
        dev_scores = scores(segmenter, self.dev)
        segmenter.info = {
            **self.segmenter.info,
            "epoch": info["epoch"],
            "dev_accuracy": score,
            "dev_scores": dev_scores,
        }
        checkpoint.save(self.out, to_file(segmenter))

    def fingerprint(self) -> dict[str, str]:
        return {
            "training data": distributed.digest(self.pieces),
            "dev data": distributed.digest([s.lines for s in self.dev]),
        }

    def _with(self, net: nn.Module) -> TrainedSegmenter:
        """The segmenter with ``net`` (the averaged weights, when the loop keeps them) in place of its own.

        On the CPU: segmenting text is CPU code, so a network trained on a GPU is scored and saved from a copy.
        """
        segmenter = copy.copy(self.segmenter)
        segmenter.net = devices.on_cpu(net)
        return segmenter

    def _tensors(self, batch: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids = [self.segmenter.encode(text) for text, _ in batch]
        lengths = torch.tensor([len(row) for row in ids])
        longest = int(lengths.max())
        padded = torch.zeros(len(batch), longest, dtype=torch.long)
        gold = torch.full((len(batch), longest), -100, dtype=torch.long)  # -100: not scored (spaces, padding)
        for row, (text, labels) in enumerate(batch):
            padded[row, : len(text)] = torch.tensor(ids[row])
            gold[row, : len(text)] = torch.tensor(
                [-100 if ch.isspace() else label for ch, label in zip(text, labels, strict=True)]
            )
        return padded, lengths, gold
