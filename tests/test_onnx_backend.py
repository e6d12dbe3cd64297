"""ONNX export: the ONNX Runtime model gives the torch model's emissions and tags on real sentences."""

import itertools

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from lstmtag.batch import make_batch  # noqa: E402
from lstmtag.checkpoint import ModelFileError  # noqa: E402
from lstmtag.ensemble import Ensemble  # noqa: E402
from lstmtag.models import TaggerBundle, build_tagger  # noqa: E402
from lstmtag.onnx_backend import export, length_groups, load_onnx  # noqa: E402
from lstmtag.predict import Predictor  # noqa: E402
from lstmtag.train import build_vocabs  # noqa: E402
from tests.conftest import tiny_config  # noqa: E402

VARIANTS = {
    "softmax": [],
    "crf": ["model.head=crf"],
    "forward-only, no characters": ["model.bidirectional=false", "model.char_hidden=0", "model.num_layers=3"],
    "ensemble": None,  # two taggers with different character models
}


def random_tagger(sample, *overrides, seed=0):
    """An untrained tagger with random weights (non-zero CRF transitions too): parity needs no training."""
    config = tiny_config(*overrides)
    vocabs = build_vocabs(sample, config)
    torch.manual_seed(seed)
    model = build_tagger(config, vocabs)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.startswith("heads."):
                parameter.normal_(0, 1)
    return TaggerBundle(model.eval(), vocabs, config, {"note": "random"})


@pytest.fixture(scope="module", params=list(VARIANTS))
def exported(request, sample, tmp_path_factory):
    overrides = VARIANTS[request.param]
    if overrides is None:
        members = [random_tagger(sample, seed=1), random_tagger(sample, "model.char_hidden=12", seed=2)]
        bundle = TaggerBundle(Ensemble([m.model for m in members]).eval(), members[0].vocabs, members[0].config)
    else:
        bundle = random_tagger(sample, *overrides)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export(bundle, path)
    return bundle, path


