"""Beyond parts of speech: a BIO chunk column in a CoNLL-style file, scored by exact span match."""

from lstmtag.data import load_labelled
from lstmtag.predict import Predictor
from lstmtag.train import train_tagger
from tests.conftest import DATA, tiny_config


def test_bio_chunks_train_and_report_spans(tmp_path):
    data = load_labelled(DATA / "chunks_sample.txt", "conll", ["2"])
    config = tiny_config(
        "data.format=conll", "data.columns=2", "model.head=crf", "train.epochs=40", "train.patience=40"
    )
    out = tmp_path / "chunks.safetensors"
    train_tagger(data[:20], data[:20], config, out)
    predictor = Predictor.load(out)
    report = predictor.evaluate(data[:20])["columns"]["2"]
    assert report["spans"]["f1"] > 0.9
    assert report["spans"]["gold_spans"] > 50
    # The CRF's BIO constraints: no I-NP ever follows O or starts a sentence.
    for tagged in predictor.predict(data[20:]):
        tags = ["O", *tagged.tags["2"]]
        assert all(not (b == "I-NP" and a == "O") for a, b in zip(tags, tags[1:], strict=False))
