"""Exact Viterbi decoding for first- and second-order chains, shared by the CRF and the HMM.

A first-order chain scores a tag given the previous tag, with ``transitions`` of shape (K, K); a
second-order chain (the trigram HMM) scores it given the two previous tags, with ``transitions`` of
shape (K, K, K). The second-order case runs over pair states (previous tag, tag), so both cases share
one loop and one back-trace. Work per token is K^(order+1), vectorised over the batch.

Transitions may also differ per sentence and position, shaped (B, T, K, K) or (B, T, K, K, K): the
HMM uses this to decode over a short list of candidate tags per token instead of the whole tag set
(``transitions[:, t]`` scores the step into position t; ``start`` and ``end`` then carry a batch
dimension in front).
"""

from __future__ import annotations

import torch

IMPOSSIBLE = -1e4  # log-score of an impossible event (CRF and HMM): finite, so masked sums never turn into NaN


def viterbi(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    mask: torch.Tensor,
    start: torch.Tensor,
    end: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The highest-scoring tag sequence for each sentence.

    Args:
        emissions: (B, T, K) score of each tag at each position.
        transitions: (K, K) score of tag b after a, or (K, K, K) score of c after (a, b).
        mask: (B, T) bool, True on real tokens; every row must start with True and be a prefix.
        start: (K,) score of the first tag, or (K, K) score of the first state (previous, tag).
        end: (K,) score of ending on a tag, or (K, K) on a state (previous, tag).

    Returns:
        paths (B, T) long, 0 beyond each sentence's length, and the best scores (B,).
    """
    batch, steps, num_tags = emissions.shape
    order, step_transitions = _order(transitions)
    lengths = mask.sum(1)
    if order == 1:
        score = start + emissions[:, 0]  # (B, K)
    else:
        score = (start + emissions[:, 0, None, :]).reshape(batch, num_tags * num_tags)
        shift = torch.arange(num_tags, device=emissions.device)[None, :, None]  # b in (a, b) -> (b, c)
    pointers = []
    for t in range(1, steps):
        if order == 1:
            best, previous = (score[:, :, None] + step_transitions(t)).max(1)  # (B, K)
            new = best + emissions[:, t]
        else:
            pairs = score.view(batch, num_tags, num_tags)  # (B, a, b)
            best, previous_a = (pairs[:, :, :, None] + step_transitions(t)).max(1)  # (B, b, c)
            new = (best + emissions[:, t, None, :]).reshape(batch, -1)
            previous = (previous_a * num_tags + shift).reshape(batch, -1)  # flat index of (a, b)
        score = torch.where(mask[:, t, None], new, score)
        pointers.append(previous)
    final = score + end.reshape(*end.shape[: end.dim() - order], -1)
    best_score, state = final.max(1)
    paths = torch.zeros(batch, steps, dtype=torch.long, device=emissions.device)
    for t in range(steps - 1, -1, -1):
        real = t < lengths
        paths[:, t] = torch.where(real, state % num_tags, 0)
        if t > 0:
            previous_state = pointers[t - 1].gather(1, state[:, None]).squeeze(1)
            state = torch.where(real, previous_state, state)
    return paths, best_score


def log_partition(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    mask: torch.Tensor,
    start: torch.Tensor,
    end: torch.Tensor,
) -> torch.Tensor:
    """Log of the summed score of all tag sequences (the forward algorithm): (B,).

    The sum-product twin of ``viterbi``, with the same arguments. Its gradient with respect to the
    emissions is each tag's marginal probability at each position.
    """
    batch, steps, num_tags = emissions.shape
    order, step_transitions = _order(transitions)
    if order == 1:
        alpha = start + emissions[:, 0]  # (B, K)
    else:
        alpha = (start + emissions[:, 0, None, :]).reshape(batch, num_tags * num_tags)
    for t in range(1, steps):
        if order == 1:
            new = torch.logsumexp(alpha[:, :, None] + step_transitions(t), dim=1) + emissions[:, t]
        else:
            pairs = alpha.view(batch, num_tags, num_tags)  # (B, a, b)
            scores = pairs[:, :, :, None] + step_transitions(t)
            new = (torch.logsumexp(scores, dim=1) + emissions[:, t, None, :]).reshape(batch, -1)
        alpha = torch.where(mask[:, t, None], new, alpha)
    return torch.logsumexp(alpha + end.reshape(*end.shape[: end.dim() - order], -1), dim=1)


def _order(transitions: torch.Tensor):
    """(order, t -> transitions into position t) for shared (K, K[, K]) or per-position (B, T, ...)."""
    if transitions.dim() in (2, 3):
        return transitions.dim() - 1, lambda t: transitions
    if transitions.dim() in (4, 5):
        return transitions.dim() - 3, lambda t: transitions[:, t]
    raise ValueError(f"transitions must have 2 to 5 dimensions, got shape {tuple(transitions.shape)}")


def marginals(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    mask: torch.Tensor,
    start: torch.Tensor,
    end: torch.Tensor,
) -> torch.Tensor:
    """p(tag at position t = k | sentence): (B, T, K), as the gradient of ``log_partition``.

    Computed in float64: the forward scores grow with sentence length, and in float32 the rounding
    of a 10,000-token sentence was seen to push marginals 4% above 1.
    """
    with torch.enable_grad():
        leaf = emissions.detach().double().requires_grad_(True)
        parts = (t.detach().double() for t in (transitions, start, end))
        total = log_partition(leaf, next(parts), mask, next(parts), next(parts)).sum()
        (gradient,) = torch.autograd.grad(total, leaf)
    return gradient.to(emissions.dtype)
