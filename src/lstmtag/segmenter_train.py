"""Training the segmenter from a CoNLL-U file: character labels from ``# text`` and the tokens, then a loop.

The raw text of a paragraph is its sentences' ``# text`` lines joined with a space (a new paragraph
at ``# newpar`` or ``# newdoc``, as ``pipeline.gold_paragraphs`` reads it). Each token's form is found
in that text character by character (spaces skipped), and its last character is labelled token end,
multiword-token end or sentence end (``segmenter.LABELS``). The dev score that picks the best epoch
is the mean F1 of Tokens, Sentences and Words on the dev file's text (``ud_eval``).
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from lstmtag import checkpoint, ud_eval
from lstmtag.config import Config
from lstmtag.data import DataError, Sentence
from lstmtag.pipeline import gold_paragraphs
from lstmtag.raw import segmented
from lstmtag.segmenter import (
    INSIDE,
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
    on_progress: Callable[[Progress], None] | None = None,
    info: dict | None = None,
) -> TrainResult:
    """Train the character BiLSTM and the expansion table; the best epoch on dev is written to ``out``."""
    settings = config.train
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    data, skipped = labelled(train)
    if not data:
        raise ValueError("no training paragraph whose tokens spell its '# text' line")
    expander = Expander.learn(multiword_pairs(train))
    covered, total = expansion_coverage(expander, dev)
    info = {**(info or {}), "skipped_paragraphs": skipped, "dev_multiword_expanded": [covered, total]}
    segmenter = TrainedSegmenter(config, char_vocabulary(text for text, _ in data), expander, info)
    net = segmenter.net
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=settings.lr, betas=(0.9, settings.beta2), weight_decay=settings.weight_decay
    )
    pieces = _pieces(data)
    budget = settings.max_minutes * 60 if settings.max_minutes > 0 else math.inf
    started = time.perf_counter()
    best, best_epoch, bad, stopped_by, epoch = -1.0, 0, 0, "epochs", 0
    for epoch in range(1, settings.epochs + 1):
        net.train()
        rng.shuffle(pieces)
        batches = [pieces[i : i + settings.batch_size] for i in range(0, len(pieces), settings.batch_size)]
        loss_sum, chars = 0.0, 0
        for step, batch in enumerate(batches, start=1):
            if time.perf_counter() - started > budget:
                stopped_by = "time"
                break
            loss = _loss(segmenter, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), settings.clip)
            optimizer.step()
            loss_sum += float(loss.detach())
            chars += sum(len(text) for text, _ in batch)
            if on_progress is not None and (step % 20 == 0 or step == len(batches)):
                elapsed = time.perf_counter() - started
                on_progress(
                    Progress(epoch, settings.epochs, step, len(batches), loss_sum / step, chars / elapsed, elapsed)
                )
        net.eval()
        score = sum(scores(segmenter, dev).values()) / 3
        if score > best:
            best, best_epoch, bad = score, epoch, 0
            segmenter.info.update(epoch=epoch, dev_accuracy=score, dev_scores=scores(segmenter, dev))
            checkpoint.save(out, to_file(segmenter))
        else:
            bad += 1
        elapsed = time.perf_counter() - started
        if on_progress is not None:
            on_progress(
                Progress(
                    epoch,
                    settings.epochs,
                    1,
                    1,
                    loss_sum / max(step, 1),
                    0.0,
                    elapsed,
                    dev_accuracy=score,
                    best_accuracy=best,
                    event="epoch",
                )
            )
        if stopped_by == "time":
            break
        if bad >= settings.patience:
            stopped_by = "patience"
            break
    return TrainResult(best, best_epoch, epoch, time.perf_counter() - started, stopped_by)


def _loss(segmenter: TrainedSegmenter, batch: Sequence[tuple[str, list[int]]]) -> torch.Tensor:
    """Cross-entropy over the labels of non-space characters (whitespace is decided by rule)."""
    ids = [segmenter.encode(text) for text, _ in batch]
    lengths = torch.tensor([len(row) for row in ids])
    longest = int(lengths.max())
    padded = torch.zeros(len(batch), longest, dtype=torch.long)
    gold = torch.full((len(batch), longest), -100, dtype=torch.long)  # -100: not scored
    for row, (text, labels) in enumerate(batch):
        padded[row, : len(text)] = torch.tensor(ids[row])
        gold[row, : len(text)] = torch.tensor(
            [-100 if ch.isspace() else label for ch, label in zip(text, labels, strict=True)]
        )
    scores_ = segmenter.net(padded, lengths)  # (B, T, 5)
    return torch.nn.functional.cross_entropy(
        scores_.reshape(-1, scores_.shape[-1]), gold.reshape(-1), ignore_index=-100
    )
