from pathlib import Path

import pytest

from lstmtag.config import load_config
from lstmtag.data import load_labelled

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EWT = SHARED / "ud" / "en_ewt"

TINY = [
    "model.word_dim=16",
    "model.char_dim=8",
    "model.char_hidden=8",
    "model.hidden_size=24",
    "model.num_layers=2",
    "model.dropout=0.0",
    "model.word_dropout=0.0",
    "train.ema=0.0",
    "train.lr=0.02",
    "train.batch_size=8",
    "train.threads=1",
]


def tiny_config(*overrides: str):
    return load_config(None, [*TINY, *overrides])


@pytest.fixture(scope="session")
def sample():
    return load_labelled(DATA / "ewt_sample.conllu", "conllu", ["upos", "xpos"])


@pytest.fixture(scope="session")
def dev_sample():
    return load_labelled(DATA / "ewt_dev_sample.conllu", "conllu", ["upos", "xpos"])


@pytest.fixture(scope="session")
def tiny_tagger(sample, tmp_path_factory):
    """A tagger trained for one epoch on a few sentences: for tests of loading, input and output."""
    from lstmtag.train import train_tagger

    out = tmp_path_factory.mktemp("tiny") / "tagger.safetensors"
    train_tagger(sample[:8], sample[:2], tiny_config("train.epochs=1"), out)
    return out


def assert_batched_equals_alone(predictor, sentences):
    """Tagging ``sentences`` together gives each one's tags exactly, and its probabilities to 1e-5."""
    together = predictor.predict(sentences)
    for sentence, tagged in zip(sentences, together, strict=True):
        (alone,) = predictor.predict([sentence])
        assert alone.tags == tagged.tags
        for name in alone.probs:
            assert alone.probs[name] == pytest.approx(tagged.probs[name], abs=1e-5)


def train_tiny_segmenter(data, out: Path):
    """A segmenter overfitted to a few sentences: one training window per step, many steps."""
    from lstmtag.segmenter_train import train_segmenter

    config = tiny_config(
        "model.kind=segmenter",
        "model.char_dim=16",
        "model.hidden_size=32",
        "model.num_layers=1",
        "train.batch_size=1",
        "train.epochs=100",
        "train.patience=100",
        "train.lr=0.02",
    )
    return out, train_segmenter(data, data, config, out)


@pytest.fixture(scope="session")
def tiny_segmenter(sample, tmp_path_factory):
    """A segmenter overfitted to 8 sentences (its file, and the training result)."""
    return train_tiny_segmenter(sample[:8], tmp_path_factory.mktemp("segmenter") / "seg.safetensors")


UD_COLUMNS = ["upos", "xpos", "feats", "lemma"]


@pytest.fixture(scope="session")
def ud_sample():
    """The sample with every column a full UD tagger predicts."""
    return load_labelled(DATA / "ewt_sample.conllu", "conllu", UD_COLUMNS)


@pytest.fixture(scope="session")
def ud_tagger(ud_sample, tmp_path_factory):
    """A tagger with UPOS, XPOS, FEATS and lemma heads that has memorised 8 sentences (its file).

    ``ud_sample[5]`` ("The third was being run by ...") gets its gold lemmas and features back.
    """
    from lstmtag.train import train_tagger

    out = tmp_path_factory.mktemp("ud") / "ud.safetensors"
    config = tiny_config("train.epochs=30", "train.patience=30", "data.columns=" + ",".join(UD_COLUMNS))
    train_tagger(ud_sample[:8], ud_sample[:8], config, out)
    return out


def multiword_segment(text: str):
    """The rule tokenizer, but ``dont`` is one multiword token of the words ``do`` and ``n't``.

    A stand-in for a trained segmenter, so views of multiword tokens can be checked exactly.
    """
    from lstmtag.segment import Token, rule_segment

    return [
        [Token(t.text, t.start, t.end, t.space_after, ("do", "n't") if t.text == "dont" else ()) for t in sentence]
        for sentence in rule_segment(text)
    ]


@pytest.fixture(scope="session")
def feats_sample():
    """The sample with its FEATS column."""
    return load_labelled(DATA / "ewt_sample.conllu", "conllu", ["upos", "xpos", "feats"])


def train_feats_tagger(data, out: Path, heads: str, *overrides: str) -> Path:
    """A tagger of UPOS, XPOS and FEATS with the FEATS heads ``heads`` (``data.feats_heads``), overfitted to ``data``."""
    from lstmtag.train import train_tagger

    config = tiny_config(
        "data.columns=upos,xpos,feats",
        f"data.feats_heads={heads}",
        "train.epochs=60",
        "train.patience=60",
        "train.seed=3",
        *overrides,
    )
    train_tagger(data, data, config, out)
    return out


@pytest.fixture(scope="session")
def both_feats_tagger(feats_sample, tmp_path_factory):
    """A tagger overfitted to 8 sentences with both FEATS heads on one encoder (the whole string fills FEATS)."""
    return train_feats_tagger(
        feats_sample[:8], tmp_path_factory.mktemp("feats") / "both.safetensors", "whole,per_feature"
    )


@pytest.fixture(scope="session")
def per_feature_tagger(feats_sample, tmp_path_factory):
    """A tagger overfitted to 8 sentences whose FEATS come from per-feature heads alone."""
    folder = tmp_path_factory.mktemp("feats")
    return train_feats_tagger(feats_sample[:8], folder / "per_feature.safetensors", "per_feature")
