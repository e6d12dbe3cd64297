import pytest
import torch
from typer.testing import CliRunner

from lstmtag.batch import make_batch
from lstmtag.cli import app
from lstmtag.data import Sentence
from lstmtag.ensemble import Ensemble
from lstmtag.inspector import trace_lstm
from lstmtag.models import ensemble, load_tagger, round_to_half, save_tagger
from lstmtag.predict import Predictor
from lstmtag.train import train_tagger
from tests.conftest import DATA, assert_batched_equals_alone, tiny_config


@pytest.fixture(scope="module")
def members(sample, tmp_path_factory):
    """Two tiny taggers trained on the same sentences with different seeds (and char sizes)."""
    folder = tmp_path_factory.mktemp("members")
    paths = []
    for seed, char_hidden in ((1, 8), (2, 12)):
        config = tiny_config("train.epochs=3", f"train.seed={seed}", f"model.char_hidden={char_hidden}")
        path = folder / f"m{seed}.safetensors"
        train_tagger(sample[:40], sample[40:48], config, path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def combined(members):
    return ensemble([load_tagger(p) for p in members], [str(p) for p in members])


def test_emissions_are_log_of_mean_member_probabilities(members, combined, dev_sample):
    batch = make_batch(dev_sample[:1], combined.vocabs)
    emissions = combined.model(batch)
    singles = [load_tagger(p).model(batch) for p in members]
    for name, values in emissions.items():
        expected = (singles[0][name].softmax(-1) + singles[1][name].softmax(-1)) / 2
        assert torch.allclose(values.exp(), expected, atol=1e-6)
        assert torch.allclose(values.exp().sum(-1), torch.ones(values.shape[:-1]), atol=1e-5)


def test_save_load_identical_and_batched_equals_one_by_one(combined, dev_sample, tmp_path):
    path = tmp_path / "ens.safetensors"
    save_tagger(path, combined)
    loaded = load_tagger(path)
    assert isinstance(loaded.model, Ensemble) and len(loaded.model.members) == 2
    assert loaded.model.members[1].config.char_hidden == 12  # members keep their own architecture
    a, b = Predictor(combined).predict(dev_sample), Predictor(loaded).predict(dev_sample)
    assert [x.tags for x in a] == [x.tags for x in b]
    assert [x.probs for x in a] == [x.probs for x in b]
    assert_batched_equals_alone(Predictor(loaded), dev_sample[:10])


def test_half_storage_halves_the_file_and_loads_the_rounded_weights(combined, tmp_path):
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    save_tagger(full, combined)
    save_tagger(half, combined, half=True)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded = load_tagger(half).model.state_dict()
    rounded = load_tagger(full).model
    round_to_half(rounded)
    for name, value in rounded.state_dict().items():
        assert loaded[name].dtype == value.dtype
        assert torch.equal(loaded[name], value), name


def test_inspect_traces_every_member(combined):
    trace = Predictor(combined).inspect(["The", "cow", "jumped"])
    modules = {layer.module for layer in trace.layers}
    assert modules == {"members.0.encoder", "members.1.encoder"}
    assert len(trace.layers) == 8  # 2 members x 2 layers x 2 directions
    member = combined.model.members[1]
    batch = make_batch([Sentence(trace.tokens)], combined.vocabs)
    with torch.no_grad():
        outputs, _, _ = trace_lstm(member.encoder, member.features(batch), lengths=batch.lengths)
    last = [layer for layer in trace.layers if layer.module == "members.1.encoder" and layer.layer == 1]
    assert torch.allclose(torch.cat([last[0].h, last[1].h], dim=-1), outputs[0], atol=1e-6)


def test_refuses_what_cannot_be_averaged(members, sample, tmp_path):
    bundles = [load_tagger(p) for p in members]
    with pytest.raises(ValueError, match="at least two"):
        Ensemble([bundles[0].model])
    crf_path = tmp_path / "crf.safetensors"
    train_tagger(sample[:40], sample[40:48], tiny_config("train.epochs=1", "model.head=crf"), crf_path)
    with pytest.raises(ValueError, match="softmax"):
        ensemble([bundles[0], load_tagger(crf_path)], ["a", "crf"])
    other_path = tmp_path / "other.safetensors"
    train_tagger(sample[8:48], sample[:8], tiny_config("train.epochs=1"), other_path)
    with pytest.raises(ValueError, match="vocabularies differ"):
        ensemble([bundles[0], load_tagger(other_path)], ["a", "other"])
    with pytest.raises(ValueError, match="stepped"):
        Predictor(ensemble(bundles, ["a", "b"])).stepper()


def test_cli_combines_and_scores_on_dev(members, tmp_path):
    out = tmp_path / "ens.safetensors"
    dev = str(DATA / "ewt_dev_sample.conllu")
    result = CliRunner().invoke(app, ["ensemble", *map(str, members), "--out", str(out), "--dev", dev])
    assert result.exit_code == 0, result.output
    assert "ensemble: dev upos" in result.output
    bundle = load_tagger(out)
    assert [m["source"] for m in bundle.info["members"]] == [str(p) for p in members]
    assert 0.0 < bundle.info["dev_accuracy"] <= 1.0
    evaluated = CliRunner().invoke(app, ["evaluate", str(out), dev, "--json"])
    assert evaluated.exit_code == 0, evaluated.output


def test_members_with_per_feature_heads_vote_per_feature(per_feature_tagger, feats_sample, tmp_path):
    from lstmtag.feats import assemble
    from tests.conftest import train_feats_tagger

    other = train_feats_tagger(feats_sample[:8], tmp_path / "seed4.safetensors", "per_feature", "train.seed=4")
    paths = [per_feature_tagger, other]
    combined = ensemble([load_tagger(p) for p in paths], [str(p) for p in paths])
    save_tagger(tmp_path / "e.safetensors", combined)
    predictor = Predictor.load(tmp_path / "e.safetensors")
    assert predictor.columns == ["upos", "xpos", "feats"]
    data = feats_sample[:8]
    tagged = predictor.predict(data)
    assert [t.tags["feats"] for t in tagged] == [s.labels["feats"] for s in data]  # both members overfitted
    decoded = combined.model.decode(make_batch(data[:1], combined.vocabs))
    labels = combined.vocabs.labels
    heads = {name: [labels[name].itos[i] for i in ids[0].tolist()] for name, (ids, _) in decoded.items()}
    probs = {name: p[0].tolist() for name, (_, p) in decoded.items()}
    strings, joint = assemble(heads, probs)
    assert tagged[0].tags["feats"] == strings
    assert tagged[0].probs["feats"] == pytest.approx(joint, abs=1e-5)
    result = CliRunner().invoke(
        app,
        [
            "ensemble",
            *map(str, paths),
            "--out",
            str(tmp_path / "c.safetensors"),
            "--dev",
            str(DATA / "ewt_sample.conllu"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "feats" in result.output
