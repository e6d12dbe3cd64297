import pytest
import torch

from lstmtag.corpus_trace import LMCorpus, TaggerCorpus
from lstmtag.predict import Predictor
from lstmtag.unit_search import UnitRef, parse_units, search
from tests.conftest import DATA
from tests.units_fixtures import TEXT, stream_traces, tiny_lm


def _runs(values: list[float], threshold: float, min_length: int) -> list[tuple[int, int, float]]:
    """Brute force: every maximal run of values above the threshold, as (start, end, mean)."""
    runs, start = [], None
    for t, value in enumerate([*values, float("-inf")]):
        if value > threshold and start is None:
            start = t
        elif value <= threshold and start is not None:
            if t - start >= min_length:
                runs.append((start, t, sum(values[start:t]) / (t - start)))
            start = None
    return runs


def test_language_model_spans_equal_brute_force_over_whole_streams(tmp_path):
    model = tiny_lm(3)
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    corpus = LMCorpus(model, path, streams=2, window=5)  # spans must join across windows
    units = [UnitRef("lm", 0, "forward", 1), UnitRef("lm", 0, "forward", 4, sign=-1)]
    found = search(corpus, units, threshold=0.02, min_length=2, keep=1000)
    expected = []
    for row in range(corpus.streams):
        start = row * corpus.stretch
        ((_, _, _, trace),) = stream_traces(model, TEXT, start, min(len(TEXT), start + corpus.stretch))
        weakest = torch.minimum(trace.h[0, :, 1], -trace.h[0, :, 4]).tolist()
        expected += [(row, s, e, m) for s, e, m in _runs(weakest, 0.02, 2)]
    assert expected, "the fixture should have spans to find"
    assert found.matches == len(expected)
    got = [(s.row, s.start, s.end, s.strength) for s in found.best()]
    assert sorted((r, s, e) for r, s, e, _ in got) == sorted((r, s, e) for r, s, e, _ in expected)
    by_span = {(r, s, e): m for r, s, e, m in expected}
    assert all(strength == pytest.approx(by_span[(r, s, e)], abs=1e-6) for r, s, e, strength in got)
    ranks = [(s.end - s.start, s.strength) for s in found.best()]
    assert ranks == sorted(ranks, reverse=True)  # longest first, then strongest
    best = found.best()[0]
    offset = best.row * corpus.stretch
    assert best.text == TEXT[offset + best.start : offset + best.end]
    assert TEXT[: offset + best.start].endswith(best.left)


def test_keep_bounds_the_spans_kept_not_the_count(tmp_path):
    model = tiny_lm(3)
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    every = search(LMCorpus(model, path, streams=2, window=5), [UnitRef("lm", 0, "forward", 1)], threshold=0.0)
    few = search(LMCorpus(model, path, streams=2, window=5), [UnitRef("lm", 0, "forward", 1)], threshold=0.0, keep=3)
    assert few.matches == every.matches > 3
    assert [s.rank for s in few.best()] == [s.rank for s in every.best()[:3]]


def test_tagger_spans_stay_within_sentences(tiny_tagger):
    from lstmtag.data import load_labelled

    predictor = Predictor.load(tiny_tagger)
    sentences = load_labelled(DATA / "ewt_dev_sample.conllu", "conllu", ["upos"])
    values = []
    for sentence in sentences:
        layer = next(t for t in predictor.inspect(sentence.words).layers if (t.layer, t.direction) == (1, "backward"))
        values.append(layer.h[:, 2].tolist())
    # Near the median (so spans exist), halfway across the widest gap between neighbouring values: a
    # threshold equal to a value would let float rounding between the two paths decide that cell.
    ordered = sorted(v for row in values for v in row)
    middle = len(ordered) // 2
    gap, below = max((ordered[i + 1] - ordered[i], i) for i in range(middle - 10, middle + 10))
    assert gap > 1e-4
    threshold = (ordered[below] + ordered[below + 1]) / 2
    corpus = TaggerCorpus(predictor, DATA / "ewt_dev_sample.conllu", batch_size=4, chunk_sentences=5)
    refs = parse_units("1:backward:2", "encoder", corpus.modules, corpus.sizes())
    found = search(corpus, refs, threshold=threshold, keep=500)
    expected = [(row, s, e) for row, row_values in enumerate(values) for s, e, _ in _runs(row_values, threshold, 1)]
    assert len(expected) > 5, "the fixture should have spans to find"
    assert sorted((s.row, s.start, s.end) for s in found.best()) == sorted(expected)
    for span in found.best():
        assert span.text == " ".join(sentences[span.row].words[span.start : span.end])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("1:sideways:2", "LAYER:DIRECTION:UNIT"),
        ("1:forward", "LAYER:DIRECTION:UNIT"),
        ("5:forward:2", "no layer 5"),
        ("1:forward:99", "units 0 to 23"),
        ("", "LAYER:DIRECTION:UNIT"),
    ],
)
def test_bad_unit_names_are_refused_with_the_reason(spec, message):
    sizes = {("encoder", layer, d): 24 for layer in (0, 1) for d in ("forward", "backward")}
    with pytest.raises(ValueError, match=message):
        parse_units(spec, "encoder", ["encoder"], sizes)
    with pytest.raises(ValueError, match="the model's LSTMs"):
        parse_units("1:forward:1", "members.0.encoder", ["encoder"], sizes)


def test_units_named_in_full_pick_their_module_and_odd_digits_are_refused():
    sizes = {
        (m, layer, d): 24
        for m in ("members.0.encoder", "members.1.encoder")
        for layer in (0, 1)
        for d in ("forward", "backward")
    }
    modules = ["members.0.encoder", "members.1.encoder"]
    refs = parse_units("members.1.encoder:1:backward:3,0:forward:2", "members.0.encoder", modules, sizes)
    assert refs == [UnitRef("members.1.encoder", 1, "backward", 3), UnitRef("members.0.encoder", 0, "forward", 2)]
    with pytest.raises(ValueError, match="LAYER:DIRECTION:UNIT"):
        parse_units("1:forward:\u00b2", "members.0.encoder", modules, sizes)  # "²".isdigit() is True
