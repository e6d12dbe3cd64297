import pytest
import torch

from lstmtag.corpus_trace import TaggerCorpus, TracedChunk
from lstmtag.inspector import LayerTrace
from lstmtag.predict import Predictor
from lstmtag.probe import Probe, probe
from tests.conftest import DATA


def _chunk(h: torch.Tensor, gold: torch.Tensor, lengths: list[int]) -> TracedChunk:
    """A fake traced batch: one forward layer whose h is given, (B, T, H), gold (B, T)."""
    mask = torch.arange(h.shape[1])[None, :] < torch.tensor(lengths)[:, None]
    zeros = torch.zeros_like(h)
    layer = LayerTrace("encoder", 0, "forward", h, zeros, zeros, zeros, zeros, zeros)
    return TracedChunk([layer], mask, None, list(range(len(lengths))), [0] * len(lengths), {}, {"upos": gold})


def test_ridge_probe_equals_least_squares_on_all_tokens_at_once():
    torch.manual_seed(0)
    chunks, xs, ys = [], [], []
    for _ in range(3):
        h = torch.randn(4, 6, 5)
        gold = torch.randint(0, 3, (4, 6))
        lengths = [6, 4, 2, 5]
        chunks.append(_chunk(h, gold, lengths))
        mask = chunks[-1].mask
        xs.append(h[mask].double())
        ys.append(gold[mask])
    prober = Probe({"upos": 3}, ridge=0.0)
    for chunk in chunks:
        prober.add(chunk)
    prober.fit()
    x = torch.cat([torch.cat(xs), torch.ones(sum(len(v) for v in xs), 1, dtype=torch.float64)], -1)
    y = torch.nn.functional.one_hot(torch.cat(ys), 3).double()
    expected = torch.linalg.lstsq(x, y).solution
    assert torch.allclose(prober.weights[("encoder", 0, "forward")]["upos"], expected, atol=1e-6)
    for chunk in chunks:
        prober.score(chunk)
    report = prober.report()
    direct = float(((x @ expected).argmax(-1) == torch.cat(ys)).double().mean())
    assert report["probes"][0]["dev_accuracy"]["upos"] == pytest.approx(direct)
    majority = int(torch.cat(ys).bincount().argmax())
    assert report["majority"]["upos"] == pytest.approx(float((torch.cat(ys) == majority).double().mean()))


def test_a_linearly_readable_label_is_read_perfectly():
    torch.manual_seed(1)
    h = torch.randn(8, 10, 4)
    gold = (h[..., 2] > 0).long()  # the label is the sign of unit 2
    prober = Probe({"upos": 2})
    prober.add(_chunk(h, gold, [10] * 8))
    prober.fit()
    prober.score(_chunk(h, gold, [10] * 8))
    assert prober.report()["probes"][0]["dev_accuracy"]["upos"] > 0.95


def test_probe_on_a_tagger_reports_every_layer_direction_and_input(tiny_tagger):
    predictor = Predictor.load(tiny_tagger)
    train = TaggerCorpus(predictor, DATA / "ewt_sample.conllu", batch_size=8)
    dev = TaggerCorpus(predictor, DATA / "ewt_dev_sample.conllu", batch_size=8)
    report = probe(train, dev)
    kinds = {(row["layer"], row["direction"]) for row in report["probes"]}
    assert kinds == {(None, None), *((layer, d) for layer in (0, 1) for d in ("forward", "backward", "both"))}
    from lstmtag.data import load_labelled

    gold = load_labelled(DATA / "ewt_dev_sample.conllu", "conllu", ["upos"])
    assert report["dev_tokens"]["upos"] == sum(len(sentence.words) for sentence in gold)
    for row in report["probes"]:
        assert set(row["dev_accuracy"]) == {"upos", "xpos"}
        assert 0 <= row["dev_accuracy"]["upos"] <= 1
    both = next(r for r in report["probes"] if r["direction"] == "both")
    assert both["size"] == 2 * 24


def test_probe_refuses_a_language_model(tmp_path):
    from lstmtag.corpus_trace import LMCorpus
    from tests.units_fixtures import TEXT, tiny_lm

    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    corpus = LMCorpus(tiny_lm(), path)
    with pytest.raises(ValueError, match="no gold columns"):
        probe(corpus, corpus)
