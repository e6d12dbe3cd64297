import json

import pytest

from lstmtag.data import (
    DataError,
    atomic_writer,
    format_conllu,
    format_jsonl,
    format_tsv,
    load_labelled,
    read_conll,
    read_conllu,
    read_jsonl,
    read_text,
)
from tests.conftest import DATA


def test_reads_real_ewt_with_multiword_tokens_and_empty_nodes(sample):
    assert len(sample) == 48
    with_ranges = [
        s for s in sample if any(line.split("\t")[0].count("-") for line in s.lines if not line.startswith("#"))
    ]
    assert with_ranges, "fixture has multiword tokens"
    for sentence in sample:
        assert len(sentence.words) == len(sentence.labels["upos"]) == len(sentence.labels["xpos"])
    # Multiword ranges and empty nodes are not words.
    for sentence in with_ranges:
        ids = [line.split("\t")[0] for i, line in enumerate(sentence.lines) if i in sentence.word_lines]
        assert all(i.isdigit() for i in ids)


def test_conllu_round_trip_is_byte_identical(sample):
    text = "".join(format_conllu(s, s.labels) for s in sample)
    assert text == (DATA / "ewt_sample.conllu").read_text(encoding="utf-8")


def test_predicted_columns_replace_only_their_cells(sample):
    sentence = next(s for s in sample if len(s.lines) > len(s.word_lines) + 3)
    written = format_conllu(sentence, {"upos": ["X"] * len(sentence.words)}).rstrip("\n").split("\n")
    for original, new in zip(sentence.lines, written, strict=True):
        if original.startswith("#") or not original.split("\t")[0].isdigit():
            assert new == original
        else:
            a, b = original.split("\t"), new.split("\t")
            assert b[3] == "X" and a[:3] == b[:3] and a[4:] == b[4:]


def test_other_formats(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("The cow jumped\n\n  Hello   world  \n", encoding="utf-8")
    assert [s.words for s in read_text(text)] == [["The", "cow", "jumped"], ["Hello", "world"]]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"tokens": ["A", "b"]}\n', encoding="utf-8")
    assert [s.words for s in read_jsonl(jsonl)] == [["A", "b"]]
    chunks = list(read_conll(DATA / "chunks_sample.txt", ["2"]))
    assert chunks[0].labels["2"][:3] == ["B-NP", "O", "B-NP"]
    sentence = chunks[0]
    assert format_tsv(sentence, {"2": sentence.labels["2"]}, {"2": [1.0] * len(sentence.words)}).startswith(
        "Al\tB-NP\t1.0000"
    )
    assert (
        json.loads(format_jsonl(sentence, {"2": ["O"] * len(sentence.words)}, {"2": [0.5] * len(sentence.words)}))[
            "2_prob"
        ][0]
        == 0.5
    )


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"1\tThe\tthe\tDET\tDT\t_\t0\troot\t_\n", 1, "10 tab-separated columns"),
        (b"# c\n1\tA\ta\tX\tX\t_\t0\troot\t_\t_\nx\tB\tb\tX\tX\t_\t1\tdep\t_\t_\n", 3, "ID must be an integer"),
        (b"1\tA\ta\tX\tX\t_\t0\troot\t_\t_\n2\t\xff\xfe\tb\tX\tX\t_\t1\tdep\t_\t_\n", 2, "UTF-8"),
    ],
)
def test_malformed_conllu_names_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "bad.conllu"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as error:
        list(read_conllu(path, ["upos"]))
    assert error.value.line == line and str(path) in str(error.value)


def test_empty_training_file_is_an_error(tmp_path):
    path = tmp_path / "empty.conllu"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="no sentences"):
        load_labelled(path, "conllu", ["upos"])


def test_bad_jsonl_names_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"tokens": ["a"]}\n{"tokens": 3}\n', encoding="utf-8")
    with pytest.raises(DataError, match=":2:"):
        list(read_jsonl(path))


def test_atomic_writer_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("partial")
        raise RuntimeError("killed")
    assert target.read_text(encoding="utf-8") == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_reader_agrees_with_the_conllu_library(sample):
    conllu = pytest.importorskip("conllu")
    text = (DATA / "ewt_sample.conllu").read_text(encoding="utf-8")
    parsed = conllu.parse(text)
    assert len(parsed) == len(sample)
    for ours, theirs in zip(sample, parsed, strict=True):
        words = [t for t in theirs if isinstance(t["id"], int)]
        assert ours.words == [t["form"] for t in words]
        assert ours.labels["upos"] == [t["upos"] for t in words]
        assert ours.labels["xpos"] == [t["xpos"] or "_" for t in words]
