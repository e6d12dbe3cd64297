"""Several LSTM taggers that vote by averaging their tag probabilities.

Why: taggers trained with different seeds make partly different mistakes, so the mean of their
distributions is right more often than either alone. The two cores of the development machine train
two members side by side in the time one takes, so an ensemble of two costs no training time; it
costs tagging speed (each member reads every sentence) and size (halved again by float16 storage).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lstmtag.batch import Batch
from lstmtag.contract import Capabilities, TaggingModel
from lstmtag.tagger import SoftmaxHead, Tagger


def average(outputs: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per column, the log of the mean of the members' softmax distributions (so it is normalised)."""
    log_n = math.log(len(outputs))
    return {
        name: torch.stack([out[name].log_softmax(-1) for out in outputs]).logsumexp(0) - log_n for name in outputs[0]
    }


class Ensemble(TaggingModel):
    """Softmax taggers over the same vocabularies; emissions are the log of their mean probabilities.

    Trained as its members, one by one (``lstmtag ensemble`` combines trained taggers), never jointly.
    """

    kind = "ensemble"

    def __init__(self, members: list[Tagger]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two member taggers, got {len(members)}")
        for member in members:
            if not isinstance(member, Tagger):
                raise ValueError(f"ensemble members must be LSTM taggers, got {type(member).__name__}")
            if member.config.head != "softmax":
                raise ValueError(
                    "ensemble members must have softmax heads: CRF scores are not probabilities per token, "
                    "so they cannot be averaged"
                )
        sizes = [{name: linear.out_features for name, linear in m.outputs.items()} for m in members]
        if any(size != sizes[0] for size in sizes):
            raise ValueError(f"ensemble members predict different label sets: {sizes}")
        self.members = nn.ModuleList(members)
        self.heads = {name: SoftmaxHead() for name in sizes[0]}

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per column (B, T, num_tags): log of the members' mean probability, so it is normalised."""
        return average([member(batch) for member in self.members])

    @torch.no_grad()
    def decode(self, batch: Batch) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Name -> (tag ids (B, T), averaged probability of each chosen tag (B, T))."""
        emissions = self(batch)
        return {name: self.heads[name].decode(emissions[name], batch.mask) for name in emissions}

    @property
    def capabilities(self) -> Capabilities:
        each = [member.capabilities for member in self.members]
        return Capabilities(
            tags=True,
            uses_chars=any(c.uses_chars for c in each),
            traced=True,
            exported=all(c.exported for c in each),
            distributions=True,
        )

    @property
    def refusals(self) -> dict[str, str]:
        return {
            "stepped": "an ensemble cannot be stepped token by token; step one unidirectional tagger",
            "exported": "model.proj_size > 0 in a member: the ONNX LSTM op has no projection, so this model cannot "
            "be exported",
        }

    def encoders(self) -> list[tuple[str, Tagger]]:
        """Every member's encoder, named ``members.K.encoder``."""
        return [(f"members.{k}.encoder", member) for k, member in enumerate(self.members)]
