"""Predictor: the one inference path behind the Python API, the CLI and the HTTP service.

Sentences are sorted by length and decoded in padded batches of mixed lengths (little padding; in
float, padding changes a result only by the float rounding of the batch size: see runtime.py), then
returned in input order. int8 and bf16
round differently with the batch (int8 scales activations per batch), so their tags can differ in
rare tokens between a sentence alone and in a batch. Decoding returns ids; ids become tag strings
(lemma edit scripts become lemmas, or a model's lemma lexicon gives them; per-feature FEATS heads
become one FEATS string) here and nowhere else.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy
import torch

from lstmtag import memory
from lstmtag.contract import Capabilities, refuse
from lstmtag.data import Sentence
from lstmtag.feats import COLUMN as FEATS
from lstmtag.feats import PER_FEATURE, WHOLE, assemble, is_feature_column
from lstmtag.inspector import Stepper, Trace, single, trace_lstm
from lstmtag.lemma import COLUMN as LEMMA
from lstmtag.lemma import apply_all as apply_scripts
from lstmtag.lemma import is_script
from lstmtag.limits import MAX_INSPECT_TOKENS, MAX_SENTENCE_TOKENS, check_sentence
from lstmtag.metrics import ColumnScores, SpanScores, is_bio
from lstmtag.models import TaggerBundle, for_inference, load_segmenter, load_tagger, segmenter_path
from lstmtag.runtime import native_bf16
from lstmtag.segment import DEFAULT as rule_segment
from lstmtag.segment import Segmenter, words
from lstmtag.ud_eval import universal

# Padded tokens in one batch: the activations of a batch grow with it (2 x 128 BiLSTM, bf16, with
# lemma and FEATS heads: several kB a token, most in the emissions of 600 tags), so 128 sentences of
# 1,000 tokens (the input limit) would cost 0.9 GB at a time; the cap bounds that. Where speed peaks
# depends on the CPU: on the AVX-512/bf16 AMD EPYC (Zen 4) 2,048 tagged EWT test 1.04x as fast as 8,192
# in bf16 (bench/results/ab-cap2048-zen4.md, identical output) and lowered `tag`'s peak by 17 MiB; on
# an AVX2-only EPYC (float) it was as fast; on an Intel Xeon (bf16) 8,192 was faster (2,048: 0.69x).
MAX_BATCH_TOKENS = 2048
UFEATS = "ufeats"  # the report column of universal features (CoNLL 2018 UFeats), beside the whole FEATS string


@dataclass
class Tagged:
    """Predicted tags and the probability of each, per column, for one sentence.

    ``alternatives``: what a model's other FEATS heads chose (``feats/per_feature`` when the
    whole-string head fills ``feats``, or ``feats/whole``), for ``evaluate`` to compare them.
    """

    tags: dict[str, list[str]]
    probs: dict[str, list[float]]
    alternatives: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Score:
    """Accuracy per label column on gold data, and their mean (the early-stopping and dev figure)."""

    columns: dict[str, float]
    mean: float


def default_precision(info: dict) -> str:
    """The precision a model file asks for, where this CPU runs it natively; else float, without a warning.

    A shipped file names bf16 when its accuracy was measured in bf16; on a CPU without native bf16
    (AVX2 only) that would be slower than float, so float is used (same tags to within rounding).
    Asking for ``precision="bf16"`` explicitly still warns there.
    """
    precision = str(info.get("precision", "float"))
    return "float" if precision == "bf16" and not native_bf16() else precision


class Predictor:
    """Tags token lists with a loaded model. Build one with ``Predictor.load("en")``.

    ``precision`` picks the weights the neural encoder runs with: ``float``, ``int8`` (dynamic
    quantization) or ``bf16``; by default the one the model file names (``info["precision"]``, set
    for a shipped model whose accuracy was measured with it), else ``float``. ``batch_size`` is the
    most sentences tagged in one padded batch. ``segmenter`` splits raw text (``tag_text``, calling the
    predictor): a trained ``segmenter.SegmenterModel``, or the rule tokenizer by default.
    """

    def __init__(
        self,
        bundle: TaggerBundle,
        *,
        batch_size: int = 128,
        precision: str | None = None,
        segmenter: Segmenter = rule_segment,
    ) -> None:
        self.bundle = bundle
        self.segmenter = segmenter
        self.batch_size = batch_size
        self.bundle.model.eval()
        self.runtime = for_inference(bundle.model, precision=precision or default_precision(bundle.info))
        self.precision = self.runtime.precision
        lemmas = bundle.vocabs.labels.get(LEMMA)
        # Lemma heads predict edit scripts; a file that stores lemma strings (trained before) keeps them.
        self.lemma_scripts = lemmas is not None and all(is_script(label) for label in lemmas.itos)
        # A lemma lexicon (lexicon.py) wins over the scripts where it knows the (form, predicted tag).
        self.lexicon = bundle.lexicon if self.lemma_scripts else None
        if self.lexicon is not None and self.lexicon.column not in bundle.vocabs.labels:
            raise ValueError(
                f"the lemma lexicon is keyed by {self.lexicon.column!r}, a column the model does not predict"
            )
        # Per-feature FEATS heads (feats.py) are columns of the model, but users see one FEATS column.
        names = list(bundle.vocabs.labels)
        self.feature_columns = [name for name in names if is_feature_column(name)]
        self._columns = list(dict.fromkeys(FEATS if is_feature_column(name) else name for name in names))
        both = bool(self.feature_columns) and FEATS in names
        self.feats_from = bundle.config.data.feats_heads[0] if both else PER_FEATURE if self.feature_columns else WHOLE
        # With both kinds of head, what the one not filling FEATS chose is scored as an alternative.
        self.alternatives = [f"{FEATS}/{PER_FEATURE if self.feats_from == WHOLE else WHOLE}"] if both else []

    @classmethod
    def load(cls, name: str | Path, *, segmenter: str | Path | Segmenter | None = None, **options: object) -> Predictor:
        """A tagger by short name or path; ``segmenter``: a segmenter file (default: see ``choose_segmenter``)."""
        bundle = load_tagger(name)
        precision = str(options.get("precision") or default_precision(bundle.info))
        return cls(bundle, segmenter=choose_segmenter(name, segmenter, precision=precision), **options)  # type: ignore[arg-type]

    @property
    def capabilities(self) -> Capabilities:
        return self.bundle.model.capabilities

    @property
    def columns(self) -> list[str]:
        """The columns users see (a model's per-feature FEATS heads make one ``feats``)."""
        return list(self._columns)

    def predict(self, sentences: Sequence[Sentence]) -> list[Tagged]:
        """Decode ``sentences`` in padded batches sorted by length; results come back in input order."""
        results: list[Tagged | None] = [None] * len(sentences)
        # Ids become names in one numpy ``take`` per column over the batch's real tokens (object arrays
        # of the names: no per-token Python call), then each sentence takes its slice.
        names = {name: numpy.array(vocab.itos, dtype=object) for name, vocab in self.bundle.vocabs.labels.items()}
        with torch.no_grad():  # not inference_mode: CRF and HMM marginals use autograd
            for chunk in _chunks(sentences, self.batch_size):
                batch = self.runtime.batch([sentences[i] for i in chunk], self.bundle.vocabs)
                flat = {
                    name: (names[name].take(ids.numpy()).tolist(), probs.tolist())
                    for name, (ids, probs) in self.runtime.decode_tokens(batch).items()
                }
                start = 0
                for index in chunk:
                    words = sentences[index].words
                    end = start + len(words)
                    tags = {name: tagged[start:end] for name, (tagged, _) in flat.items()}
                    probs = {name: chances[start:end] for name, (_, chances) in flat.items()}
                    results[index] = self.finish(words, tags, probs)
                    start = end
        return results  # type: ignore[return-value]

    def finish(self, words: Sequence[str], tags: dict[str, list[str]], probs: dict[str, list[float]]) -> Tagged:
        """One sentence's decoded columns as users see them: lemmas from the lexicon or edit scripts, FEATS assembled."""
        if self.lexicon is not None:
            tags[LEMMA] = self.lexicon.lemmas(tags[LEMMA], words, tags[self.lexicon.column])
        elif self.lemma_scripts:
            tags[LEMMA] = apply_scripts(tags[LEMMA], words)
        alternatives = {}
        if self.feature_columns:
            assembled = assemble(tags, probs)
            for name in self.feature_columns:
                del tags[name], probs[name]
            if self.alternatives:  # both kinds of head: the first in data.feats_heads fills FEATS
                whole = (tags[FEATS], probs[FEATS])
                chosen, other = (whole, assembled) if self.feats_from == WHOLE else (assembled, whole)
                alternatives[self.alternatives[0]] = other[0]
            else:
                chosen = assembled
            tags[FEATS], probs[FEATS] = chosen
        return Tagged(
            {name: tags[name] for name in self._columns}, {name: probs[name] for name in self._columns}, alternatives
        )

    def distributions(self, sentences: Sequence[Sentence]) -> list[dict[str, torch.Tensor]]:
        """Every column's full tag distribution, name -> (T, num_tags) per sentence (for distillation)."""
        if not self.runtime.capabilities.distributions:
            raise refuse(
                self.runtime,
                "distributions",
                f"a {self.runtime.kind} model gives no per-token tag distributions to learn from; use a softmax "
                "tagger or an ensemble as the teacher",
            )
        results: list[dict[str, torch.Tensor]] = [{} for _ in sentences]
        with torch.no_grad():
            for chunk in _chunks(sentences, self.batch_size):
                batch = self.runtime.batch([sentences[i] for i in chunk], self.bundle.vocabs)
                probs = {name: scores.softmax(-1) for name, scores in self.runtime(batch).items()}
                for row, index in enumerate(chunk):
                    n = len(sentences[index].words)
                    results[index] = {name: p[row, :n].clone() for name, p in probs.items()}
        return results

    def stream(self, sentences: Iterable[Sentence], *, chunk_size: int = 1024) -> Iterator[tuple[Sentence, Tagged]]:
        """Tag an iterator of sentences in chunks, so memory does not grow with the input."""
        chunk: list[Sentence] = []
        for sentence in sentences:
            chunk.append(sentence)
            if len(chunk) >= chunk_size:
                yield from zip(chunk, self.predict(chunk), strict=True)
                chunk = []
                memory.release()  # what this chunk freed goes back to the system
        if chunk:
            yield from zip(chunk, self.predict(chunk), strict=True)

    def tag(self, tokens: Sequence[str]) -> list[dict[str, object]]:
        """Tags for one sentence: ``[{"token": "The", "upos": "DET", "upos_prob": 0.99, ...}, ...]``."""
        return self.tag_batch([tokens])[0]

    def tag_batch(self, sentences: Sequence[Sequence[str]]) -> list[list[dict[str, object]]]:
        """``tag`` for many sentences at once (batched; the same results as one by one)."""
        checked = [Sentence(_check_tokens(tokens, index)) for index, tokens in enumerate(sentences)]
        return [rows(sentence.words, tagged) for sentence, tagged in zip(checked, self.predict(checked), strict=True)]

    def tag_text(self, text: str, *, segmenter: Segmenter | None = None) -> list[list[dict[str, object]]]:
        """``tag_batch`` for raw text, split into sentences of words by ``segmenter`` (default: the predictor's)."""
        return self.tag_batch([words(sentence) for sentence in (segmenter or self.segmenter)(text)])

    def __call__(self, text: str) -> list[dict[str, object]]:
        """Raw text -> sentences of tokens with offsets, space-after and tagged words (``pipeline.tag_document``)."""
        from lstmtag.pipeline import tag_document  # the pipeline builds on this module

        return tag_document(self, text, self.segmenter)

    def inspect(self, tokens: Sequence[str] | str) -> Trace:
        """Tags plus h, c and the four gates of every encoder layer and direction, for one sentence.

        ``tokens``: a list of words, or a string split on whitespace. For an ensemble every member's
        encoder is traced, named ``members.K.encoder``.
        """
        model = self.bundle.model
        if not model.capabilities.traced:
            raise refuse(model, "traced", f"a {model.kind} model has no LSTM to inspect")
        words = tokens.split() if isinstance(tokens, str) else tokens
        sentence = Sentence(check_sentence(words, "the sentence", max_tokens=MAX_INSPECT_TOKENS))
        batch = model.batch([sentence], self.bundle.vocabs)
        layers = []
        for name, tagger in model.encoders():
            with torch.no_grad():
                features = tagger.features(batch)  # (1, T, F): what the encoder reads
            _, _, traces = trace_lstm(tagger.encoder, features, lengths=batch.lengths, module=name)
            layers += single(traces)
        (tagged,) = self.predict([sentence])
        tags = {
            name: [{"tag": tag, "prob": prob} for tag, prob in zip(tagged.tags[name], tagged.probs[name], strict=True)]
            for name in tagged.tags
        }
        return Trace(sentence.words, tags, layers)

    def stepper(self) -> TokenStepper:
        """Tag a sentence one token at a time, carrying (h, c); unidirectional softmax taggers only."""
        return TokenStepper(self)

    def is_known(self, word: str) -> bool:
        """Whether a word was seen in training (in the form the model stores words)."""
        return self.bundle.model.knows(word, self.bundle.vocabs)

    def evaluate(self, sentences: Sequence[Sentence]) -> dict[str, object]:
        """Accuracy (all, known, unknown words), per-tag P/R/F1, confusions and speed, per column."""
        started = time.perf_counter()
        predictions = self.predict(sentences)
        seconds = time.perf_counter() - started
        scores: dict[str, ColumnScores] = {}
        for name in [*self.columns, *self.alternatives]:
            gold = name.split("/")[0]  # feats/per_feature is scored against the gold FEATS
            if not sentences or any(gold not in s.labels for s in sentences):
                continue
            labels = self.bundle.vocabs.labels.get(name)
            scores[name] = ColumnScores(spans=SpanScores() if labels and is_bio(labels.itos) else None)
        # UFeats as CoNLL 2018 scores it: the universal features only (EWT's Typo, ExtPos and Style left out)
        ufeats = ColumnScores() if FEATS in scores else None
        for sentence, tagged in zip(sentences, predictions, strict=True):
            known = [self.is_known(w) for w in sentence.words]
            chosen = {**tagged.tags, **tagged.alternatives}
            for name, column in scores.items():
                column.add(sentence.labels[name.split("/")[0]], chosen[name], known)
            if ufeats is not None:
                ufeats.add(list(map(universal, sentence.labels[FEATS])), list(map(universal, chosen[FEATS])), known)
        if ufeats is not None:
            scores[UFEATS] = ufeats
        tokens = sum(len(s.words) for s in sentences)
        report: dict[str, object] = {
            "columns": {name: column.summary() for name, column in scores.items()},
            "sentences": len(sentences),
            "tokens": tokens,
            "seconds": seconds,
            "tokens_per_second": tokens / seconds if seconds > 0 else 0.0,
        }
        if FEATS in scores and self.feature_columns:
            report["feats_from"] = self.feats_from  # which head's choice the "feats" column is
        return report

    def score(self, sentences: Sequence[Sentence]) -> Score:
        """Accuracy per column and their mean, over the columns ``sentences`` carry (alternatives left out)."""
        report = self.evaluate(sentences)["columns"]
        columns = {name: column["accuracy"] for name, column in report.items() if name in self._columns}
        if not columns:
            raise ValueError(
                f"the sentences carry none of the model's columns ({', '.join(self.columns)}): nothing to score"
            )
        return Score(columns, sum(columns.values()) / len(columns))


def choose_segmenter(
    model: str | Path, segmenter: str | Path | Segmenter | None, *, precision: str = "float"
) -> Segmenter:
    """The segmenter for raw text: the one given (file or function), else one shipped beside the model, else rules."""
    if callable(segmenter):
        return segmenter
    path = segmenter if segmenter is not None else segmenter_path(model)
    return rule_segment if path is None else load_segmenter(path).at_precision(precision)


def rows(words: Sequence[str], tagged: Tagged) -> list[dict[str, object]]:
    """One dict per token: ``{"token", column: tag, column_prob: p, ...}`` (the API's and the service's shape)."""
    output = []
    for position, word in enumerate(words):
        row: dict[str, object] = {"token": word}
        for name in tagged.tags:
            row[name] = tagged.tags[name][position]
            row[f"{name}_prob"] = tagged.probs[name][position]
        output.append(row)
    return output


class TokenStepper:
    """Feed a unidirectional tagger one token at a time; each step costs one LSTM step.

    After the last token the tags equal those of tagging the whole sentence at once. Refused with a
    reason for a bidirectional encoder (it needs the tokens to come) and for a CRF head (its best
    path is chosen over the whole sentence).
    """

    def __init__(self, predictor: Predictor) -> None:
        model = predictor.bundle.model
        if not model.capabilities.stepped:
            raise refuse(model, "stepped", f"a {model.kind} model cannot be stepped token by token")
        ((_, tagger),) = model.encoders()
        self.predictor = predictor
        self.model = tagger
        self.stepper = Stepper(tagger.encoder)

    def step(self, token: str) -> dict[str, object]:
        """Tag the next token given the ones before it: ``{"token", column: tag, column_prob: p}``."""
        batch = self.model.batch([Sentence(check_sentence([token], "token"))], self.predictor.bundle.vocabs)
        with torch.no_grad():
            features = self.model.features(batch)[:, 0]  # (1, F)
            output = self.stepper.step(features)  # (1, H)
        tags, probs = {}, {}
        for name, linear in self.model.outputs.items():
            with torch.no_grad():
                log_probs = linear(output).log_softmax(-1)[0]
            best = int(log_probs.argmax())
            tags[name] = [self.predictor.bundle.vocabs.labels[name].itos[best]]
            probs[name] = [float(log_probs[best].exp())]
        return rows([token], self.predictor.finish([token], tags, probs))[0]


def _chunks(sentences: Sequence[Sentence], size: int, *, max_tokens: int = MAX_BATCH_TOKENS) -> Iterator[list[int]]:
    """Indices of sentences sorted by length, so neighbours pad little.

    A chunk holds at most ``size`` sentences and ``max_tokens`` padded tokens (a longer sentence gets a
    chunk of its own).
    """
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i].words))
    chunk: list[int] = []
    for index in order:
        longest = len(sentences[index].words)  # sorted: the newest is the longest
        if chunk and (len(chunk) == size or (len(chunk) + 1) * longest > max_tokens):
            yield chunk
            chunk = []
        chunk.append(index)
    if chunk:
        yield chunk


def _check_tokens(tokens: object, index: int, *, max_tokens: int = MAX_SENTENCE_TOKENS) -> list[str]:
    return check_sentence(tokens, f"sentence {index}", max_tokens=max_tokens)
