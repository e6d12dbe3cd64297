"""The contract every model kind keeps (spaCy's ``test_overfitting_IO``, for each kind in ``models.KINDS``).

For every kind, inference precision and backend: it overfits a tiny set to exact outputs; save ->
load gives identical outputs (tags and probabilities); batched outputs equal one-by-one outputs
(tags exactly, probabilities to float rounding), in batches of mixed lengths. A kind added to the
registry without a case here fails ``test_every_registered_kind_has_a_case``. FEATS from per-feature
heads (``per-feature``) keep it too, assembled into the one FEATS column users see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import torch

import lstmtag
from lstmtag import checkpoint, models
from lstmtag.config import load_config
from lstmtag.data import Sentence, load_labelled
from lstmtag.language_model import LanguageModel
from lstmtag.runtime import PRECISIONS
from lstmtag.segmenter import LABELS
from tests.conftest import DATA, tiny_config, train_tiny_segmenter

Output = tuple[list[str], list[float]]  # one item's predicted labels (tags or next tokens) and their probabilities
COLUMNS = ("upos", "xpos")
FEATS_COLUMNS = ("upos", "xpos", "feats")
ALPHABET = "abcdefghijklmnopqrstuvwxyz "  # every character names the next one: an LM can learn it exactly


_TRAINED: dict[tuple[str, ...], Path] = {}  # one training per setting, shared by the cases that run it
_SOURCES: dict[Path, Path] = {}  # ONNX file -> the model file it was exported from


def train_tiny(kind: str, folder: Path, data: Sequence[Sentence], *overrides: str) -> Path:
    """The one place the contract's tiny models are trained, through the ordinary training entry points."""
    from lstmtag.lm_train import train_lm
    from lstmtag.train import train_tagger

    if (kind, *overrides) in _TRAINED:
        return _TRAINED[(kind, *overrides)]
    out = _TRAINED[(kind, *overrides)] = folder / f"{kind}.safetensors"
    if kind == "lm":
        settings = ["lm.embed_dim=16", "lm.hidden_size=32", "lm.num_layers=1", "lm.dropout=0.0", "lm.batch_size=4"]
        settings += ["lm.seq_len=16", "lm.lr=0.02", "lm.eval_every=50", "lm.threads=1", "lm.epochs=40"]
        train_lm(ALPHABET * 30, load_config(None, settings + list(overrides)), out)
    else:
        config = tiny_config("train.epochs=60", "train.patience=60", "train.seed=3", *overrides)
        train_tagger(data, data, config, out)
    return out


@dataclass
class Case:
    """How to make one kind's model file from the tiny set, open it, and write it again."""

    make: Callable[[Path, Sequence[Sentence]], Path]
    open: Callable[[Path], Any] = lambda path: lstmtag.load(path)
    resave: Callable[[Any, Path, Path], Path] = lambda loaded, source, target: _resave(loaded, target)
    # How far batched probabilities may drift from one-by-one ones: float rounding, except where int8
    # quantizes activations per batch (documented in predict.py); here that moved them by up to 0.02,
    # and it can flip a low-confidence tag, so int8 is held to it on the tiny set only, not on new text.
    batched_probs: float = 1e-5
    unseen: bool = True  # also batch unseen sentences (dev) with the tiny set
    columns: tuple[str, ...] = COLUMNS  # a tagger's outputs compared with the gold ones


def _resave(predictor: Any, target: Path) -> Path:
    models.save_tagger(target, predictor.bundle)
    return target


def _ensemble(folder: Path, data: Sequence[Sentence]) -> Path:
    members = [train_tiny(f"member{seed}", folder, data, f"train.seed={seed}") for seed in (3, 4)]
    combined = models.ensemble([models.load_tagger(p) for p in members], [str(p) for p in members])
    models.save_tagger(folder / "ensemble.safetensors", combined)
    return folder / "ensemble.safetensors"


def _onnx(int8: bool) -> Callable[[Path, Sequence[Sentence]], Path]:
    def make(folder: Path, data: Sequence[Sentence]) -> Path:
        pytest.importorskip("onnxruntime")
        from lstmtag.onnx_backend import export

        source = train_tiny("softmax", folder, data)
        export(models.load_tagger(source), folder / "tagger.onnx", int8=int8)
        _SOURCES[folder / "tagger.onnx"] = source
        return folder / "tagger.onnx"

    return make


