"""The registry: files of format 1 still load as the kind they hold; unknown kinds fail naming the version."""

from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

import lstmtag
from lstmtag import checkpoint, models
from lstmtag.checkpoint import ModelFileError
from lstmtag.train import train_tagger
from tests.conftest import tiny_config


def _rewrite(source, target, **metadata):
    with safe_open(str(source), framework="pt") as handle:
        saved = {**handle.metadata(), **metadata}
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    save_file(tensors, str(target), metadata=saved)
    return target


@pytest.fixture(scope="module")
def files(sample, tiny_tagger, tmp_path_factory):
    """A model file of each tagger kind, as this version writes them."""
    folder = tmp_path_factory.mktemp("kinds")
    hmm = folder / "hmm.safetensors"
    train_tagger(sample, sample[:4], tiny_config("model.kind=hmm"), hmm)
    other = folder / "other.safetensors"
    train_tagger(sample[:8], sample[:2], tiny_config("train.epochs=1", "train.seed=9"), other)
    ensemble = folder / "ensemble.safetensors"
    bundles = [models.load_tagger(tiny_tagger), models.load_tagger(other)]
    models.save_tagger(ensemble, models.ensemble(bundles, [str(tiny_tagger), str(other)]))
    return {"tagger": tiny_tagger, "hmm": hmm, "ensemble": ensemble}


@pytest.mark.parametrize("kind", ["tagger", "hmm", "ensemble"])
def test_a_file_of_format_1_loads_as_the_kind_it_holds(files, kind, tmp_path, dev_sample):
    """Format 1 named every tagger "tagger"; its config tells an HMM and an ensemble apart."""
    assert checkpoint.read(files[kind]).kind == kind
    old = _rewrite(files[kind], tmp_path / "old.safetensors", format_version="1", kind="tagger")
    now, before = lstmtag.load(files[kind]), lstmtag.load(old)
    assert before.bundle.model.kind == kind
    assert [(t.tags, t.probs) for t in before.predict(dev_sample)] == [
        (t.tags, t.probs) for t in now.predict(dev_sample)
    ]


@pytest.mark.parametrize("name", ["tagger", "hmm", "ensemble"])
def test_format_1_files_load_as_their_kind(files, sample, tmp_path, name):
    """Version 1 said "tagger" for every tagger kind (the shipped `en` up to v6 was such a file)."""
    old = _rewrite(files[name], tmp_path / "v1.safetensors", format_version="1", kind="tagger")
    assert checkpoint.read(old).version == 1
    loaded, current = lstmtag.load(old), lstmtag.load(files[name])
    assert loaded.bundle.model.kind == current.bundle.model.kind == name
    assert [t.tags for t in loaded.predict(sample[:6])] == [t.tags for t in current.predict(sample[:6])]


def test_an_unknown_kind_is_refused_naming_the_format_version(files, tmp_path):
    path = _rewrite(files["tagger"], tmp_path / "odd.safetensors", kind="parser")
    with pytest.raises(ModelFileError, match=r"a 'parser' file \(format version 2\), not a model of a kind"):
        lstmtag.load(path)


def test_a_newer_format_is_refused_naming_both_versions(files, tmp_path):
    path = _rewrite(files["tagger"], tmp_path / "new.safetensors", format_version="3")
    with pytest.raises(ModelFileError, match=r"format version 3 is newer than this lstmtag reads \(2\)"):
        lstmtag.load(path)


def test_a_kind_in_the_wrong_family_is_refused(files, tmp_path):
    path = _rewrite(files["tagger"], tmp_path / "lm.safetensors", kind="lm")
    with pytest.raises(ModelFileError, match="vocabs.tokens must be a list of strings"):
        lstmtag.load(path)


@pytest.mark.parametrize("kind", ["tagger", "hmm", "ensemble"])
def test_declared_capabilities_are_what_the_predictor_does(files, kind):
    """What a kind declares is what it does: inspect and stepping work exactly where declared."""
    predictor = lstmtag.load(files[kind])
    assert predictor.bundle.model.kind == kind and predictor.capabilities.tags
    if predictor.capabilities.traced:
        assert predictor.inspect(["The", "cow"]).layers
    else:
        with pytest.raises(ValueError, match="no LSTM"):
            predictor.inspect(["The", "cow"])
    if predictor.capabilities.stepped:
        assert predictor.stepper().step("The")["token"] == "The"
    else:
        with pytest.raises(ValueError, match="step|one token at a time"):
            predictor.stepper()


def test_a_segmenter_config_declares_what_a_trained_segmenter_can_do():
    """The training command reads a config's declared capabilities before any model exists."""
    from lstmtag.config import load_config
    from lstmtag.models import for_config
    from lstmtag.segmenter import TrainedSegmenter

    config = load_config(Path(__file__).parent.parent / "configs" / "segmenter.toml", [])
    assert for_config(config).declared(config) == TrainedSegmenter.capabilities


def test_a_tagger_file_finds_the_segmenter_beside_it(tmp_path):
    from lstmtag.models import segmenter_path

    tagger = tmp_path / "m.safetensors"
    tagger.write_bytes(b"")
    assert segmenter_path(tagger) is None
    (tmp_path / "m.segmenter.safetensors").write_bytes(b"")
    assert segmenter_path(tagger) == tmp_path / "m.segmenter.safetensors"
    assert segmenter_path(str(tagger)) == tmp_path / "m.segmenter.safetensors"
    assert segmenter_path("en") is not None and segmenter_path("en").name == "en_ewt.segmenter.safetensors"
