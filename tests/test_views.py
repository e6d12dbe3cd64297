import json

import pytest
import torch

from lstmtag.inspector import LayerTrace, Trace
from lstmtag.views import load_stats, order_units, sentence_view, token_labels, token_summary
from tests.units_fixtures import pooled_d


def _layer(direction: str = "forward", steps: int = 5, size: int = 6, seed: int = 0) -> LayerTrace:
    torch.manual_seed(seed)
    h, c, g = torch.randn(steps, size).tanh(), torch.randn(steps, size) * 2, torch.randn(steps, size).tanh()
    i, f, o = (torch.rand(steps, size) for _ in range(3))
    return LayerTrace("encoder", 1, direction, h, c, i, f, g, o)


def test_variance_order_and_top_k():
    layer = _layer()
    expected = layer.h.var(0, unbiased=False).argsort(descending=True).tolist()
    assert order_units(layer, top=3) == expected[:3]
    assert order_units(layer, top=0) == expected  # every unit
    assert sorted(order_units(layer, top=0)) == list(range(6))


def test_tag_order_within_the_sentence_is_cohens_d():
    layer = _layer(steps=6)
    labels = [{"NOUN"}, {"DET"}, {"NOUN"}, {"VERB"}, {"NOUN"}, {"DET"}]
    has = torch.tensor([True, False, True, False, True, False])
    d = pooled_d(layer.h[has].double(), layer.h[~has].double())
    assert order_units(layer, order="tag:NOUN", labels=labels, top=0) == d.argsort(descending=True).tolist()


def test_tag_order_from_corpus_statistics(tmp_path):
    layer = _layer()
    report = {
        "units": [
            {
                "module": "encoder",
                "layer": 1,
                "direction": "forward",
                "unit": u,
                "selective_for": [{"label": "NOUN", "effect": e, "count": 9}],
            }
            for u, e in ((2, 0.5), (4, 2.0), (5, -1.0))
        ]
    }
    path = tmp_path / "units.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    stats = load_stats(path)
    assert order_units(layer, order="tag:NOUN", stats=stats, top=2) == [4, 2]
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="units --json"):
        load_stats(tmp_path / "bad.json")


def test_unit_lists_by_index_and_by_name():
    layer = _layer()
    assert order_units(layer, order="units:5,1,5") == [5, 1]
    assert order_units(layer, order="units:encoder:1:forward:3,encoder:0:forward:2") == [3]
    assert order_units(layer, order="units:encoder:1:backward:3") == []
    with pytest.raises(ValueError, match="units 0 to 5"):
        order_units(layer, order="units:6")
    with pytest.raises(ValueError, match="variance, tag:LABEL or units:LIST"):
        order_units(layer, order="loudness")


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_summary_says_how_much_of_the_previous_cell_is_kept(direction):
    layer = _layer(direction)
    rows = token_summary(layer)
    steps = layer.h.shape[0]
    read = list(range(steps)) if direction == "forward" else list(reversed(range(steps)))
    assert rows[read[0]]["kept"] is None
    for before, t in zip(read, read[1:], strict=False):
        previous = layer.c[before]
        assert rows[t]["kept"] == pytest.approx(float((layer.f[t] * previous).norm() / previous.norm()), rel=1e-5)
    assert rows[2]["h_norm"] == pytest.approx(float(layer.h[2].norm()))
    assert rows[2]["f"] == pytest.approx(float(layer.f[2].mean()))


def test_sentence_view_keeps_the_chosen_columns():
    layers = [_layer(), _layer("backward", seed=1)]
    trace = Trace(["a", "b", "c", "d", "e"], {"upos": [{"tag": "X", "prob": 1.0}] * 5}, layers)
    view = sentence_view(trace, top=2)
    assert [len(layer["units"]) for layer in view["layers"]] == [2, 2]
    first = view["layers"][0]
    assert first["h"] == layers[0].h[:, first["units"]].tolist()
    assert first["size"] == 6 and len(first["summary"]) == 5
    assert token_labels(trace) == [{"X"}] * 5


def test_language_model_tokens_get_character_classes():
    trace = Trace(list("A b\n"), {"next": [{"tag": "x", "prob": 0.5}] * 4}, [])
    labels = token_labels(trace)
    assert "upper case" in labels[0] and "space" in labels[1] and "newline" in labels[3]


def test_stats_from_unit_statistics_matches_the_json(tiny_tagger):
    from lstmtag.corpus_trace import TaggerCorpus
    from lstmtag.predict import Predictor
    from lstmtag.units import collect
    from lstmtag.views import stats_from
    from tests.conftest import DATA

    stats = collect(TaggerCorpus(Predictor.load(tiny_tagger), DATA / "ewt_dev_sample.conllu"))
    mapping = stats_from(stats)
    for unit in stats.to_json(top=3, min_count=1)["units"][:20]:
        key = (unit["module"], unit["layer"], unit["direction"], unit["unit"])
        for entry in unit["selective_for"]:
            assert mapping[key][entry["label"]] == pytest.approx(entry["effect"])