def _export_again(int8: bool) -> Callable[[Any, Path, Path], Path]:
    """An ONNX file is not written back from ONNX Runtime: export its source model again instead."""

    def resave(loaded: Any, source: Path, target: Path) -> Path:
        from lstmtag.onnx_backend import export

        export(models.load_tagger(_SOURCES[source]), target.with_suffix(".onnx"), int8=int8)
        return target.with_suffix(".onnx")

    return resave


def _with_feats(folder: Path, data: Sequence[Sentence]) -> Path:
    """FEATS from per-feature heads: the tiny set again with its FEATS column, then the ordinary training."""
    data = _feats_set(len(data))
    return train_tiny(
        "per-feature", folder, data, f"data.columns={','.join(FEATS_COLUMNS)}", "data.feats_heads=per_feature"
    )


def _feats_set(size: int) -> list[Sentence]:
    return load_labelled(DATA / "ewt_sample.conllu", "conllu", FEATS_COLUMNS)[:size]


def _paragraphs(sentences: Sequence[Sentence]) -> list[Sentence]:
    """Each sentence a paragraph of its own, as the contract hands a segmenter one sentence's text at a time."""
    return [replace(s, lines=["# newpar", *s.lines], word_lines=[i + 1 for i in s.word_lines]) for s in sentences]


def _resave_segmenter(segmenter: Any, source: Path, target: Path) -> Path:
    from lstmtag.segmenter import to_file

    checkpoint.save(target, to_file(segmenter))
    return target


def _resave_lm(lm: LanguageModel, source: Path, target: Path) -> Path:
    checkpoint.save(target, lm.to_file())
    return target


CASES: dict[str, Case] = {
    "softmax": Case(lambda folder, data: train_tiny("softmax", folder, data)),
    "crf": Case(lambda folder, data: train_tiny("crf", folder, data, "model.head=crf")),
    "lesson": Case(
        lambda folder, data: train_tiny(
            "lesson", folder, data, "model.bidirectional=false", "model.num_layers=1", "model.char_hidden=0"
        )
    ),
    "hmm": Case(lambda folder, data: train_tiny("hmm", folder, data, "model.kind=hmm")),
    "ensemble": Case(_ensemble),
    "per-feature": Case(_with_feats, columns=FEATS_COLUMNS),
    "int8": Case(
        lambda folder, data: train_tiny("softmax", folder, data),
        open=lambda path: lstmtag.load(path, precision="int8"),
        batched_probs=0.05,
        unseen=False,
    ),
    "bf16": Case(
        lambda folder, data: train_tiny("softmax", folder, data), open=lambda path: lstmtag.load(path, precision="bf16")
    ),
    "onnx": Case(_onnx(int8=False), resave=_export_again(int8=False)),
    "onnx-int8": Case(_onnx(int8=True), resave=_export_again(int8=True), batched_probs=0.05, unseen=False),
    "lm": Case(lambda folder, data: train_tiny("lm", folder, data), resave=_resave_lm),
    "segmenter": Case(
        lambda folder, data: train_tiny_segmenter(_paragraphs(data), folder / "segmenter.safetensors")[0],
        resave=_resave_segmenter,
    ),
}
PRECISION_CASES = {"float": "softmax", "int8": "int8", "bf16": "bf16"}


def outputs(loaded: Any, items: Sequence[Any], columns: Sequence[str] = COLUMNS) -> list[Output]:
    """Every item's outputs from one batched call: a tagger's tags per column, an LM's next tokens."""
    if loaded.capabilities.generates:
        return _lm_outputs(loaded, items)
    if loaded.capabilities.segments:
        return _segmenter_outputs(loaded, items)
    return [
        ([t for name in columns for t in tagged.tags[name]], [p for name in columns for p in tagged.probs[name]])
        for tagged in loaded.predict(items)
    ]


