import pytest
import torch

import lstmtag
from lstmtag import checkpoint
from lstmtag.config import load_config
from lstmtag.data import DataError
from lstmtag.language_model import LanguageModel
from lstmtag.lm import LSTMLanguageModel, tokenize
from lstmtag.lm_train import batchify, read_text_file, train_lm

TEXT = "the cat sat on the mat. the dog sat on the log. " * 20
TINY = [
    "lm.embed_dim=16",
    "lm.hidden_size=32",
    "lm.num_layers=2",
    "lm.dropout=0.0",
    "lm.batch_size=4",
    "lm.seq_len=16",
    "lm.lr=0.01",
    "lm.eval_every=25",
    "lm.threads=1",
    "lm.valid_fraction=0.2",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "lm.safetensors"
    result = train_lm(TEXT, load_config(None, [*TINY, "lm.epochs=100"]), out)
    return out, result


def test_overfits_a_tiny_text(trained):
    out, result = trained
    assert result.best_valid_loss < 0.3  # a repetitive text becomes almost certain
    lm = lstmtag.load(out)
    assert isinstance(lm, LanguageModel)
    assert "".join(lm.generate("the cat sat on the ", 3, top_k=1)) == "mat"
    assert "".join(lm.generate("the dog sat on the ", 3, top_k=1)) == "log"  # it remembers which animal


def test_save_load_identical_logits(trained, tmp_path):
    out, _ = trained
    lm = lstmtag.load(out)
    again = tmp_path / "again.safetensors"
    checkpoint.save(again, lm.to_file())
    other = lstmtag.load(again)
    ids = torch.tensor([lm.encode("the dog sat")])
    assert torch.equal(lm.model(ids)[0], other.model(ids)[0])


def test_step_by_step_equals_one_call(trained):
    out, _ = trained
    lm = lstmtag.load(out)
    ids = lm.encode("the cat sat on the mat")
    with torch.no_grad():
        whole, (h_n, c_n) = lm.model(torch.tensor([ids]))
    state = lm.init_state()
    for t, index in enumerate(ids):
        logits, state = lm.step(index, state)
        assert torch.allclose(logits, whole[0, t], atol=1e-6)
    assert torch.allclose(state[0], h_n, atol=1e-6) and torch.allclose(state[1], c_n, atol=1e-6)


def test_scoring_does_not_depend_on_chunk_size(trained):
    out, _ = trained
    lm = lstmtag.load(out)
    text = TEXT[:300]
    at_once = lm.score([text])
    for size in (1, 7, 64):
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        assert lm.score(chunks)["loss"] == pytest.approx(at_once["loss"], abs=1e-5)
    assert at_once["tokens"] == len(text) - 1


def test_sampling_with_a_seed_is_reproducible(trained):
    out, _ = trained
    lm = lstmtag.load(out)
    first = "".join(lm.generate("the", 40, temperature=1.5, seed=7))
    assert first == "".join(lm.generate("the", 40, temperature=1.5, seed=7))
    assert len(first) == 40


def test_prompt_with_unknown_characters_falls_back_to_unk(trained):
    out, _ = trained
    lm = lstmtag.load(out)
    assert lm.encode("Ω")[0] == lm.vocab.unk_id
    assert len("".join(lm.generate("Ωthe", 5, seed=1))) == 5


def test_inspect_language_model(trained):
    out, _ = trained
    trace = lstmtag.inspect(lstmtag.load(out), "the cat")
    assert trace.tokens == list("the cat")
    assert [(t.layer, t.direction) for t in trace.layers] == [(0, "forward"), (1, "forward")]
    assert len(trace.tags["next"]) == 7


def test_word_level(tmp_path):
    out = tmp_path / "w.safetensors"
    train_lm(TEXT, load_config(None, [*TINY, "lm.unit=word", "lm.epochs=3", "lm.seq_len=4"]), out)
    lm = lstmtag.load(out)
    assert lm.encode("the zebra")[1] == lm.vocab.unk_id
    assert tokenize("a b\nc", "word") == ["a", "b", "<eos>", "c"]
    assert lm.score(["the cat sat\n", "on the mat\n"])["tokens"] > 0


def test_tied_weights_need_equal_sizes():
    with pytest.raises(ValueError, match="tie_weights"):
        LSTMLanguageModel(load_config(None, ["lm.tie_weights=true", "lm.embed_dim=8", "lm.hidden_size=16"]).lm, 10)
    model = LSTMLanguageModel(load_config(None, ["lm.tie_weights=true", "lm.embed_dim=16", "lm.hidden_size=16"]).lm, 10)
    assert model.decoder.weight is model.embedding.weight


def test_batchify_layout():
    data = batchify(torch.arange(26), 4)
    assert data.tolist()[1] == [6, 7, 8, 9, 10, 11]


@pytest.mark.parametrize(
    ("content", "message"), [(b"", "no text"), (b"abc\n\x00\x01", "binary"), (b"ok\n\xff", "UTF-8")]
)
def test_bad_text_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_text_file(path)


def test_resume_after_a_kill_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    # Dropout on, and the kill comes mid-pass (after window 10 of 24 an epoch): the carried (h, c),
    # the optimizer and the dropout draws must all continue exactly.
    config = load_config(None, [*TINY, "lm.epochs=2", "lm.dropout=0.3", "lm.batch_size=2", "lm.eval_every=10"])
    straight = tmp_path / "straight.safetensors"
    train_lm(TEXT, config, straight)
    out = tmp_path / "lm.safetensors"

    def kill(progress):
        if progress.event == "eval":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_lm(TEXT, config, out, on_progress=kill)
    saved = checkpoint.read(checkpoint.state_path(out))
    assert saved.info["run"]["step"] == 10
    assert saved.tensors["carried.h"].abs().sum() > 0  # killed mid-pass: the state is not zeros
    result = train_lm(TEXT, config, out, resume=True)
    assert result.steps == 2 * 24
    a = checkpoint.read(checkpoint.state_path(straight)).tensors
    b = checkpoint.read(checkpoint.state_path(out)).tensors
    for name in a:
        if name != "torch_rng":
            assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_reset_fraction_zeroes_the_carried_state(tmp_path, monkeypatch, fraction):
    """lm.reset_fraction = 1 starts every training window from zeros; 0 carries the state along."""
    seen = []
    forward = LSTMLanguageModel.forward

    def spy(self, ids, state=None):
        if self.training:  # None: the zero state
            seen.append(state is None or bool((state[0] == 0).all() and (state[1] == 0).all()))
        return forward(self, ids, state)

    monkeypatch.setattr(LSTMLanguageModel, "forward", spy)
    config = load_config(None, [*TINY, "lm.epochs=1", f"lm.reset_fraction={fraction}"])
    train_lm(TEXT, config, tmp_path / "lm.safetensors")
    assert len(seen) > 3 and seen[0]
    assert all(seen) if fraction == 1.0 else not any(seen[1:])
