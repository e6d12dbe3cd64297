import pytest
import torch

from lstmtag.corpus_trace import CHAR_CLASSES, LMCorpus, TaggerCorpus, char_classes
from lstmtag.data import load_labelled
from lstmtag.inspector import GATES
from lstmtag.predict import Predictor
from lstmtag.units import cohens_d, collect
from tests.conftest import DATA
from tests.units_fixtures import TEXT, pooled_d, stream_traces, tiny_lm

DEV = DATA / "ewt_dev_sample.conllu"


def _direct(values: dict, labels: torch.Tensor, names: list[str]) -> dict:
    """Every statistic computed straight from all steps at once: values name -> (N, H), labels (N, K)."""
    h, c = values["h"].double(), values["c"].double()
    result = {
        "h_mean": h.mean(0),
        "h_std": h.std(0, unbiased=False),
        "c_mean": c.mean(0),
        "c_std": c.std(0, unbiased=False),
    }
    for gate in GATES:
        value = values[gate].double()
        value = (value + 1) / 2 if gate == "g" else value
        result[gate] = ((value < 0.1).double().mean(0), (value > 0.9).double().mean(0))
    result["d"] = {}
    for k, name in enumerate(names):
        chosen = labels[:, k]
        if 2 <= int(chosen.sum()) <= len(chosen) - 2:
            result["d"][name] = pooled_d(h[chosen], h[~chosen])
    return result


def _check(report: dict, key: tuple, direct: dict, counts: dict) -> None:
    rows = [u for u in report["units"] if (u["module"], u["layer"], u["direction"]) == key]
    assert [u["unit"] for u in rows] == list(range(len(rows)))
    for u in rows:
        for name in ("h_mean", "h_std", "c_mean", "c_std"):
            assert u[name] == pytest.approx(float(direct[name][u["unit"]]), abs=1e-6)
        for gate in GATES:
            left, right = direct[gate]
            assert u["saturation"][gate] == pytest.approx([float(left[u["unit"]]), float(right[u["unit"]])], abs=1e-9)
        for entry in u["selective_for"]:
            assert entry["count"] == counts[entry["label"]]
            assert entry["effect"] == pytest.approx(float(direct["d"][entry["label"]][u["unit"]]), abs=1e-6)
        effects = [abs(e["effect"]) for e in u["selective_for"]]
        assert effects == sorted(effects, reverse=True)


def test_tagger_statistics_equal_a_direct_computation(tiny_tagger):
    predictor = Predictor.load(tiny_tagger)
    corpus = TaggerCorpus(predictor, DEV, batch_size=4, chunk_sentences=6)  # several chunks and batches
    report = collect(corpus).to_json(top=50, min_count=1)
    sentences = load_labelled(DEV, "conllu", ["upos"])
    names = predictor.bundle.vocabs.labels["upos"].itos
    per_key: dict = {}
    gold = []
    for sentence in sentences:  # one sentence at a time, through the inspector's public path
        for layer in predictor.inspect(sentence.words).layers:
            arrays = per_key.setdefault(
                (layer.module, layer.layer, layer.direction), {n: [] for n in ("h", "c", *GATES)}
            )
            for name in arrays:
                arrays[name].append(getattr(layer, name))
        gold += sentence.labels["upos"]
    labels = torch.tensor([[tag == name for name in names] for tag in gold])
    counts = {name: int(labels[:, k].sum()) for k, name in enumerate(names)}
    assert report["tokens"] == len(gold) == sum(len(s.words) for s in sentences)
    assert {k: v for k, v in report["labels"].items() if v} == {k: v for k, v in counts.items() if v}
    for key, arrays in per_key.items():
        direct = _direct({n: torch.cat(v) for n, v in arrays.items()}, labels, names)
        _check(report, key, direct, counts)
    assert len(report["units"]) == sum(a["h"][0].shape[-1] for a in per_key.values())