def _lm_outputs(lm: LanguageModel, texts: Sequence[str]) -> list[Output]:
    """The likeliest next character after each prefix, and its probability: texts padded into one batch."""
    ids = [lm.encode(text) for text in texts]
    longest = max(len(row) for row in ids)
    padded = torch.tensor([row + [0] * (longest - len(row)) for row in ids])  # (B, T); a forward LSTM never reads ahead
    with torch.no_grad():
        best, index = lm.model(padded)[0].softmax(-1).max(-1)
    return [
        ([lm.vocab.itos[i] for i in index[row, : len(text)].tolist()], best[row, : len(text)].tolist())
        for row, text in enumerate(texts)
    ]


def _segmenter_outputs(segmenter: Any, sentences: Sequence[Sentence]) -> list[Output]:
    """Each sentence's text (its ``# text``) labelled in one padded batch: the labels of non-space characters."""
    texts = [text for text, _ in _labelled(sentences)]
    return [
        ([LABELS[i] for ch, i in zip(text, labels, strict=True) if not ch.isspace()], probs)
        for text, (labels, probs) in zip(texts, segmenter.label(texts, probabilities=True), strict=True)
    ]


def _labelled(sentences: Sequence[Sentence]) -> list[tuple[str, list[int]]]:
    from lstmtag.segmenter_train import labelled

    return [labelled([sentence])[0][0] for sentence in sentences]


def gold(items: Sequence[Any], *, segments: bool = False, columns: Sequence[str] = COLUMNS) -> list[list[str]]:
    """What an overfitted model must output: the gold tags, each character's successor or label."""
    if segments:
        return [
            [LABELS[i] for ch, i in zip(text, labels, strict=True) if not ch.isspace()]
            for text, labels in _labelled(items)
        ]
    if isinstance(items[0], str):
        return [[ALPHABET[(ALPHABET.index(ch) + 1) % len(ALPHABET)] for ch in text] for text in items]
    return [[t for name in columns for t in s.labels[name]] for s in items]


@pytest.fixture(scope="module")
def tiny_set(sample) -> list[Sentence]:
    """Eight real sentences of mixed lengths."""
    chosen = sample[:8]
    assert len({len(s.words) for s in chosen}) > 4
    return chosen


@pytest.fixture(scope="module", params=list(CASES))
def subject(request, tiny_set, tmp_path_factory):
    case = CASES[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    path = case.make(folder, tiny_set)
    items = ["bcdefg", "xyz abc", "mnopqrstuv", "a"] if request.param == "lm" else tiny_set
    if case.columns != COLUMNS:
        items = _feats_set(len(tiny_set))
    return case, path, items


def test_every_registered_kind_has_a_case():
    tagger_kinds = {"tagger": "softmax", "hmm": "hmm", "ensemble": "ensemble", "lm": "lm", "onnx": "onnx"}
    tagger_kinds["segmenter"] = "segmenter"
    assert set(tagger_kinds) == set(models.KINDS), "a new kind needs a case in CASES"
    assert set(PRECISION_CASES) == set(PRECISIONS), "a new precision needs a case in CASES"
    assert {*tagger_kinds.values(), *PRECISION_CASES.values()} <= set(CASES)


def test_overfits_a_tiny_set_to_exact_outputs(subject):
    case, path, items = subject
    loaded = case.open(path)
    predicted = outputs(loaded, items, case.columns)
    assert [labels for labels, _ in predicted] == gold(
        items, segments=loaded.capabilities.segments, columns=case.columns
    )


def test_save_load_gives_identical_outputs(subject, tmp_path):
    case, path, items = subject
    first = case.open(path)
    second = case.open(case.resave(first, path, tmp_path / "again.safetensors"))
    assert outputs(first, items, case.columns) == outputs(
        second, items, case.columns
    )  # tags and probabilities, exactly


def test_batched_equals_one_by_one_in_mixed_lengths(subject, dev_sample):
    case, path, items = subject
    loaded = case.open(path)
    more = list(items) + (["hello world", "zz"] if isinstance(items[0], str) else list(dev_sample[:6]))
    more = more if case.unseen else list(items)
    together = outputs(loaded, more, case.columns)
    for item, batched in zip(more, together, strict=True):
        (alone,) = outputs(loaded, [item], case.columns)
        assert alone[0] == batched[0]
        assert alone[1] == pytest.approx(batched[1], abs=case.batched_probs)
