"""Issue #13: bad input ends in one clear line (file:line or request field) and exit 2, nothing lost."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file
from typer.testing import CliRunner

import lstmtag
from lstmtag import checkpoint
from lstmtag.checkpoint import ModelFileError
from lstmtag.cli import app
from lstmtag.config import load_config
from lstmtag.data import DataError, atomic_writer, read_conllu, read_jsonl, read_text, text_chunks
from lstmtag.limits import MAX_LINE_BYTES, MAX_TOKEN_CHARS, check_sentence, json_depth
from lstmtag.lm_train import train_lm
from tests.conftest import DATA

runner = CliRunner()
SAMPLE = DATA / "ewt_sample.conllu"
LM_TINY = ["lm.embed_dim=8", "lm.hidden_size=8", "lm.num_layers=1", "lm.batch_size=2", "lm.seq_len=8", "lm.epochs=1"]


@pytest.fixture(scope="module")
def tagger(tiny_tagger):
    return tiny_tagger


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("hardlm") / "lm.safetensors"
    train_lm("the cat sat on the mat. " * 20, load_config(None, LM_TINY), out)
    return out


def fails_cleanly(args, expected):
    """Exit 2, one error line holding ``expected``, no traceback."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert expected in result.output, result.output
    return result


# --- readers ---------------------------------------------------------------------------------------


