"""Property-based tests: whatever the input, only the project's documented error types escape.

Readers raise ``DataError``; ``--set`` and config files ``ValueError``; model files ``ModelFileError``;
the service answers JSON with a 2xx or 4xx status. Few examples each, so the quick suite stays quick.
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

import lstmtag
from lstmtag.checkpoint import ModelFileError
from lstmtag.config import load_config
from lstmtag.data import DataError, format_conllu, read_sentences, text_chunks
from lstmtag.predict import Predictor
from lstmtag.serve import Limits, create_app

# The quick suite runs the same 40 examples each time (derandomized: no flaky CI); set
# LSTMTAG_FUZZ_EXAMPLES=5000 for a longer, random hunt.
HUNT = "LSTMTAG_FUZZ_EXAMPLES" in os.environ
FEW = settings(
    max_examples=int(os.environ.get("LSTMTAG_FUZZ_EXAMPLES", "40")),
    derandomize=not HUNT,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Pieces of every input format, so random files are often nearly valid (and reach deeper checks).
PIECES = [
    "1", "2", "10", "0", "1-2", "3.1", "\u00b2", "\t", "\n", "\n\n", " ", "#", "_", "word", "NOUN", "\ufeff",
    "-DOCSTART-", '{"tokens": ', "[", "]", '"a"', ",", "{", "}", '"\\ud800"', "\r\n", "\u00e9", "\x00", '"', "\\",
    "1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n", "x" * 1200,
]  # fmt: skip
CONTENT = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(PIECES), max_size=60).map(lambda p: "".join(p).encode("utf-8", "surrogatepass")),
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["\ud800", "", " ", "x" * 1500, "The", "upos"]),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def tiny_model(tiny_tagger):
    return tiny_tagger


@FEW
@given(content=CONTENT, fmt=st.sampled_from(["conllu", "conll", "text", "jsonl"]))
def test_readers_raise_only_data_errors(content, fmt):
    columns = {"conllu": ["upos", "xpos"], "conll": ["1"]}.get(fmt, [])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input"
        path.write_bytes(content)
        try:
            for sentence in read_sentences(path, fmt, columns):
                assert sentence.words and all(isinstance(w, str) and w.strip() for w in sentence.words)
                written = fmt if sentence.lines else "conllu"
                column = "1" if written == "conll" else "upos"
                format_conllu(sentence, {column: ["X"] * len(sentence.words)}, written)
        except DataError:
            pass
        with contextlib.suppress(DataError):
            "".join(text_chunks(path, chunk_bytes=7, lines=fmt == "text"))


SETTING = st.sampled_from(["data.columns", "data.format", "train.batch_size", "train.lr", "model.hidden_size", "x.y"])


@FEW
@given(text=st.one_of(st.text(max_size=40), st.tuples(SETTING, st.text(max_size=20)).map("=".join)))
def test_set_parser_raises_only_value_errors(text):
    with contextlib.suppress(ValueError):
        load_config(None, [text])


def _mutated(source: Path, target: Path, data, *, bytes_level: bool) -> None:
    raw = bytearray(source.read_bytes())
    if bytes_level:  # flip bytes in the length field and the JSON header
        header_end = 8 + int.from_bytes(raw[:8], "little")
        for position, value in data.draw(
            st.lists(st.tuples(st.integers(0, header_end), st.integers(0, 255)), max_size=4)
        ):
            raw[position] = value
        target.write_bytes(bytes(raw))
        return
    with safe_open(str(source), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    field = data.draw(st.sampled_from(["config", "vocabs", "info", "kind", "format_version"]))
    if field in ("config", "vocabs", "info"):
        values = json.loads(metadata[field])
        section = data.draw(st.sampled_from(sorted(values) or ["x"]))
        if isinstance(values.get(section), dict) and values[section] and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(values[section])))
            values[section][key] = data.draw(JSON)
        else:
            values[section] = data.draw(JSON)
        metadata[field] = json.dumps(values)
    else:
        metadata[field] = data.draw(st.text(max_size=6))
    save_file(tensors, str(target), metadata=metadata)


@FEW
@given(data=st.data(), bytes_level=st.booleans())
def test_model_loader_raises_only_model_file_errors(tiny_model, data, bytes_level):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutated.safetensors"
        _mutated(tiny_model, path, data, bytes_level=bytes_level)
        try:
            loaded = lstmtag.load(path)
        except ModelFileError:
            return
        loaded.tag(["The", "cow"])  # whatever loads, tags


@pytest.fixture(scope="module")
def client(tiny_model):
    limits = Limits(max_body_bytes=20_000, max_sentences=5, max_tokens=50, max_wait_ms=1)
    with TestClient(create_app({"tiny": Predictor.load(tiny_model)}, limits), raise_server_exceptions=False) as test:
        yield test


REQUEST = st.dictionaries(
    st.sampled_from(["sentences", "text", "tokens", "model", "other"]),
    JSON | st.lists(st.lists(st.sampled_from(["The", "cow", "", "\ud800", "x" * 1500]), max_size=3), max_size=3),
    max_size=3,
)


@FEW
@given(body=st.one_of(REQUEST, JSON), route=st.sampled_from(["/tag", "/inspect"]))
def test_service_answers_json_2xx_or_4xx(client, body, route):
    response = client.post(route, content=json.dumps(body), headers={"content-type": "application/json"})
    assert 200 <= response.status_code < 500, response.text
    answer = response.json()
    assert response.status_code == 200 or "error" in answer


RAW_PIECES = [
    "Hello", "world", "don't", "U.S.", ".", "!", "?", ",", " ", "  ", "\n", "\n\n", "\t", "\r\n", "\x07", "\x00",
    "\u200b", "\u00a0", "\U0001f600", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u4e2d\u6587\u5b57",
    "\u041f\u0440\u0438\u0432\u0435\u0442", "\u0645\u0631\u062d\u0628\u0627", "x" * 1200, "ab" * 700, "\ufeff", "\ud800",
]  # fmt: skip
RAW = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(RAW_PIECES), max_size=40).map(lambda p: "".join(p).encode("utf-8", "surrogatepass")),
)


@FEW
@given(content=RAW, trained=st.booleans())
def test_raw_reader_accounts_for_every_character_or_raises_a_data_error(tiny_segmenter, content, trained):
    from lstmtag import models, ud_eval
    from lstmtag.segment import DEFAULT, clean

    segmenter = models.load_segmenter(tiny_segmenter[0]) if trained else DEFAULT
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.txt"
        path.write_bytes(content)
        try:
            sentences = list(read_sentences(path, "raw", segmenter=segmenter))
        except DataError:
            return
    text = clean(content.decode("utf-8").removeprefix("\ufeff"))
    filled = [format_conllu(s, {"upos": ["X"] * len(s.words)}) for s in sentences]
    for sentence, written in zip(sentences, filled, strict=True):
        lines = written.rstrip("\n").split("\n")
        assert all(len(line.split("\t")) == 10 for line in lines if not line.startswith("#"))
        assert 0 < len(sentence.words) <= 1000 and all(len(w) <= 1000 for w in sentence.words)
    characters = ud_eval.document(sentences).characters
    assert "".join(characters) == "".join(ch for ch in text if not ch.isspace())
