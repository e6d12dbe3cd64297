import pytest
import torch

from lstmtag.checkpoint import read
from lstmtag.models import build_tagger
from lstmtag.train import build_vocabs, resume_path, train_tagger
from tests.conftest import tiny_config


def test_resume_continues_exactly_where_training_stopped(sample, tmp_path):
    config = tiny_config(
        "train.epochs=3", "train.patience=10", "model.dropout=0.2", "model.word_dropout=0.25", "train.ema=0.9"
    )
    straight = tmp_path / "straight.safetensors"
    train_tagger(sample[:16], sample[:6], config, straight)
    # The same run, "killed" right after its first epoch, then resumed.
    interrupted = tmp_path / "interrupted.safetensors"

    def kill_after_first_epoch(progress):
        if progress.event == "eval":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_tagger(sample[:16], sample[:6], config, interrupted, on_progress=kill_after_first_epoch)
    assert resume_path(interrupted).is_file()
    result = train_tagger(sample[:16], sample[:6], config, interrupted, resume=True)
    assert result.epochs_run == 3
    a = read(resume_path(straight)).tensors
    b = read(resume_path(interrupted)).tensors
    for name in a:
        if name.startswith("model."):
            assert torch.equal(a[name], b[name]), name


def test_time_budget_keeps_best_model(sample, tmp_path):
    out = tmp_path / "m.safetensors"
    result = train_tagger(sample[:16], sample[:6], tiny_config("train.epochs=1000", "train.max_minutes=0.02"), out)
    assert result.stopped_by == "time"
    assert out.is_file()


def test_info_and_config_are_saved(sample, tmp_path):
    out = tmp_path / "m.safetensors"
    train_tagger(sample[:8], sample[:4], tiny_config("train.epochs=1"), out, info={"command": "test"})
    saved = read(out)
    assert saved.info["command"] == "test"
    assert saved.config["model"]["hidden_size"] == 24
    assert "upos" in saved.vocabs["labels"]


def test_empty_training_or_dev_list_is_a_clear_error(sample, tmp_path):
    with pytest.raises(ValueError, match="no training sentences"):
        train_tagger([], sample[:2], tiny_config(), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="no dev sentences"):
        train_tagger(sample[:2], [], tiny_config(), tmp_path / "m.safetensors")


def test_a_resume_state_from_before_the_shared_loop_is_a_clear_error(sample, tmp_path):
    from lstmtag import checkpoint

    out = tmp_path / "m.safetensors"
    config = tiny_config("train.epochs=1")
    vocabs = build_vocabs(sample[:8], config)
    model = build_tagger(config, vocabs)
    optimizer = torch.optim.AdamW(model.parameters())
    old_info = {"state": {"epoch": 1}, "python_rng": [3, [0], None]}  # the layout train.py wrote before
    checkpoint.save_training_state(
        resume_path(out), config=config.to_dict(), modules={"model": model}, optimizer=optimizer, info=old_info
    )
    with pytest.raises(ValueError, match="training state from an older lstmtag; start again without --resume"):
        train_tagger(sample[:8], sample[:4], config, out, resume=True)


def test_resuming_with_other_settings_is_a_clear_error(sample, tmp_path):
    out = tmp_path / "m.safetensors"
    train_tagger(sample[:8], sample[:4], tiny_config("train.epochs=1"), out)
    with pytest.raises(ValueError, match=r"other settings \(train.batch_size=8 -> 4\)"):
        train_tagger(sample[:8], sample[:4], tiny_config("train.epochs=2", "train.batch_size=4"), out, resume=True)
    result = train_tagger(
        sample[:8], sample[:4], tiny_config("train.epochs=2", "train.max_minutes=5"), out, resume=True
    )
    assert result.epochs_run == 2  # more epochs and a time budget may change


def test_a_resume_state_saved_before_a_new_setting_resumes(sample, tmp_path):
    from lstmtag import checkpoint

    out = tmp_path / "m.safetensors"
    train_tagger(sample[:8], sample[:4], tiny_config("train.epochs=1"), out)
    state = checkpoint.read(resume_path(out))
    del state.config["data"]["feats_heads"]  # as written before data.feats_heads existed
    checkpoint.save(resume_path(out), state)
    assert train_tagger(sample[:8], sample[:4], tiny_config("train.epochs=2"), out, resume=True).epochs_run == 2


def test_per_feature_feats_heads_need_an_lstm_and_features(feats_sample, tmp_path):
    from dataclasses import replace

    from lstmtag.train import prepare

    hmm = tiny_config("model.kind=hmm", "data.columns=upos,feats", "data.feats_heads=per_feature")
    with pytest.raises(ValueError, match="per-feature FEATS heads need an LSTM tagger"):
        prepare(feats_sample[:4], hmm)
    bare = [replace(s, labels={**s.labels, "feats": ["_"] * len(s.words)}) for s in feats_sample[:4]]
    config = tiny_config("data.columns=upos,feats", "data.feats_heads=per_feature", "train.epochs=1")
    with pytest.raises(ValueError, match="no FEATS to learn them from"):
        train_tagger(bare, bare, config, tmp_path / "m.safetensors")
