"""FEATS as one softmax head per feature: ``Number=Sing|Person=3`` as Number = Sing, Person = 3, others ``_``.

Why: a whole FEATS string is one class among ~230 on EWT (861 on Turkish IMST), many of them rare,
and a combination never seen in training can never be predicted. One head per feature shares what
``Number=Plur`` means across every string that holds it and can put together unseen combinations
(Stanza's UFeats classifier, Qi et al. 2018, predicts FEATS this way). ``data.feats_heads`` picks
the heads a model trains (``whole``, ``per_feature`` or both on one encoder, to compare them); the
first one named fills the FEATS column users see.

Inside a model a per-feature head is an ordinary label column named ``feats:Number`` whose classes
are the feature's values and ``_``; ``assemble`` turns their choices back into a FEATS string with
the features sorted by name, case-insensitively, as UD requires (``_`` when none).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from lstmtag.config import FEATS_HEADS, DataConfig
from lstmtag.data import DataError, Sentence

COLUMN = "feats"  # the CoNLL-U column
PREFIX = "feats:"  # per-feature head columns inside a model: "feats:Number"
ABSENT = "_"  # a feature's value where the word does not have it; also the FEATS of a word with none
WHOLE, PER_FEATURE = FEATS_HEADS  # the choices of ``data.feats_heads``


def split(feats: str) -> dict[str, str]:
    """``"Number=Sing|Person=3"`` -> ``{"Number": "Sing", "Person": "3"}``; ``"_"`` -> ``{}``.

    Raises:
        ValueError: an item that is not ``Name=Value``.
    """
    if feats in (ABSENT, ""):
        return {}
    values = {}
    for item in feats.split("|"):
        name, equals, value = item.partition("=")
        if not (equals and name and value and value != ABSENT):
            raise ValueError(f"FEATS item {item!r} is not Name=Value")
        values[name] = value
    return values


def join(values: Mapping[str, str]) -> str:
    """The FEATS string of ``values``: absent ones left out, names sorted case-insensitively, ``_`` if none."""
    present = sorted((name.lower(), name, value) for name, value in values.items() if value != ABSENT)
    return "|".join(f"{name}={value}" for _, name, value in present) or ABSENT


def column(feature: str) -> str:
    """The label column of one feature's head (``Number`` -> ``feats:Number``)."""
    return PREFIX + feature


def is_feature_column(name: str) -> bool:
    return name.startswith(PREFIX)


def feature_names(sentences: Iterable[Sentence]) -> list[str]:
    """Every feature name in the sentences' FEATS column, in UD order (case-insensitive)."""
    names = {name for s in sentences for position in range(len(s.words)) for name in _split(s, position)}
    return sorted(names, key=lambda name: (name.lower(), name))


def with_features(sentences: Sequence[Sentence], names: Sequence[str]) -> list[Sentence]:
    """Copies of ``sentences`` with one label column per feature in ``names`` (``_`` where a word lacks it).

    A feature outside ``names`` (one dev has and train had not) is left out: the model has no head for it.
    """
    copies = []
    for sentence in sentences:
        values = [_split(sentence, position) for position in range(len(sentence.words))]
        added = {column(name): [v.get(name, ABSENT) for v in values] for name in names}
        copies.append(replace(sentence, labels={**sentence.labels, **added}))
    return copies


def _split(sentence: Sentence, position: int) -> dict[str, str]:
    """``split`` of one word's FEATS; a malformed one is a ``DataError`` at its line."""
    try:
        return split(sentence.labels[COLUMN][position])
    except ValueError as error:
        word_lines = sentence.word_lines
        line = sentence.line + word_lines[position] if position < len(word_lines) else sentence.line
        raise DataError(sentence.source, line, str(error)) from None


def assemble(tags: Mapping[str, Sequence[str]], probs: Mapping[str, Sequence[float]]) -> tuple[list[str], list[float]]:
    """FEATS strings from the per-feature heads' choices (``feats:*`` columns of ``tags``), one per token.

    The probability of a string is the product of its features' probabilities: the heads choose
    independently, so that is the probability of the whole choice.
    """
    columns = [name for name in tags if is_feature_column(name)]
    if not columns:
        raise ValueError("no per-feature columns (feats:Name) to assemble FEATS from")
    names = [name[len(PREFIX) :] for name in columns]
    strings = [join(dict(zip(names, chosen, strict=True))) for chosen in zip(*(tags[c] for c in columns), strict=True)]
    joint = [math.prod(chosen) for chosen in zip(*(probs[c] for c in columns), strict=True)]
    return strings, joint


def label_columns(data: DataConfig, sentences: Sequence[Sentence]) -> list[str]:
    """The label columns a tagger learns for ``data.columns``: FEATS becomes the heads ``data.feats_heads`` names.

    Per-feature columns are read from ``sentences`` (prepared by ``with_features``).
    """
    if COLUMN not in data.columns or data.format != "conllu":
        return list(data.columns)
    features = [name for name in (sentences[0].labels if sentences else {}) if is_feature_column(name)]
    if PER_FEATURE in data.feats_heads and not features:
        raise ValueError("data.feats_heads names per_feature, but the training data has no FEATS to learn them from")
    learned = {WHOLE: [COLUMN], PER_FEATURE: features}
    columns = []
    for name in data.columns:
        columns += [c for head in data.feats_heads for c in learned[head]] if name == COLUMN else [name]
    return columns