def test_language_model_statistics_carry_the_state_across_windows():
    model = tiny_lm()
    corpus = LMCorpus(model, _write(TEXT), streams=3, window=7)  # windows far shorter than each stream
    report = collect(corpus).to_json(top=len(CHAR_CLASSES), min_count=1)
    arrays = {n: [] for n in ("h", "c", *GATES)}
    for row in range(corpus.streams):
        start = row * corpus.stretch
        end = min(len(TEXT), start + corpus.stretch)
        ((_, _, _, trace),) = stream_traces(model, TEXT, start, end)
        for name in arrays:
            arrays[name].append(getattr(trace, name)[0])
    labels = char_classes(TEXT)
    counts = {name: int(labels[:, k].sum()) for k, name in enumerate(CHAR_CLASSES)}
    direct = _direct({n: torch.cat(v) for n, v in arrays.items()}, labels, list(CHAR_CLASSES))
    assert report["tokens"] == len(TEXT)
    _check(report, ("lm", 0, "forward"), direct, counts)
    assert any(u["selective_for"] for u in report["units"])


def test_char_classes_by_hand():
    text = 'AB: "x (y)"\nz'
    rows = char_classes(text)
    on = {
        name: "".join(ch for ch, row in zip(text, rows, strict=True) if row[k]) for k, name in enumerate(CHAR_CLASSES)
    }
    assert on["letter"] == "ABxyz" and on["upper case"] == "AB"
    assert on["space"] == "  " and on["newline"] == "\n"
    assert on["punctuation"] == ':"()"'
    assert on["inside quotes"] == 'x (y)"'  # after an odd number of quotes: the closing one counts
    assert on["inside brackets"] == "y)"
    assert on["speaker line"] == ""  # the first line ends in '"', not ':'
    assert on["line position 0-9"] == 'AB: "x (y)' + "z" and on["line position 10-19"] == '"\n'
    assert char_classes("ROMEO:\nHi")[:, CHAR_CLASSES.index("speaker line")].tolist() == [True] * 7 + [False] * 2


def test_cohens_d_from_sums_matches_the_textbook_formula():
    torch.manual_seed(0)
    a, b = torch.randn(30, 4).double() + 1.5, torch.randn(50, 4).double()
    d = cohens_d(30, a.sum(0), (a * a).sum(0), 50, b.sum(0), (b * b).sum(0))
    assert torch.allclose(d, pooled_d(a, b), atol=1e-9)
    assert (d > 0).all()
    assert cohens_d(1, a[:1].sum(0), (a[:1] ** 2).sum(0), 50, b.sum(0), (b * b).sum(0)).abs().sum() == 0  # too few


def test_an_empty_corpus_is_an_error(tiny_tagger, tmp_path):
    empty = tmp_path / "empty.conllu"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="no tokens"):
        collect(TaggerCorpus(Predictor.load(tiny_tagger), empty))


def _write(text: str):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "text.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_ensemble_traces_every_member_as_inspect_names_it(sample, tmp_path):
    from lstmtag.models import ensemble, load_tagger
    from lstmtag.train import train_tagger
    from tests.conftest import tiny_config

    paths = []
    for seed in (1, 2):
        paths.append(tmp_path / f"m{seed}.safetensors")
        train_tagger(sample[:6], sample[:2], tiny_config("train.epochs=1", f"train.seed={seed}"), paths[-1])
    predictor = Predictor(ensemble([load_tagger(p) for p in paths], [str(p) for p in paths]))
    corpus = TaggerCorpus(predictor, DEV, batch_size=5)
    report = collect(corpus).to_json(top=50, min_count=1)
    words = load_labelled(DEV, "conllu", ["upos"])[0].words
    keys = [(t.module, t.layer, t.direction) for t in predictor.inspect(words).layers]
    assert corpus.modules == ["members.0.encoder", "members.1.encoder"]
    assert list(dict.fromkeys((u["module"], u["layer"], u["direction"]) for u in report["units"])) == keys
    first, second = ([u["h_mean"] for u in report["units"] if u["module"] == name] for name in corpus.modules)
    assert first != second  # two members, two sets of statistics
