import itertools

import pytest
import torch

from lstmtag.checkpoint import read, save
from lstmtag.data import Sentence
from lstmtag.hmm import _decode_candidates
from lstmtag.models import build_tagger, load_tagger
from lstmtag.predict import Predictor
from lstmtag.train import build_vocabs, train_tagger
from lstmtag.viterbi import IMPOSSIBLE
from tests.conftest import tiny_config


@pytest.fixture(scope="module", params=[True, False], ids=["joint", "per-column"])
def hmm(request, sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("hmm") / "hmm.safetensors"
    result = train_tagger(
        sample, sample[:10], tiny_config("model.kind=hmm", f"model.hmm_joint={str(request.param).lower()}"), out
    )
    return out, result


def test_unseen_words_are_tagged_by_their_suffixes(tmp_path):
    """After "they", VERB and NOUN are equally likely in training: only the unseen word's suffix decides."""
    verbs = ["walked", "jumped", "talked", "played", "kicked", "waited"]
    nouns = ["kindness", "darkness", "sadness", "madness", "fitness", "illness"]
    sentences = [Sentence(["they", v], {"upos": ["PRON", "VERB"], "xpos": ["PRP", "VBD"]}) for v in verbs]
    sentences += [Sentence(["they", n], {"upos": ["PRON", "NOUN"], "xpos": ["PRP", "NN"]}) for n in nouns]
    out = tmp_path / "suffixes.safetensors"
    train_tagger(sentences, sentences, tiny_config("model.kind=hmm"), out)
    predictor = Predictor.load(out)
    assert not predictor.is_known("zorbed") and not predictor.is_known("blickness")
    assert [predictor.tag(["they", word])[1]["upos"] for word in ("zorbed", "blickness")] == ["VERB", "NOUN"]


def test_candidate_decoding_equals_full_viterbi_when_all_tags_are_candidates():
    torch.manual_seed(0)
    tags = 3
    size = tags + 1
    transitions = torch.randn(size, size, size).log_softmax(-1)
    emissions = torch.randn(2, 4, size)
    emissions[..., -1] = IMPOSSIBLE
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    chosen, options, slot_probs = _decode_candidates(emissions, transitions, mask, candidates=tags)
    probs = slot_probs.gather(2, (options == chosen[..., None]).int().argmax(-1, keepdim=True)).squeeze(2)
    boundary = size - 1
    for b, length in enumerate([4, 2]):

        def score(path, b=b):
            padded = [boundary, boundary, *path, boundary]
            total = sum(float(emissions[b, t, tag]) for t, tag in enumerate(path))
            return total + sum(
                float(transitions[padded[i], padded[i + 1], padded[i + 2]]) for i in range(len(padded) - 2)
            )

        paths = list(itertools.product(range(tags), repeat=length))
        best = max(paths, key=score)
        assert chosen[b, :length].tolist() == list(best)
        weights = torch.tensor([score(p) for p in paths]).softmax(0)
        marginal = sum(w for w, p in zip(weights, paths, strict=True) if p[0] == best[0])
        assert float(probs[b, 0]) == pytest.approx(float(marginal), abs=1e-5)


def test_hmm_has_nothing_to_inspect(hmm):
    out, _ = hmm
    with pytest.raises(ValueError, match="no LSTM"):
        Predictor.load(out).inspect(["a"])


def test_batch_of_hmm_words_uses_exact_forms(hmm):
    out, _ = hmm
    bundle = load_tagger(out)
    batch = bundle.model.batch([Sentence(["The", "the", "THE"])], bundle.vocabs)
    assert batch.words[0, 0] == bundle.vocabs.words.id("The") != bundle.vocabs.words.id("the") == batch.words[0, 1]
    assert batch.words[0, 2] == 1  # unseen as spelled: looked up lowercased, then by suffix, when decoding


def test_joint_hmm_column_probabilities_are_brute_force_marginals(sample):
    """A joint HMM's UPOS probability sums the marginals of every (UPOS, XPOS) pair with that UPOS."""
    config = tiny_config("model.kind=hmm", "model.hmm_candidates=1000")  # every pair is a candidate
    vocabs = build_vocabs(sample, config)
    model = build_tagger(config, vocabs)
    model.fit(sample, vocabs)
    assert model.joint and any(t.split("\t")[0] == "AUX" for t in model.joint_tags)
    batch = model.batch([Sentence(["They", "have", "left"])], vocabs)
    decoded = model.decode(batch)
    column = model.columns["joint"]
    word_rows, _ = model._rows(batch)
    emissions = column.emissions[word_rows][0]  # (3, J + 1); all three words were seen in training
    boundary = len(model.joint_tags)
    paths = torch.tensor(list(itertools.product(range(boundary), repeat=3)))  # (J^3, 3)
    edge = torch.full((len(paths), 2), boundary)
    padded = torch.cat([edge, paths, edge[:, :1]], dim=1)
    scores = emissions[0, paths[:, 0]] + emissions[1, paths[:, 1]] + emissions[2, paths[:, 2]]
    for i in range(4):
        scores = scores + column.transitions[padded[:, i], padded[:, i + 1], padded[:, i + 2]]
    weights = scores.double().softmax(0)
    best = paths[scores.argmax()]
    for k, name in enumerate(model.labels):
        tags, probs = decoded[name]
        assert tags[0].tolist() == model.parts[best, k].tolist()
        for t in range(3):
            same = model.parts[paths[:, t], k] == tags[0, t]
            assert float(probs[0, t]) == pytest.approx(float(weights[same].sum()), abs=1e-4)


def test_hmm_saved_before_joint_models_still_loads(sample, tmp_path):
    """A file whose config has no ``hmm_joint`` holds one HMM per column, whatever the new default."""
    out = tmp_path / "old.safetensors"
    train_tagger(sample, sample[:10], tiny_config("model.kind=hmm", "model.hmm_joint=false"), out)
    saved = read(out)
    del saved.config["model"]["hmm_joint"]
    save(out, saved)
    predictor = Predictor.load(out)
    assert not predictor.bundle.model.joint
    assert predictor.evaluate(sample[:10])["columns"]["upos"]["accuracy"] > 0.9
