"""feats.py: FEATS strings split into one column per feature and put back together in UD order."""

from dataclasses import replace

import pytest

from lstmtag.config import DataConfig
from lstmtag.data import DataError
from lstmtag.feats import (
    ABSENT,
    assemble,
    column,
    feature_names,
    join,
    label_columns,
    split,
    with_features,
)


def test_split_and_join_round_trip_every_sample_feats(feats_sample):
    strings = [feats for s in feats_sample for feats in s.labels["feats"]]
    assert ABSENT in strings and any("|" in feats for feats in strings)
    assert all(join(split(feats)) == feats for feats in strings)


def test_join_sorts_names_case_insensitively_and_leaves_out_absent_features():
    values = {"NumType": "Card", "Number[psor]": "Sing", "Abbr": "Yes", "Tense": ABSENT}
    assert join(values) == "Abbr=Yes|Number[psor]=Sing|NumType=Card"  # a case-sensitive sort puts NumType first
    assert join({"Tense": ABSENT}) == ABSENT
    assert join({}) == ABSENT


@pytest.mark.parametrize("feats", ["Number", "Number=", "=Sing", "Number=_", "Number=Sing|"])
def test_split_refuses_an_item_that_is_not_name_value(feats):
    with pytest.raises(ValueError, match="not Name=Value"):
        split(feats)


def test_with_features_adds_a_column_per_feature_and_leaves_the_input(feats_sample):
    names = feature_names(feats_sample)
    assert names == sorted(names, key=str.lower) and "Number" in names
    (first,) = with_features(feats_sample[:1], names)
    assert first.labels[column("Number")] == [split(f).get("Number", ABSENT) for f in first.labels["feats"]]
    assert all(column(name) in first.labels for name in names)
    assert column("Number") not in feats_sample[0].labels


def test_a_malformed_feats_is_an_error_at_its_line(feats_sample):
    sentence = feats_sample[0]
    broken = replace(sentence, labels={**sentence.labels, "feats": ["Number", *sentence.labels["feats"][1:]]})
    with pytest.raises(DataError, match=rf"ewt_sample.conllu:{sentence.line + sentence.word_lines[0]}: .*Name=Value"):
        with_features([broken], ["Number"])


def test_assemble_joins_each_tokens_choices_with_the_product_of_their_probabilities():
    tags = {"upos": ["NOUN", "VERB"], column("Number"): ["Plur", ABSENT], column("Gender"): ["Fem", ABSENT]}
    probs = {"upos": [0.9, 0.9], column("Number"): [0.5, 0.8], column("Gender"): [0.4, 1.0]}
    strings, joint = assemble(tags, probs)
    assert strings == ["Gender=Fem|Number=Plur", ABSENT]
    assert joint == pytest.approx([0.2, 0.8])
    with pytest.raises(ValueError, match="no per-feature columns"):
        assemble({"upos": ["NOUN"]}, {"upos": [1.0]})


def test_label_columns_put_the_chosen_heads_where_feats_was(feats_sample):
    prepared = with_features(feats_sample, feature_names(feats_sample))
    features = [column(name) for name in feature_names(feats_sample)]
    columns = ("upos", "feats", "xpos")
    assert label_columns(DataConfig(columns=columns), prepared) == list(columns)
    assert label_columns(DataConfig(columns=columns, feats_heads=("per_feature",)), prepared) == [
        "upos",
        *features,
        "xpos",
    ]
    both = DataConfig(columns=columns, feats_heads=("per_feature", "whole"))
    assert label_columns(both, prepared) == ["upos", *features, "feats", "xpos"]
    with pytest.raises(ValueError, match="no FEATS to learn"):
        label_columns(DataConfig(columns=columns, feats_heads=("per_feature",)), feats_sample)
