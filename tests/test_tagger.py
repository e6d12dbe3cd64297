import pytest
import torch

from lstmtag.data import Sentence
from lstmtag.models import load_tagger
from lstmtag.predict import Predictor
from lstmtag.train import train_tagger
from tests.conftest import tiny_config


@pytest.fixture(scope="module", params=["softmax", "crf"])
def overfit(request, sample, tmp_path_factory):
    """A tiny tagger trained to memorise 12 real sentences."""
    data = sample[:12]
    config = tiny_config(f"model.head={request.param}", "train.epochs=60", "train.patience=60", "train.seed=3")
    out = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    result = train_tagger(data, data, config, out)
    return data, out, result


def test_padded_batches_equal_unpadded(overfit, dev_sample):
    """Mixed lengths in one batch go through the packed path and must agree with equal-length batches."""
    _, out, _ = overfit
    bundle = load_tagger(out)
    from lstmtag.batch import make_batch

    mixed = make_batch(dev_sample[:6], bundle.vocabs)
    decoded = bundle.model.decode(mixed)
    for row, sentence in enumerate(dev_sample[:6]):
        alone = bundle.model.decode(make_batch([sentence], bundle.vocabs))
        n = len(sentence.words)
        for name in decoded:
            assert torch.equal(decoded[name][0][row, :n], alone[name][0][0])


def test_long_sentence_and_unseen_characters(overfit):
    _, out, _ = overfit
    predictor = Predictor.load(out)
    words = ["ünïcødé", "日本語", "🙂", "the"] * 2500  # 10,000 tokens
    (tagged,) = predictor.predict([Sentence(words)])
    assert len(tagged.tags["upos"]) == 10_000
    assert all(0.0 < p <= 1.0 for p in tagged.probs["upos"])


def test_tag_api_shapes(overfit):
    _, out, _ = overfit
    predictor = Predictor.load(out)
    rows = predictor.tag(["The", "cow", "jumped"])
    assert [r["token"] for r in rows] == ["The", "cow", "jumped"]
    assert set(rows[0]) == {"token", "upos", "upos_prob", "xpos", "xpos_prob"}
    assert predictor.tag_batch([["The", "cow"], ["Hi"]])[1][0]["token"] == "Hi"
    with pytest.raises(ValueError, match="no tokens"):
        predictor.tag([])
    with pytest.raises(ValueError, match="list of token strings"):
        predictor.tag("The cow")


def test_unknown_gold_label_counts_as_wrong(overfit, sample):
    _, out, _ = overfit
    predictor = Predictor.load(out)
    sentence = Sentence(
        list(sample[0].words), {"upos": ["NEVER-SEEN"] * len(sample[0].words), "xpos": list(sample[0].labels["xpos"])}
    )
    report = predictor.evaluate([sentence])
    assert report["columns"]["upos"]["accuracy"] == 0.0


def test_unidirectional_tagger_streams_token_by_token(sample, tmp_path):
    config = tiny_config("model.bidirectional=false", "train.epochs=2")
    out = tmp_path / "uni.safetensors"
    train_tagger(sample[:8], sample[:4], config, out)
    predictor = Predictor.load(out)
    words = sample[5].words
    stepper = predictor.stepper()
    streamed = [stepper.step(w) for w in words]
    whole = predictor.tag(words)
    assert [r["upos"] for r in streamed] == [r["upos"] for r in whole]
    assert [r["upos_prob"] for r in streamed] == pytest.approx([r["upos_prob"] for r in whole], abs=1e-6)


def test_bidirectional_tagger_refuses_to_stream(overfit):
    _, out, _ = overfit
    predictor = Predictor.load(out)
    if predictor.bundle.config.model.head == "crf":
        with pytest.raises(ValueError, match="CRF"):
            predictor.stepper()
    else:
        with pytest.raises(ValueError, match="bidirectional"):
            predictor.stepper()


def test_inspect_trace_matches_encoder(overfit):
    import lstmtag

    _, out, _ = overfit
    predictor = Predictor.load(out)
    trace = lstmtag.inspect(predictor, ["The", "cow", "jumped"])
    assert trace.tokens == ["The", "cow", "jumped"]
    assert [(t.layer, t.direction) for t in trace.layers] == [
        (0, "forward"),
        (0, "backward"),
        (1, "forward"),
        (1, "backward"),
    ]
    bundle = predictor.bundle
    from lstmtag.batch import make_batch

    batch = make_batch([Sentence(["The", "cow", "jumped"])], bundle.vocabs)
    with torch.no_grad():
        expected, _ = bundle.model.encoder(bundle.model.features(batch))
    assert torch.allclose(torch.cat([trace.layers[-2].h, trace.layers[-1].h], -1), expected[0], atol=1e-6)
    as_json = trace.to_json()
    assert set(as_json["layers"][0]) == {"module", "layer", "direction", "h", "c", "i", "f", "g", "o"}
    assert len(as_json["layers"][0]["h"]) == 3


def test_wrong_head_is_an_error():
    from lstmtag.config import load_config

    with pytest.raises(ValueError, match="model.head"):
        from lstmtag.batch import Vocabs
        from lstmtag.models import build_tagger
        from lstmtag.vocab import Vocab

        build_tagger(
            load_config(None, ["model.head=crff"]), Vocabs(Vocab([]), Vocab([]), {"upos": Vocab(["A"], specials=False)})
        )
