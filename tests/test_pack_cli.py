"""`lstmtag pack` and `lstmtag ensemble`: the finishing step that makes a tagger file ready to ship."""

import pytest
import torch
from typer.testing import CliRunner

from lstmtag.cli import app
from lstmtag.models import load_tagger
from lstmtag.predict import Predictor
from lstmtag.train import train_tagger
from tests.conftest import DATA, tiny_config

DEV = str(DATA / "ewt_dev_sample.conllu")


@pytest.fixture(scope="module")
def trained(sample, tmp_path_factory):
    path = tmp_path_factory.mktemp("pack") / "one.safetensors"
    train_tagger(sample[:40], sample[40:48], tiny_config("train.epochs=2"), path)
    return path


def test_pack_rounds_to_half_records_precision_and_scores_on_dev(trained, sample, tmp_path):
    out = tmp_path / "packed.safetensors"
    result = CliRunner().invoke(app, ["pack", str(trained), "--out", str(out), "--dev", DEV, "--precision", "int8"])
    assert result.exit_code == 0, result.output
    assert "packed: dev upos" in result.output
    assert out.stat().st_size < trained.stat().st_size * 0.75  # float16 storage
    packed, original = load_tagger(out), load_tagger(trained)
    assert packed.info["precision"] == "int8" and 0.0 < packed.info["dev_accuracy"] <= 1.0
    assert "packed_by" in packed.info  # (under CliRunner the recorded argv is pytest's)
    assert packed.info.get("command") == original.info.get("command")  # how it was trained stays on record
    for name, weight in original.model.state_dict().items():
        if weight.is_floating_point():
            assert torch.equal(packed.model.state_dict()[name], weight.half().float()), name
    assert Predictor(packed).runtime.precision == "int8"  # the recorded precision is the default
    assert Predictor(packed).predict(sample[:5]) is not None


def test_ensemble_of_one_is_refused_with_a_pointer_to_pack(trained, tmp_path):
    result = CliRunner().invoke(app, ["ensemble", str(trained), "--out", str(tmp_path / "e.safetensors")])
    assert result.exit_code == 2
    assert "lstmtag pack" in result.output
