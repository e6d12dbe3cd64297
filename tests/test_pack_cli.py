"""`lstmtag pack` and `lstmtag ensemble`: the finishing step that makes a tagger file ready to ship."""

import pytest
import torch
from typer.testing import CliRunner

from lstmtag.cli import app
from lstmtag.models import load_tagger, save_tagger
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


TRAIN = str(DATA / "ewt_sample.conllu")


def test_pack_stores_a_lemma_lexicon_that_every_load_honours(ud_tagger, ud_sample, tmp_path):
    from dataclasses import replace

    from lstmtag.lexicon import LemmaLexicon, build

    out = tmp_path / "lexicon.safetensors"
    result = CliRunner().invoke(
        app, ["pack", str(ud_tagger), "--lemma-lexicon", TRAIN, "--dev", DEV, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    packed, plain = load_tagger(out), load_tagger(ud_tagger)
    assert plain.lexicon is None and packed.lexicon is not None
    # Built from the training file and the head's own lemmas of it (the pairs it gets right anyway go).
    head = [t.tags["lemma"] for t in Predictor(replace(packed, lexicon=None)).predict(ud_sample)]
    assert packed.lexicon == build(ud_sample, predicted=head) and len(packed.lexicon) < len(build(ud_sample))
    assert f"lemma lexicon: {len(packed.lexicon):,} (form, xpos) entries" in result.output
    assert "dev lemma: " in result.output and "from the edit scripts alone" in result.output
    assert packed.info["lemma_lexicon"]["entries"] == len(packed.lexicon)
    tagged = Predictor(packed).predict(ud_sample)
    found = [
        (packed.lexicon.entries[(w, tag)], lemma)
        for s, t in zip(ud_sample, tagged, strict=True)
        for w, tag, lemma in zip(s.words, t.tags["xpos"], t.tags["lemma"], strict=True)
        if (w, tag) in packed.lexicon.entries
    ]
    assert len(found) > 50 and all(entry == lemma for entry, lemma in found)
    # Its entry wins over the script: a doctored entry shows up in the tags, and survives save and load.
    gold = ud_sample[5]  # memorised: "The third was being run by ..."
    (tagged,) = Predictor(packed).predict([gold])
    doctored = LemmaLexicon({**packed.lexicon.entries, ("run", tagged.tags["xpos"][4]): "RUN"})
    again = tmp_path / "doctored.safetensors"
    save_tagger(again, replace(packed, lexicon=doctored))
    (changed,) = Predictor(load_tagger(again)).predict([gold])
    assert changed.tags["lemma"] == [*tagged.tags["lemma"][:4], "RUN", *tagged.tags["lemma"][5:]]
    assert load_tagger(again).lexicon == doctored


def test_pack_without_lemma_lexicon_keeps_the_one_a_model_has(ud_tagger, tmp_path):
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    assert (
        CliRunner().invoke(app, ["pack", str(ud_tagger), "--lemma-lexicon", TRAIN, "--out", str(first)]).exit_code == 0
    )
    assert CliRunner().invoke(app, ["pack", str(first), "--out", str(second)]).exit_code == 0
    assert load_tagger(second).lexicon == load_tagger(first).lexicon
    assert load_tagger(second).info["first_packed_by"] == load_tagger(first).info["packed_by"]


def test_a_lemma_lexicon_needs_a_lemma_head(trained, tmp_path):
    result = CliRunner().invoke(
        app, ["pack", str(trained), "--lemma-lexicon", TRAIN, "--out", str(tmp_path / "p.safetensors")]
    )
    assert result.exit_code == 2
    assert "--lemma-lexicon needs a model with a lemma head" in result.output


@pytest.mark.parametrize("problem", ["corrupt", "oversized"])
def test_a_corrupt_or_oversized_lexicon_is_one_clear_error(ud_tagger, tmp_path, monkeypatch, problem):
    from lstmtag.checkpoint import ModelFileError, read, save

    packed = tmp_path / "packed.safetensors"
    assert (
        CliRunner().invoke(app, ["pack", str(ud_tagger), "--lemma-lexicon", TRAIN, "--out", str(packed)]).exit_code == 0
    )
    model_file = read(packed)
    if problem == "corrupt":
        model_file.lexicon = model_file.lexicon[: len(model_file.lexicon) // 2]
        expected = "malformed lemma lexicon: Unterminated string"
    else:
        monkeypatch.setattr("lstmtag.lexicon.MAX_LEXICON_CHARS", 1000)
        expected = f"malformed lemma lexicon: {len(model_file.lexicon):,} characters of JSON; at most 1,000"
    broken = tmp_path / "broken.safetensors"
    save(broken, model_file)
    with pytest.raises(ModelFileError, match=f"{broken.name}: {expected}"):
        load_tagger(broken)
    result = CliRunner().invoke(app, ["tag", "--model", str(broken), "--input", "text"], input="Hello there\n")
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and expected in result.output
