import warnings

import pytest
import torch
from torch import nn

from lstmtag.batch import make_batch
from lstmtag.models import build_tagger, for_inference
from lstmtag.runtime import CharCache, InferenceTagger, PaddedEncoder, encode_spellings, reversal_index
from lstmtag.train import build_vocabs
from tests.conftest import assert_batched_equals_alone, tiny_config


def test_reversal_index_reverses_within_each_length_and_keeps_padding():
    index = reversal_index(torch.tensor([3, 5, 1]), 5)
    assert index.tolist() == [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]]


@pytest.mark.parametrize(
    ("layers", "bidirectional", "proj"), [(1, True, 0), (2, True, 0), (3, False, 0), (2, True, 5), (1, False, 0)]
)
def test_padded_encoder_equals_nn_lstm_on_each_sentence_alone(layers, bidirectional, proj):
    torch.manual_seed(0)
    lstm = nn.LSTM(7, 9, num_layers=layers, bidirectional=bidirectional, batch_first=True, proj_size=proj).eval()
    encoder = PaddedEncoder(lstm).eval()
    lengths = torch.tensor([6, 1, 4, 6, 2])
    inputs = torch.randn(5, 6, 7)
    with torch.no_grad():
        padded = encoder(inputs, lengths)
        for row, length in enumerate(lengths.tolist()):
            alone = lstm(inputs[row : row + 1, :length])[0][0]
            assert torch.allclose(padded[row, :length], alone, atol=1e-6)


@pytest.fixture(scope="module")
def tagger_and_vocabs(sample):
    torch.manual_seed(1)
    config = tiny_config()
    vocabs = build_vocabs(sample, config)
    return build_tagger(config, vocabs).eval(), vocabs


def test_inference_tagger_equals_tagger_on_mixed_length_batches(tagger_and_vocabs, dev_sample):
    tagger, vocabs = tagger_and_vocabs
    fast = InferenceTagger(tagger).eval()
    sentences = dev_sample[:9]  # real EWT sentences of several lengths
    assert len({len(s.words) for s in sentences}) > 3
    with torch.no_grad():
        together = fast(make_batch(sentences, vocabs))
        for row, sentence in enumerate(sentences):
            alone = tagger(make_batch([sentence], vocabs))
            for name, scores in alone.items():
                assert torch.allclose(together[name][row, : len(sentence.words)], scores[0], atol=1e-5)


def test_char_cache_equals_char_encoder_and_computes_each_spelling_once(tagger_and_vocabs, dev_sample, monkeypatch):
    tagger, vocabs = tagger_and_vocabs
    cache = CharCache(tagger.embedder.chars, capacity=10_000)
    batch = make_batch(dev_sample[:5], vocabs)
    with torch.no_grad():
        direct = tagger.embedder.chars(batch.chars, batch.char_lengths)
    calls = []
    original = cache.encoder.forward

    def counting(chars, lengths):
        calls.append(len(lengths))
        return original(chars, lengths)

    monkeypatch.setattr(cache.encoder, "forward", counting)
    with torch.no_grad():
        first = cache(batch)
        again = cache(batch)
    assert calls == [len(batch.spellings)]  # the second call ran no character LSTM
    assert torch.allclose(first, direct, atol=1e-6)
    assert torch.equal(first, again)


def test_char_cache_stays_within_its_capacity_and_stays_right_while_evicting(tagger_and_vocabs, dev_sample):
    tagger, vocabs = tagger_and_vocabs
    cache = CharCache(tagger.embedder.chars, capacity=40)
    with torch.no_grad():
        for sentence in dev_sample[:20] * 2:  # the second pass finds some spellings kept, others evicted
            batch = make_batch([sentence], vocabs)
            features = cache(batch)
            direct = tagger.embedder.chars(batch.chars, batch.char_lengths)
            assert torch.allclose(features, direct, atol=1e-6)
            assert len(cache.index) <= 40 and cache.table.shape[0] <= 40
            assert sorted(cache.index.values()) == sorted(set(cache.index.values()))  # no row shared


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_reduced_precision_gives_close_emissions(tagger_and_vocabs, dev_sample, precision):
    tagger, vocabs = tagger_and_vocabs
    reduced = for_inference(tagger, precision=precision)
    assert reduced.precision in (precision, "float")
    batch = make_batch(dev_sample[:6], vocabs)
    with torch.no_grad():
        full, low = tagger(batch), reduced(batch)
    for name in full:
        assert low[name].dtype == torch.float32
        assert (low[name] - full[name])[batch.mask].abs().max() < 0.1


