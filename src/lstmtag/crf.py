"""Linear-chain conditional random field over per-token scores (Lafferty et al. 2001).

The CRF exposes the same ``loss(emissions, tags, mask)`` and ``decode(emissions, mask)`` as the
softmax head, so a tagger switches between them by configuration alone. Decoding returns the
Viterbi path and, for each chosen tag, its marginal probability from the forward-backward algorithm
(computed as the gradient of log Z with respect to the emissions).
"""

from __future__ import annotations

import torch
from torch import nn

from lstmtag.viterbi import IMPOSSIBLE, log_partition, marginals, viterbi


def bio_allowed(labels: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Which transitions BIO labels allow: (K, K) for a -> b and (K,) for a sentence's first label.

    ``I-X`` may only follow ``B-X`` or ``I-X``; every other label may follow anything.
    """
    size = len(labels)
    allowed = torch.ones(size, size, dtype=torch.bool)
    first = torch.ones(size, dtype=torch.bool)
    for b, label in enumerate(labels):
        if label.startswith("I-"):
            kind = label[2:]
            first[b] = False
            for a, previous in enumerate(labels):
                allowed[a, b] = previous in (f"B-{kind}", f"I-{kind}")
    return allowed, first


class CRF(nn.Module):
    """Transition scores plus the forward algorithm and Viterbi decoding, batched with masks."""

    def __init__(self, num_tags: int, *, labels: list[str] | None = None, constrain_bio: bool = False) -> None:
        super().__init__()
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        allowed = torch.ones(num_tags, num_tags, dtype=torch.bool)
        first = torch.ones(num_tags, dtype=torch.bool)
        if constrain_bio and labels is not None:
            allowed, first = bio_allowed(labels)
        self.register_buffer("allowed", allowed, persistent=False)
        self.register_buffer("allowed_first", first, persistent=False)

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        transitions = self.transitions.masked_fill(~self.allowed, IMPOSSIBLE)
        start = self.start.masked_fill(~self.allowed_first, IMPOSSIBLE)
        return transitions, start, self.end

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Log Z for each sentence: emissions (B, T, K), mask (B, T) -> (B,)."""
        transitions, start, end = self._scores()
        return log_partition(emissions, transitions, mask, start, end)

    def score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Unnormalised score of the given tag sequences: (B,)."""
        transitions, start, end = self._scores()
        maskf = mask.to(emissions.dtype)
        emitted = emissions.gather(2, tags[:, :, None]).squeeze(2)  # (B, T)
        total = start[tags[:, 0]] + (emitted * maskf).sum(1)
        steps = transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        total = total + (steps * maskf[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1) - 1)[:, None]).squeeze(1)
        return total + end[last]

    def loss(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood summed over sentences, divided by the number of tokens."""
        tags = tags.clamp(min=0)
        nll = self.log_partition(emissions, mask) - self.score(emissions, tags, mask)
        return nll.sum() / mask.sum()

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Viterbi tags (B, T) and each chosen tag's marginal probability (B, T)."""
        transitions, start, end = self._scores()
        tags, _ = viterbi(emissions, transitions, mask, start, end)
        probs = marginals(emissions, transitions, mask, start, end).gather(2, tags[:, :, None]).squeeze(2)
        return tags, probs
