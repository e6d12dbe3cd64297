import itertools

import torch

from lstmtag.viterbi import log_partition, marginals, viterbi


def _score(path, emissions, transitions, start, end):
    order = transitions.dim() - 1
    total = sum(float(emissions[t, tag]) for t, tag in enumerate(path))
    if order == 1:
        total += float(start[path[0]]) + float(end[path[-1]])
        total += sum(float(transitions[a, b]) for a, b in itertools.pairwise(path))
    else:
        boundary = transitions.shape[0] - 1
        padded = [boundary, *path]
        total += float(start[boundary, path[0]]) + float(end[padded[-2], padded[-1]])
        total += sum(float(transitions[padded[t], padded[t + 1], padded[t + 2]]) for t in range(len(path) - 1))
    return total


def _brute(emissions, transitions, start, end, length):
    num_tags = emissions.shape[-1]
    scored = [
        (_score(p, emissions[:length], transitions, start, end), p)
        for p in itertools.product(range(num_tags), repeat=length)
    ]
    best = max(scored)
    log_z = torch.logsumexp(torch.tensor([s for s, _ in scored]), 0)
    probs = torch.zeros(length, num_tags)
    for s, p in scored:
        for t, tag in enumerate(p):
            probs[t, tag] += torch.exp(torch.tensor(s) - log_z)
    return best, float(log_z), probs


def test_first_order_against_enumeration_with_masks():
    torch.manual_seed(0)
    num_tags, lengths = 3, torch.tensor([4, 2, 1])
    emissions = torch.randn(3, 4, num_tags)
    transitions, start, end = torch.randn(num_tags, num_tags), torch.randn(num_tags), torch.randn(num_tags)
    mask = torch.arange(4)[None, :] < lengths[:, None]
    paths, scores = viterbi(emissions, transitions, mask, start, end)
    log_z = log_partition(emissions, transitions, mask, start, end)
    probs = marginals(emissions, transitions, mask, start, end)
    for b, length in enumerate(lengths.tolist()):
        (best_score, best_path), z, brute_probs = _brute(emissions[b], transitions, start, end, length)
        assert paths[b, :length].tolist() == list(best_path)
        assert abs(float(scores[b]) - best_score) < 1e-4
        assert abs(float(log_z[b]) - z) < 1e-4
        assert torch.allclose(probs[b, :length], brute_probs, atol=1e-5)
        assert paths[b, length:].eq(0).all()


def test_second_order_against_enumeration():
    torch.manual_seed(1)
    size = 4  # 3 tags + boundary (last)
    boundary = size - 1
    emissions = torch.randn(2, 4, size)
    emissions[..., boundary] = -1e4
    transitions = torch.randn(size, size, size)
    start = torch.full((size, size), -1e4)
    start[boundary] = torch.randn(size)
    end = torch.randn(size, size)
    lengths = torch.tensor([4, 3])
    mask = torch.arange(4)[None, :] < lengths[:, None]
    paths, scores = viterbi(emissions, transitions, mask, start, end)
    log_z = log_partition(emissions, transitions, mask, start, end)
    for b, length in enumerate(lengths.tolist()):
        (best_score, best_path), z, _ = _brute(emissions[b, :, :boundary], transitions, start, end, length)
        assert paths[b, :length].tolist() == list(best_path)
        assert abs(float(scores[b]) - best_score) < 1e-3
        assert abs(float(log_z[b]) - z) < 1e-3


def test_per_position_transitions_equal_shared_ones():
    torch.manual_seed(2)
    emissions = torch.randn(2, 5, 3)
    transitions = torch.randn(3, 3)
    mask = torch.ones(2, 5, dtype=torch.bool)
    start, end = torch.randn(3), torch.randn(3)
    shared = viterbi(emissions, transitions, mask, start, end)
    per_position = viterbi(emissions, transitions.expand(2, 5, 3, 3), mask, start.expand(2, 3), end.expand(2, 3))
    assert torch.equal(shared[0], per_position[0])