def test_deep_json_line_is_a_data_error(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(DataError, match=r"deep.jsonl:1: JSON nested deeper than 20"):
        list(read_jsonl(path))


def test_long_token_and_line_are_refused_at_their_line(tmp_path):
    conllu = tmp_path / "long.conllu"
    conllu.write_text("1\tok\t_\t_\t_\t_\t_\t_\t_\t_\n2\t" + "x" * 900_000 + "\t_\t_\t_\t_\t_\t_\t_\t_\n")
    started = time.perf_counter()
    with pytest.raises(DataError, match=rf"long.conllu:2: token of 900000 characters; at most {MAX_TOKEN_CHARS}"):
        list(read_conllu(conllu))
    assert time.perf_counter() - started < 5
    huge = tmp_path / "huge.jsonl"
    huge.write_text(json.dumps({"tokens": ["a"] * (MAX_LINE_BYTES // 4)}) + "\n")
    with pytest.raises(DataError, match=r"huge.jsonl:1: line longer than"):
        list(read_jsonl(huge))
    many = tmp_path / "many.txt"
    many.write_text("ok\n" + "a " * 1500 + "\n")
    with pytest.raises(DataError, match=r"many.txt:2: 1500 tokens; at most 1000"):
        list(read_text(many))


def test_lone_surrogate_and_bad_tokens_in_jsonl_name_the_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"tokens": ["ok"]}\n{"tokens": ["a", "\\ud800"]}\n')
    with pytest.raises(DataError, match=r"s.jsonl:2: token 2: token holds a lone surrogate"):
        list(read_jsonl(path))


def test_bom_is_read_and_unicode_digits_are_not_ids(tmp_path):
    path = tmp_path / "bom.conllu"
    path.write_bytes(b"\xef\xbb\xbf" + SAMPLE.read_bytes())
    assert len(list(read_conllu(path))) == len(list(read_conllu(SAMPLE)))
    for bad in ("\u00b2", "\u0661"):
        other = tmp_path / "digits.conllu"
        other.write_text(f"{bad}\tword\t_\t_\t_\t_\t_\t_\t_\t_\n", encoding="utf-8")
        with pytest.raises(DataError, match=r"digits.conllu:1: ID must be an integer"):
            list(read_conllu(other))


def test_directory_is_not_called_missing(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        list(read_text(tmp_path))


def test_text_chunks_stop_at_once_on_binary_input(tmp_path):
    path = tmp_path / "bin"
    path.write_bytes(b"line one\nline two\n" + b"\x00" * 5_000_000)
    with pytest.raises(DataError, match=r"bin:3: looks like a binary file"):
        list(text_chunks(path))
    path.write_bytes("é".encode() * 40_000 + b"\n\xff")
    with pytest.raises(DataError, match=r"bin:2: not valid UTF-8"):
        list(text_chunks(path, chunk_bytes=7))
    path.write_text("a\nb")
    assert "".join(text_chunks(path, chunk_bytes=1)) == "a\nb" and list(text_chunks(path, lines=True)) == ["a\n", "b"]


def test_python_api_enforces_the_limits(tagger):
    predictor = lstmtag.load(tagger)
    with pytest.raises(ValueError, match="at most 1000"):
        predictor.tag(["a"] * 1001)
    with pytest.raises(ValueError, match="token 0: token of 2000 characters"):
        predictor.tag(["x" * 2000])
    with pytest.raises(ValueError, match="lone surrogate"):
        predictor.tag(["\ud800"])
    with pytest.raises(ValueError, match="at most 512"):
        predictor.inspect(["a"] * 600)


def test_limits_helpers():
    assert json_depth('{"a": "[[[[", "b": [[1], {"c": "\\"]"}]}') == 3
    assert check_sentence(["a", "b"]) == ["a", "b"]
    with pytest.raises(ValueError, match=r"sentence 3, token 1: empty token"):
        check_sentence(["a", " "], "sentence 3")


# --- command line ----------------------------------------------------------------------------------


def test_tag_input_errors(tagger, tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "\n")
    fails_cleanly(["tag", "-m", tagger, "--input", "jsonl", deep], "deep.jsonl:1: JSON nested deeper")
    fails_cleanly(["tag", "-m", tagger, tmp_path], "is a directory")
    bracket = tmp_path / "b.jsonl"
    bracket.write_text('{"tokens": []}\n')
    fails_cleanly(["tag", "-m", tagger, "--input", "jsonl", bracket], "b.jsonl:1: no tokens")
    bracket.write_text('{"tokens": 5}\n')
    fails_cleanly(["tag", "-m", tagger, "--input", "jsonl", bracket], 'expected {"tokens": [non-empty strings, ...]}')
    fails_cleanly(["tag", "-m", tagger, "--input", "jsonl", tmp_path / "none.jsonl"], "cannot open")


def test_errors_print_brackets_literally(tagger):
    fails_cleanly(["train", "--train", SAMPLE, "--dev", SAMPLE, "--out", "x", "--set", "data.nonsense=1"], "in [data]")


def test_table_to_a_file_and_nothing_written_keeps_the_old_file(tagger, tmp_path):
    out = tmp_path / "table.txt"
    result = runner.invoke(app, ["tag", "-m", str(tagger), str(SAMPLE), "--output", "table", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "UPOS" in out.read_text() and len(out.read_text().splitlines()) > 20
    empty = tmp_path / "empty.conllu"
    empty.write_text("\n\n")
    fails_cleanly(["tag", "-m", tagger, empty, "--out", out], "no sentences to tag; nothing written")
    assert "UPOS" in out.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_config_errors(tmp_path):
    common = ["train", "--train", SAMPLE, "--dev", SAMPLE, "--out", tmp_path / "m.safetensors"]
    fails_cleanly([*common, "--set", "data.columns="], "data.columns needs at least one column")
    fails_cleanly([*common, "--config", tmp_path], "is a directory, not a TOML file")
    fails_cleanly([*common, "--set", "train.batch_size=0"], "train.batch_size must be at least 1")
    fails_cleanly([*common, "--set", "train.epochs=0"], "train.epochs must be at least 1")
    fails_cleanly([*common, "--set", "train.lr=nan"], "train.lr must be a finite number")
    assert not (tmp_path / "m.safetensors").exists()


def test_inspect_limits(tagger, tmp_path):
    fails_cleanly(["inspect", "-m", tagger, "a " * 600], "600 tokens; at most 512")
    fails_cleanly(["inspect", "-m", tagger, "The cow", "--plot", tmp_path / "xnoext"], "name a .png, .svg or .pdf")
    assert list(tmp_path.iterdir()) == []


def test_lm_arguments_and_inputs(language_model, tmp_path):
    fails_cleanly(["lm", "generate", "-m", language_model, "--temperature", "nan"], "--temperature must be a finite")
    fails_cleanly(["lm", "generate", "-m", language_model, "--length", "-5"], "--length must be between 0")
    fails_cleanly(["lm", "score", "-m", language_model, tmp_path], "is a directory")
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x00\x01" * 1_000_000)
    started = time.perf_counter()
    fails_cleanly(["lm", "score", "-m", language_model, binary], "b.bin:1: looks like a binary file")
    assert time.perf_counter() - started < 5
    with pytest.raises(ValueError, match="temperature"):
        lstmtag.load(language_model).generate("the", 5, temperature=float("inf"))
    with pytest.raises(ValueError, match="inspect takes 1 to 512 tokens, got 600"):
        lstmtag.load(language_model).inspect("a" * 600)
    fails_cleanly(["tag", "-m", tmp_path, SAMPLE], "is a directory, not a model file")


def test_lm_train_reports_only_the_milestones_it_reached(tmp_path):
    result = train_lm("the cat sat on the mat. " * 20, load_config(None, LM_TINY), tmp_path / "lm.safetensors")
    assert result.milestones == {}  # a run of seconds has no "best by 5 min"


# --- output files ----------------------------------------------------------------------------------


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    target = tmp_path / "out.txt"
    stale = tmp_path / ".out.txt.999999999.abcd.tmp"  # no such process
    live = tmp_path / f".out.txt.{os.getpid()}.efgh.tmp"  # a live writer's: kept
    stale.write_text("x")
    live.write_text("y")
    with atomic_writer(target) as handle:
        handle.write("done")
    assert target.read_text() == "done" and not stale.exists() and live.exists()


def test_sigterm_during_tag_out_leaves_no_temporary_file(tagger, tmp_path):
    big = tmp_path / "big.conllu"
    big.write_text(SAMPLE.read_text(encoding="utf-8") * 400, encoding="utf-8")
    out = tmp_path / "tagged.conllu"
    out.write_text("old")
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(lstmtag.__file__).parents[1])}
    process = subprocess.Popen(
        [sys.executable, "-m", "lstmtag", "tag", "-m", str(tagger), str(big), "--out", str(out)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".tagged.conllu.*.tmp")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".tagged.conllu.*.tmp")), "the writer never started"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert b"Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.conllu", "tagged.conllu"]
    assert out.read_text() == "old"


# --- model files -----------------------------------------------------------------------------------


def _rewrite(source: Path, target: Path, change) -> Path:
    with safe_open(str(source), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    change(metadata, tensors)
    save_file(tensors, str(target), metadata=metadata)
    return target


def _set(section, key, value):
    def change(metadata, tensors):
        config = json.loads(metadata["config"])
        config[section][key] = value
        metadata["config"] = json.dumps(config)

    return change


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("model", "hidden_size", 2000, "hidden_size = 2000"),
        ("model", "num_layers", 500, "num_layers = 500"),
        ("model", "word_dim", 5000, "word_dim = 5000"),
        ("train", "batch_size", 0, "batch_size must be at least 1"),
    ],
)
def test_doctored_sizes_are_refused_before_building(tagger, tmp_path, section, key, value, message):
    path = _rewrite(tagger, tmp_path / "bad.safetensors", _set(section, key, value))
    with pytest.raises(ModelFileError, match=message):
        lstmtag.load(path)


def test_doctored_vocabulary_and_language_model(tagger, language_model, tmp_path):
    def more_words(metadata, tensors):
        vocabs = json.loads(metadata["vocabs"])
        vocabs["words"] += [f"w{i}" for i in range(100_000)]
        metadata["vocabs"] = json.dumps(vocabs)

    with pytest.raises(ModelFileError, match="words vocabulary has"):
        lstmtag.load(_rewrite(tagger, tmp_path / "v.safetensors", more_words))
    with pytest.raises(ModelFileError, match="hidden_size = 4096"):
        lstmtag.load(_rewrite(language_model, tmp_path / "lm.safetensors", _set("lm", "hidden_size", 4096)))
    deep = _rewrite(tagger, tmp_path / "d.safetensors", lambda m, t: m.update(config="[" * 100_000))
    with pytest.raises(ModelFileError, match="not a readable lstmtag model"):
        checkpoint.read(deep)