def test_missing_int8_support_falls_back_to_float_with_one_warning(tagger_and_vocabs, monkeypatch):
    tagger, _ = tagger_and_vocabs
    import torch.ao.quantization as quantization

    monkeypatch.delattr(quantization, "quantize_dynamic")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = for_inference(tagger, precision="int8")
    assert fast.precision == "float"
    assert [str(w.message) for w in caught if "int8" in str(w.message)]


def test_unknown_precision_is_an_error(tagger_and_vocabs):
    with pytest.raises(ValueError, match="precision"):
        for_inference(tagger_and_vocabs[0], precision="fp8")


def test_a_model_without_a_faster_form_passes_through(sample):
    config = tiny_config("model.kind=hmm")
    hmm = build_tagger(config, build_vocabs(sample, config))
    assert for_inference(hmm) is hmm


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        ("model.head=crf",),
        ("model.bidirectional=false", "model.num_layers=1", "model.char_hidden=0"),  # the lesson's tagger
    ],
    ids=["softmax", "crf", "lesson"],
)
def test_predictor_tags_mixed_batches_as_one_sentence_at_a_time(sample, dev_sample, overrides):
    from lstmtag.models import TaggerBundle
    from lstmtag.predict import Predictor

    torch.manual_seed(2)
    config = tiny_config(*overrides)
    vocabs = build_vocabs(sample, config)
    predictor = Predictor(TaggerBundle(build_tagger(config, vocabs).eval(), vocabs, config), batch_size=7)
    assert_batched_equals_alone(predictor, dev_sample)


def test_char_cache_computes_a_batch_larger_than_itself_without_keeping_it(tagger_and_vocabs, dev_sample):
    tagger, vocabs = tagger_and_vocabs
    batch = make_batch(dev_sample[:5], vocabs)
    cache = CharCache(tagger.embedder.chars, capacity=len(batch.spellings) - 1)
    with torch.no_grad():
        features = cache(batch)
        direct = tagger.embedder.chars(batch.chars, batch.char_lengths)
    assert torch.allclose(features, direct) and not cache.index


@pytest.mark.parametrize("max_cells", [1, 40, 10_000])
def test_spellings_are_encoded_in_bounded_groups_and_come_back_in_order(
    tagger_and_vocabs, dev_sample, monkeypatch, max_cells
):
    tagger, vocabs = tagger_and_vocabs
    encoder = tagger.embedder.chars
    batch = make_batch(dev_sample[:8], vocabs)
    shapes = []
    original = encoder.forward

    def recording(chars, lengths):
        shapes.append(tuple(chars.shape))
        return original(chars, lengths)

    with torch.no_grad():
        direct = encoder(batch.chars, batch.char_lengths)
        monkeypatch.setattr(encoder, "forward", recording)
        grouped = encode_spellings(encoder, batch.chars, batch.char_lengths, max_cells=max_cells)
    assert torch.allclose(grouped, direct, atol=1e-6)
    assert sum(u for u, _ in shapes) == len(batch.spellings)  # every spelling once
    assert all(u * width <= max_cells or u == 1 for u, width in shapes)
    assert (len(shapes) == 1) == (max_cells == 10_000)


