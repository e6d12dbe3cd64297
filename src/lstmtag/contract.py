"""What every model kind declares about itself: the one contract the Predictor, CLI and service rely on.

Why: the callers used to find out what a model can do by probing it (``getattr(model, "uses_chars",
True)``, ``isinstance`` chains, ``hasattr(loaded, "generate")``). Now each kind says so in
``Capabilities``, and a tagging model is a ``TaggingModel``: it turns sentences into its own batch,
decodes that batch into tag ids and probabilities, and names the LSTM encoders it can show. The
registry that maps a saved ``kind`` to how it is built, saved, loaded and run fast is ``models.KINDS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from lstmtag.batch import Batch, Vocabs, make_batch, word_key
from lstmtag.data import Sentence

if TYPE_CHECKING:
    from lstmtag.tagger import Tagger

Decoded = dict[str, tuple[torch.Tensor, torch.Tensor]]  # column -> (tag ids (B, T), probability of each (B, T))


@dataclass(frozen=True)
class Capabilities:
    """What a loaded model can do; each flag is declared by its kind, never probed.

    Attributes:
        tags: decodes a batch of sentences into tags and probabilities (taggers).
        uses_chars: reads character features, so batches carry the characters of each spelling.
        traced: has LSTM encoders the inspector can recompute (``inspect``).
        stepped: can tag a sentence one token at a time (a unidirectional encoder, softmax heads).
        exported: its network can be written as ONNX (``lstmtag export``).
        distributions: gives a full tag distribution per token (softmax heads: a distillation teacher).
        generates: generates and scores text (a language model).
        trained: learns by gradient descent (an HMM is counted instead).
        segments: splits raw text into sentences and tokens (a trained segmenter).
    """

    tags: bool = False
    uses_chars: bool = False
    traced: bool = False
    stepped: bool = False
    exported: bool = False
    distributions: bool = False
    generates: bool = False
    trained: bool = False
    segments: bool = False


class TaggingModel(nn.Module):
    """The interface of every tagging model and of its inference forms (int8/bf16, ONNX Runtime).

    Subclasses set ``kind`` (their name in ``models.KINDS``) and ``capabilities`` and implement
    ``decode``. The defaults below are those of neural taggers, which read ``batch.Batch``.
    """

    kind: ClassVar[str]
    precision: str = "float"  # the weights it computes with: "float", or "int8"/"bf16" for inference forms

    @property
    def capabilities(self) -> Capabilities:
        raise NotImplementedError

    @property
    def refusals(self) -> dict[str, str]:
        """Why a capability is missing, by field name: the one line a user reads when asking for it."""
        return {}

    def decode(self, batch: Any) -> Decoded:
        """Best tag ids and their probabilities per column for a batch from ``self.batch``."""
        raise NotImplementedError

    def decode_tokens(self, batch: Any) -> Decoded:
        """``decode`` for the real tokens alone: per column, ids and probabilities (N,), sentence after sentence.

        Why: tagging turns ids into names for real tokens only; a form that can skip the padding
        overrides this (``runtime.InferenceForm``).
        """
        mask = batch.mask
        return {name: (ids[mask], probs[mask]) for name, (ids, probs) in self.decode(batch).items()}

    def batch(self, sentences: Sequence[Sentence], vocabs: Vocabs) -> Batch:
        """The batch ``decode`` reads: padded word ids, mask and (if used) the characters of each spelling."""
        return make_batch(sentences, vocabs, chars=self.capabilities.uses_chars)

    def knows(self, word: str, vocabs: Vocabs) -> bool:
        """Whether ``word`` was seen in training, in the form this model looks words up by."""
        return word_key(word) in vocabs.words

    def encoders(self) -> list[tuple[str, Tagger]]:
        """The LSTM taggers whose encoders ``inspect`` traces, with the name each trace carries."""
        return []


def refuse(model: TaggingModel, capability: str, default: str) -> ValueError:
    """The error for asking ``model`` for a capability it does not declare, with its reason."""
    return ValueError(model.refusals.get(capability, default))
