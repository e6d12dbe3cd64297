"""predict.py: batching (every sentence once, sorted, within bounds); FEATS assembled from per-feature heads."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstmtag.data import Sentence, load_labelled
from lstmtag.feats import PER_FEATURE, WHOLE, assemble
from lstmtag.predict import Predictor, _chunks
from lstmtag.ud_eval import universal
from tests.conftest import DATA, train_feats_tagger


@given(st.lists(st.integers(1, 300), max_size=300), st.integers(1, 64), st.integers(1, 2000))
def test_chunks_cover_every_sentence_once_within_bounds(lengths, size, max_tokens):
    sentences = [Sentence(["w"] * n) for n in lengths]
    chunks = list(_chunks(sentences, size, max_tokens=max_tokens))
    assert sorted(i for chunk in chunks for i in chunk) == list(range(len(lengths)))
    order = [lengths[i] for chunk in chunks for i in chunk]
    assert order == sorted(order)
    for chunk in chunks:
        longest = max(lengths[i] for i in chunk)
        assert len(chunk) <= size
        assert len(chunk) == 1 or len(chunk) * longest <= max_tokens


def test_both_feats_heads_fill_feats_and_are_both_scored(both_feats_tagger, feats_sample):
    predictor = Predictor.load(both_feats_tagger)
    assert predictor.columns == ["upos", "xpos", "feats"]
    assert predictor.feats_from == WHOLE and predictor.alternatives == ["feats/per_feature"]
    data = feats_sample[:8]
    for sentence, tagged in zip(data, predictor.predict(data), strict=True):
        assert list(tagged.tags) == list(tagged.probs) == ["upos", "xpos", "feats"]
        assert tagged.tags["feats"] == sentence.labels["feats"]
        assert tagged.alternatives["feats/per_feature"] == sentence.labels["feats"]
    report = predictor.evaluate(data)
    assert report["feats_from"] == WHOLE
    assert report["columns"]["feats"]["accuracy"] == report["columns"]["feats/per_feature"]["accuracy"] == 1.0
    assert set(predictor.score(data).columns) == {"upos", "xpos", "feats"}  # the early-stopping mean: no alternative


def test_the_two_feats_heads_are_scored_apart(both_feats_tagger):
    predictor = Predictor.load(both_feats_tagger)
    unseen = load_labelled(DATA / "ewt_dev_sample.conllu", "conllu", ["upos", "xpos", "feats"])
    tagged = predictor.predict(unseen)
    report = predictor.evaluate(unseen)["columns"]
    decoded = predictor.runtime.decode(predictor.runtime.batch(unseen[:1], predictor.bundle.vocabs))
    labels = predictor.bundle.vocabs.labels
    heads = {name: [labels[name].itos[i] for i in ids[0].tolist()] for name, (ids, _) in decoded.items()}
    assert tagged[0].tags["feats"] == heads["feats"]  # the whole-string head fills FEATS
    assert (
        tagged[0].alternatives["feats/per_feature"]
        == assemble(heads, {n: p[0].tolist() for n, (_, p) in decoded.items()})[0]
    )
    for name, chosen in (("feats", "tags"), ("feats/per_feature", "alternatives")):
        predicted = [t for one in tagged for t in getattr(one, chosen)[name]]
        gold = [t for s in unseen for t in s.labels["feats"]]
        assert report[name]["accuracy"] == sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)
    predicted = [universal(t) for one in tagged for t in one.tags["feats"]]
    gold = [universal(t) for s in unseen for t in s.labels["feats"]]
    assert report["ufeats"]["accuracy"] == sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)
    assert report["ufeats"]["accuracy"] >= report["feats"]["accuracy"]  # it forgives Typo, ExtPos and Style


def test_ufeats_keeps_the_universal_features_only():
    assert universal("Abbr=Yes|Number=Sing|Typo=Yes") == "Abbr=Yes|Number=Sing"
    assert universal("ExtPos=ADP|Style=Expr") == universal("_") == ""


def test_per_feature_heads_alone_give_one_feats_column(per_feature_tagger, feats_sample):
    predictor = Predictor.load(per_feature_tagger)
    labels = predictor.bundle.vocabs.labels
    assert "feats" not in labels and "_" in labels["feats:Number"].itos and "Sing" in labels["feats:Number"].itos
    assert predictor.columns == ["upos", "xpos", "feats"] and predictor.alternatives == []
    rows = predictor.tag(feats_sample[0].words)
    assert [row["feats"] for row in rows] == feats_sample[0].labels["feats"]
    assert all(0 < row["feats_prob"] <= 1 and not any(key.startswith("feats:") for key in row) for row in rows)
    report = predictor.evaluate(feats_sample[:8])
    assert report["feats_from"] == PER_FEATURE and set(report["columns"]) == {"upos", "xpos", "feats", "ufeats"}


def test_reversed_heads_fill_feats_from_the_per_feature_heads(feats_sample, tmp_path):
    path = train_feats_tagger(feats_sample[:4], tmp_path / "m.safetensors", "per_feature,whole", "train.epochs=2")
    predictor = Predictor.load(path)
    assert predictor.feats_from == PER_FEATURE and predictor.alternatives == ["feats/whole"]
    (tagged,) = predictor.predict(feats_sample[:1])
    decoded = predictor.runtime.decode(predictor.runtime.batch(feats_sample[:1], predictor.bundle.vocabs))
    whole = predictor.bundle.vocabs.labels["feats"]
    assert tagged.alternatives["feats/whole"] == [whole.itos[i] for i in decoded["feats"][0][0].tolist()]


def test_a_stepped_per_feature_tagger_assembles_feats_as_tagging_does(feats_sample, tmp_path):
    path = train_feats_tagger(
        feats_sample[:4], tmp_path / "m.safetensors", "whole,per_feature", "model.bidirectional=false", "train.epochs=2"
    )
    predictor = Predictor.load(path)
    words = feats_sample[0].words
    stepper = predictor.stepper()
    stepped = [stepper.step(word) for word in words]
    tagged = predictor.tag(words)
    assert [row["feats"] for row in stepped] == [row["feats"] for row in tagged]
    assert [row["feats_prob"] for row in stepped] == pytest.approx([row["feats_prob"] for row in tagged], abs=1e-5)


def test_a_file_asking_for_bf16_tags_in_float_where_the_cpu_lacks_it(monkeypatch):
    from lstmtag import predict

    monkeypatch.setattr(predict, "native_bf16", lambda: False)
    assert predict.default_precision({"precision": "bf16"}) == "float"
    assert predict.default_precision({"precision": "int8"}) == "int8"
    assert predict.default_precision({}) == "float"
    monkeypatch.setattr(predict, "native_bf16", lambda: True)
    assert predict.default_precision({"precision": "bf16"}) == "bf16"