def test_the_predictor_decodes_no_batch_over_the_token_cap(tagger_and_vocabs, dev_sample, monkeypatch):
    from lstmtag.models import TaggerBundle
    from lstmtag.predict import MAX_BATCH_TOKENS, Predictor

    tagger, vocabs = tagger_and_vocabs
    predictor = Predictor(TaggerBundle(tagger, vocabs, tiny_config()), batch_size=10_000)
    copies = 2 * MAX_BATCH_TOKENS // sum(len(s.words) for s in dev_sample) + 1  # more tokens than two batches hold
    long = dev_sample * copies
    shapes = []
    original = type(predictor.runtime).decode_tokens

    def recording(self, batch):
        shapes.append(tuple(batch.words.shape))
        return original(self, batch)

    monkeypatch.setattr(type(predictor.runtime), "decode_tokens", recording)
    predictor.predict(long)
    assert sum(b for b, _ in shapes) == len(long) and len(shapes) > 1
    assert all(b * t <= MAX_BATCH_TOKENS or b == 1 for b, t in shapes)


def test_a_cache_with_word_embeddings_holds_each_spellings_whole_encoder_input(tagger_and_vocabs, dev_sample):
    tagger, vocabs = tagger_and_vocabs
    cache = CharCache(tagger.embedder.chars, capacity=10_000, words=tagger.embedder.words)
    batch = make_batch(dev_sample[:6], vocabs, labels=False, lazy_chars=True)  # characters built on demand
    eager = make_batch(dev_sample[:6], vocabs)
    with torch.no_grad():
        rows = cache(batch)
        expected = torch.cat(
            [tagger.embedder.words(eager.spelling_words), tagger.embedder.chars(eager.chars, eager.char_lengths)], -1
        )
        assert torch.allclose(rows, expected, atol=1e-6)
        assert torch.allclose(cache(batch), expected, atol=1e-6)  # from the cache this time


def test_inference_tagger_tags_its_own_lazy_batches_as_the_tagger_does(tagger_and_vocabs, dev_sample):
    tagger, vocabs = tagger_and_vocabs
    fast = InferenceTagger(tagger).eval()
    batch = fast.batch(dev_sample[:9], vocabs)
    assert batch.chars.numel() == 0  # left to the cache
    with torch.no_grad():
        together = fast(batch)
        for row, sentence in enumerate(dev_sample[:9]):
            alone = tagger(make_batch([sentence], vocabs))
            for name, scores in alone.items():
                assert torch.allclose(together[name][row, : len(sentence.words)], scores[0], atol=1e-5)


def test_decode_tokens_equals_decode_at_the_real_tokens(tagger_and_vocabs, dev_sample):
    tagger, vocabs = tagger_and_vocabs
    fast = InferenceTagger(tagger).eval()
    batch = fast.batch(dev_sample[:9], vocabs)
    padded, flat = fast.decode(batch), fast.decode_tokens(batch)
    assert set(padded) == set(flat)
    for name, (ids, probs) in padded.items():
        assert torch.equal(flat[name][0], ids[batch.mask])
        assert torch.allclose(flat[name][1], probs[batch.mask], atol=1e-6)


def test_padded_encoder_runs_unpadded_batches_as_one_lstm_sharing_the_weights(monkeypatch):
    torch.manual_seed(0)
    lstm = nn.LSTM(7, 9, num_layers=2, bidirectional=True, batch_first=True).eval()
    encoder = PaddedEncoder(lstm).eval()
    shared = {p.data_ptr() for p in encoder.whole.parameters()}
    assert shared == {p.data_ptr() for p in encoder.layers.parameters()}  # no second copy of the weights
    calls = []
    monkeypatch.setattr(encoder.whole, "forward", lambda x: calls.append(x.shape) or nn.LSTM.forward(encoder.whole, x))
    inputs = torch.randn(3, 5, 7)
    with torch.no_grad():
        assert torch.allclose(encoder(inputs, torch.tensor([5, 5, 5])), lstm(inputs)[0], atol=1e-6)
        assert calls == [(3, 5, 7)]
        encoder(inputs, torch.tensor([5, 2, 5]))  # padded: the per-direction path
        assert len(calls) == 1
