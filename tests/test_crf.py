import itertools

import torch

from lstmtag.crf import CRF, bio_allowed


def test_log_likelihood_against_enumeration():
    torch.manual_seed(0)
    crf = CRF(3)
    with torch.no_grad():
        crf.transitions.normal_()
        crf.start.normal_()
        crf.end.normal_()
    emissions = torch.randn(2, 3, 3)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    tags = torch.tensor([[0, 2, 1], [1, 1, 0]])
    log_z = crf.log_partition(emissions, mask)
    for b, length in enumerate([3, 2]):
        scores = [
            crf.score(emissions[b : b + 1, :length], torch.tensor([p]), mask[b : b + 1, :length])
            for p in itertools.product(range(3), repeat=length)
        ]
        assert torch.allclose(log_z[b], torch.logsumexp(torch.cat(scores), 0), atol=1e-5)
    nll = crf.loss(emissions, tags, mask) * mask.sum()
    expected = (log_z - crf.score(emissions, tags, mask)).sum()
    assert torch.allclose(nll, expected, atol=1e-5)


def test_decode_returns_best_path_and_marginals():
    torch.manual_seed(1)
    crf = CRF(4)
    with torch.no_grad():
        crf.transitions.normal_()
    emissions = torch.randn(1, 4, 4)
    mask = torch.ones(1, 4, dtype=torch.bool)
    tags, probs = crf.decode(emissions, mask)
    best = max(
        itertools.product(range(4), repeat=4),
        key=lambda p: float(crf.score(emissions, torch.tensor([p]), mask).detach()),
    )
    assert tags[0].tolist() == list(best)
    assert ((probs > 0) & (probs <= 1)).all()


def test_bio_constraints_forbid_invalid_paths():
    labels = ["O", "B-NP", "I-NP", "B-VP", "I-VP"]
    allowed, first = bio_allowed(labels)
    assert not allowed[0, 2] and allowed[1, 2] and allowed[2, 2] and not allowed[3, 2]
    assert not first[2] and first[1]
    crf = CRF(5, labels=labels, constrain_bio=True)
    emissions = torch.zeros(1, 3, 5)
    emissions[0, :, 2] = 5.0  # I-NP everywhere is tempting but invalid at the start
    tags, _ = crf.decode(emissions, torch.ones(1, 3, dtype=torch.bool))
    assert tags[0].tolist() == [1, 2, 2]
