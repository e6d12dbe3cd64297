"""Scores for taggers: accuracy on known and unknown words, per-tag P/R/F1, confusions, BIO spans."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class ColumnScores:
    """Running counts for one label column; ``add`` a sentence at a time, then ``summary``."""

    correct: int = 0
    total: int = 0
    known_correct: int = 0
    known_total: int = 0
    gold_counts: Counter[str] = field(default_factory=Counter)
    predicted_counts: Counter[str] = field(default_factory=Counter)
    true_positives: Counter[str] = field(default_factory=Counter)
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)
    spans: SpanScores | None = None

    def add(self, gold: Sequence[str], predicted: Sequence[str], known: Sequence[bool]) -> None:
        for g, p, k in zip(gold, predicted, known, strict=True):
            hit = g == p
            self.total += 1
            self.correct += hit
            self.known_total += k
            self.known_correct += hit and k
            self.gold_counts[g] += 1
            self.predicted_counts[p] += 1
            if hit:
                self.true_positives[g] += 1
            else:
                self.confusions[(g, p)] += 1
        if self.spans is not None:
            self.spans.add(gold, predicted)

    def summary(self, top_confusions: int = 10) -> dict[str, object]:
        unknown_total = self.total - self.known_total
        per_tag = {}
        for tag in sorted(set(self.gold_counts) | set(self.predicted_counts)):
            tp = self.true_positives[tag]
            precision = _ratio(tp, self.predicted_counts[tag])
            recall = _ratio(tp, self.gold_counts[tag])
            per_tag[tag] = {
                "precision": precision,
                "recall": recall,
                "f1": _f1(precision, recall),
                "support": self.gold_counts[tag],
            }
        result: dict[str, object] = {
            "accuracy": _ratio(self.correct, self.total),
            "known_accuracy": _ratio(self.known_correct, self.known_total),
            "unknown_accuracy": _ratio(self.correct - self.known_correct, unknown_total),
            "tokens": self.total,
            "unknown_tokens": unknown_total,
            "per_tag": per_tag,
            "confusions": [
                {"gold": g, "predicted": p, "count": c} for (g, p), c in self.confusions.most_common(top_confusions)
            ],
        }
        if self.spans is not None:
            result["spans"] = self.spans.summary()
        return result


PER_CLASS_ROWS = 60  # a longer per-class table (lemmas: thousands) shows the most frequent classes; EWT XPOS has 50


def shown_classes(per_tag: dict[str, dict], *, limit: int = PER_CLASS_ROWS) -> dict[str, dict]:
    """The rows of a readable per-class table: every class in name order, or the ``limit`` most frequent.

    Why: a lemma column has a class per lemma (thousands on EWT), FEATS hundreds; a table of them all
    buries the accuracy lines. Most frequent means the largest gold support, ties by name.
    """
    if len(per_tag) <= limit:
        return per_tag
    return dict(sorted(per_tag.items(), key=lambda item: (-item[1]["support"], item[0]))[:limit])


def bio_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """(start, end exclusive, type) of each chunk, read as the CoNLL evaluation reads BIO.

    An ``I-X`` that does not continue an ``X`` chunk starts a new one, as conlleval does.
    """
    spans = set()
    start, kind = None, None
    for position, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        continues = prefix == "I" and kind == label
        if start is not None and not continues:
            spans.add((start, position, kind))
            start, kind = None, None
        if prefix in ("B", "I") and not continues:
            start, kind = position, label
    return spans


@dataclass
class SpanScores:
    """Exact-match chunk precision, recall and F1 over BIO labels."""

    gold: int = 0
    predicted: int = 0
    correct: int = 0

    def add(self, gold: Sequence[str], predicted: Sequence[str]) -> None:
        gold_spans, predicted_spans = bio_spans(gold), bio_spans(predicted)
        self.gold += len(gold_spans)
        self.predicted += len(predicted_spans)
        self.correct += len(gold_spans & predicted_spans)

    def summary(self) -> dict[str, float | int]:
        precision, recall = _ratio(self.correct, self.predicted), _ratio(self.correct, self.gold)
        return {"precision": precision, "recall": recall, "f1": _f1(precision, recall), "gold_spans": self.gold}


def is_bio(labels: Sequence[str]) -> bool:
    """True when every label is O, B-X or I-X, and some are not O."""
    return any(t[:2] in ("B-", "I-") for t in labels) and all(t == "O" or t[:2] in ("B-", "I-") for t in labels)


def perplexity(total_nll: float, count: int) -> dict[str, float]:
    """Mean loss in nats, bits per token (character or word), and perplexity."""
    nats = total_nll / max(count, 1)
    return {"loss": nats, "bits_per_token": nats / math.log(2), "perplexity": math.exp(min(nats, 700.0))}


def headline(nats: float, unit: str) -> tuple[str, float]:
    """The figure a language model of ``unit`` is judged by: bits per character, or word perplexity."""
    scores = perplexity(nats, 1)
    return ("bits/char", scores["bits_per_token"]) if unit == "char" else ("perplexity", scores["perplexity"])


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0