def real_sentences(sample):
    """Real EWT sentences of several lengths (1 to the longest), in a mixed order so batches pad."""
    by_length = sorted(sample, key=lambda s: len(s.words))
    chosen = by_length[:: max(1, len(by_length) // 9)] + [by_length[-1]]
    return chosen[1::2] + chosen[::2]


def test_emissions_and_tags_equal_the_torch_model(exported, sample):
    bundle, path = exported
    tagger, vocabs, config, info, _ = load_onnx(path)
    assert vocabs.to_dict() == bundle.vocabs.to_dict() and config == bundle.config
    assert info["onnx"] == {"precision": "float"} and tagger.precision == "float"
    sentences = real_sentences(sample)
    assert len({len(s.words) for s in sentences}) >= 8
    for size in (1, 3, len(sentences)):
        for start in range(0, len(sentences), size):
            batch = make_batch(sentences[start : start + size], bundle.vocabs)
            with torch.no_grad():
                expected = bundle.model(batch)
            for _ in range(2):  # the second time every spelling's character features come from the cache
                emissions = tagger(batch)
                for name, values in expected.items():
                    assert emissions[name].shape == values.shape
                    assert torch.allclose(emissions[name][batch.mask], values[batch.mask], atol=1e-4)
                decoded, reference = tagger.decode(batch), bundle.model.decode(batch)
                for name, (tags, probs) in reference.items():
                    assert torch.equal(decoded[name][0], tags)
                    assert torch.allclose(decoded[name][1], probs, atol=1e-4)


def test_predictor_tags_with_the_onnx_model_as_with_torch(exported, sample, dev_sample):
    bundle, path = exported
    onnx_predictor = Predictor(TaggerBundle(*load_onnx(path)))
    torch_predictor = Predictor(bundle)
    sentences = [*dev_sample, *sample[:20]]
    assert [t.tags for t in onnx_predictor.predict(sentences)] == [t.tags for t in torch_predictor.predict(sentences)]


def test_int8_model_is_smaller_and_tags_nearly_alike(sample, tmp_path):
    import onnx

    bundle = random_tagger(sample)
    float_path, int8_path = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    export(bundle, float_path)
    export(bundle, int8_path, int8=True)
    assert int8_path.stat().st_size < 0.6 * float_path.stat().st_size
    operators = {node.op_type for node in onnx.load(int8_path).graph.node}
    assert "DynamicQuantizeLSTM" in operators and "LSTM" not in operators  # the character LSTMs too
    tagger, _, _, info, _ = load_onnx(int8_path)
    assert info["onnx"] == {"precision": "int8"} and tagger.precision == "int8"
    batch = make_batch(sample[:20], bundle.vocabs)
    with torch.no_grad():
        expected = bundle.model(batch)
    for name, values in tagger(batch).items():
        assert (values - expected[name])[batch.mask].abs().max() < 0.1


def test_models_without_a_network_are_refused_with_the_reason(sample, tmp_path):
    hmm = random_tagger(sample, "model.kind=hmm")
    with pytest.raises(ValueError, match="counted model with no network"):
        export(hmm, tmp_path / "hmm.onnx")
    projected = random_tagger(sample, "model.proj_size=8")
    with pytest.raises(ValueError, match="has no projection"):
        export(projected, tmp_path / "projected.onnx")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_unreadable_and_foreign_files_are_refused(sample, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        load_onnx(garbage)
    identity = helper.make_node("Identity", ["x"], ["y"])
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph([identity], "g", [value], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    foreign = tmp_path / "foreign.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, foreign)
    with pytest.raises(ModelFileError, match="an ONNX model, but not an lstmtag model"):
        load_onnx(foreign)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_onnx(tmp_path / "missing.onnx")


def test_length_groups_pad_least_as_brute_force_finds():
    lengths = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    for count in (1, 2, 3, 4):
        groups = length_groups(list(range(len(lengths))), lengths, count)
        assert len(groups) == count and sorted(i for g in groups for i in g) == list(range(len(lengths)))
        cost = sum(len(g) * max(lengths[i] for i in g) for g in groups if g)
        ordered = sorted(lengths)
        best = min(
            sum((b - a) * ordered[b - 1] for a, b in itertools.pairwise([0, *cuts, len(ordered)]))
            for r in range(count)
            for cuts in itertools.combinations(range(1, len(ordered)), r)
        )
        assert cost == best
    assert length_groups([], [], 3) == [[], [], []]


def test_per_feature_heads_export_and_tag_as_with_torch(feats_sample, dev_sample, tmp_path):
    from dataclasses import replace

    from lstmtag.train import prepare

    config = tiny_config("data.columns=upos,xpos,feats", "data.feats_heads=whole,per_feature")
    bracketed = [  # UD layered features (Number[psor]) make column names ONNX must carry as they are
        replace(s, labels={**s.labels, "feats": [f.replace("Number=", "Number[psor]=") for f in s.labels["feats"]]})
        for s in feats_sample[:20]
    ]
    data = prepare([*bracketed, *feats_sample[20:]], config)
    vocabs = build_vocabs(data, config)
    assert "feats:Number[psor]" in vocabs.labels
    torch.manual_seed(0)
    bundle = TaggerBundle(build_tagger(config, vocabs).eval(), vocabs, config)
    export(bundle, tmp_path / "m.onnx")
    onnx_predictor, torch_predictor = Predictor(TaggerBundle(*load_onnx(tmp_path / "m.onnx"))), Predictor(bundle)
    sentences = [*dev_sample, *feats_sample[:20]]
    expected = torch_predictor.predict(sentences)
    assert [(t.tags, t.alternatives) for t in onnx_predictor.predict(sentences)] == [
        (t.tags, t.alternatives) for t in expected
    ]
    assert any(f != "_" for t in expected for f in t.alternatives["feats/per_feature"])


def test_a_lemma_lexicon_travels_with_the_export_and_wins_as_in_torch(ud_sample, dev_sample, tmp_path):
    from dataclasses import replace

    from lstmtag.lexicon import LemmaLexicon
    from lstmtag.train import prepare

    config = tiny_config("data.columns=upos,xpos,lemma")
    vocabs = build_vocabs(prepare(ud_sample, config), config)
    torch.manual_seed(0)
    head_only = TaggerBundle(build_tagger(config, vocabs).eval(), vocabs, config)
    sentences = [*dev_sample, *ud_sample[:20]]
    plain = Predictor(head_only).predict(sentences)
    # Entries keyed by the tags the model predicts, so they are met: every third token's lemma is doctored.
    pairs = [pair for s, t in zip(sentences, plain, strict=True) for pair in zip(s.words, t.tags["xpos"], strict=True)]
    lexicon = LemmaLexicon({pair: f"<{pair[0]}>" for pair in pairs[::3]}, numbers=True)
    bundle = replace(head_only, lexicon=lexicon)
    export(bundle, tmp_path / "m.onnx")
    loaded = TaggerBundle(*load_onnx(tmp_path / "m.onnx"))
    assert loaded.lexicon == lexicon
    expected = Predictor(bundle).predict(sentences)
    assert [t.tags for t in Predictor(loaded).predict(sentences)] == [t.tags for t in expected]
    lemmas = [lemma for t in expected for lemma in t.tags["lemma"]]
    assert sum(lemma.startswith("<") for lemma in lemmas) >= len(pairs) // 3
    assert lemmas != [lemma for t in plain for lemma in t.tags["lemma"]]
