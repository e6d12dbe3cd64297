import pytest

from lstmtag.config import Config, load_config, parse_override, saved_config


def test_defaults_round_trip_through_dict():
    config = Config()
    assert Config.from_dict(config.to_dict()) == config


def test_toml_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[model]\nhidden_size = 50\n[data]\ncolumns = ["upos"]\n', encoding="utf-8")
    config = load_config(path, ["model.head=crf", "train.lr=0.5", "data.columns=upos,feats"])
    assert config.model.hidden_size == 50
    assert config.model.head == "crf"
    assert config.train.lr == 0.5
    assert config.data.columns == ("upos", "feats")


def test_typos_and_wrong_types_are_errors():
    with pytest.raises(ValueError, match="unknown setting"):
        load_config(None, ["model.hiden_size=3"])
    with pytest.raises(ValueError, match="must be an integer"):
        load_config(None, ["model.hidden_size=big"])
    with pytest.raises(ValueError, match="section.key=value"):
        parse_override("hidden_size=3")


def test_shipped_presets_load():
    for name in ("pos", "hmm", "pos_crf", "lesson"):
        load_config(f"configs/{name}.toml")


def test_saved_config_gives_settings_a_file_predates_their_old_behaviour():
    assert Config().model.hmm_joint is True  # new runs
    assert saved_config({"model": {"kind": "hmm"}}).model.hmm_joint is False  # a file saved before the setting
    assert saved_config({"model": {"kind": "hmm", "hmm_joint": True}}).model.hmm_joint is True


@pytest.mark.parametrize("heads", ["", "string", "whole,whole", "per_feature,morph"])
def test_feats_heads_must_name_known_heads_once(heads):
    with pytest.raises(ValueError, match="data.feats_heads must name"):
        load_config(None, [f"data.feats_heads={heads}"])


def test_feats_heads_keep_their_order():
    assert Config().data.feats_heads == ("whole",)  # what files saved before the setting were trained with
    assert load_config(None, ["data.feats_heads=per_feature,whole"]).data.feats_heads == ("per_feature", "whole")
