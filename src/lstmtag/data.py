"""Readers and writers for CoNLL-U, CoNLL-style columns, plain text and JSON lines.

Readers are generators, so a file of any size streams through in constant memory. The CoNLL-U reader
is written by hand rather than with the ``conllu`` package for two reasons the tagger needs: errors
must name the file and line, and every line the tagger does not change (comments, multiword-token
ranges, empty nodes, other columns) must be written back byte for byte.
"""

from __future__ import annotations

import codecs
import glob
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lstmtag.limits import MAX_JSON_DEPTH, MAX_LINE_BYTES, MAX_SENTENCE_TOKENS, json_depth, sentence_problem
from lstmtag.segment import DEFAULT as DEFAULT_SEGMENTER
from lstmtag.segment import Segmenter

CONLLU_COLUMNS = {"lemma": 2, "upos": 3, "xpos": 4, "feats": 5, "deprel": 7}


class DataError(ValueError):
    """Bad input, with the file and line it came from."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}" if line else f"{source}: {message}")
        self.source = source
        self.line = line


@dataclass
class Sentence:
    """One sentence: its words, gold labels per column, and (for CoNLL-U) its raw lines."""

    words: list[str]
    labels: dict[str, list[str]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # raw lines, without newline
    word_lines: list[int] = field(default_factory=list)  # index in ``lines`` of each word
    source: str = "<input>"
    line: int = 0  # 1-based line number of the sentence's first line


def _decoded_lines(handle: IO[bytes], source: str) -> Iterator[tuple[int, str]]:
    """Numbered lines without their line ends; a UTF-8 byte-order mark at the start is dropped.

    A line is read ``MAX_LINE_BYTES`` at most at a time, so one endless line cannot fill the memory.
    """
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise DataError(source, number, f"line longer than {MAX_LINE_BYTES:,} bytes")
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(source, number, f"not valid UTF-8 ({error.reason} at byte {error.start})") from None
        yield number, text.rstrip("\r\n")


def _check_words(words: list[str], source: str, line: int | list[int]) -> None:
    """Raise a ``DataError`` at the line of the first word that breaks a limit (see ``limits``).

    ``line`` is the sentence's one line (text, JSON lines), or each word's line (CoNLL, CoNLL-U).
    """
    problem = sentence_problem(words)
    if problem is not None:
        position, message = problem
        if isinstance(line, list):
            raise DataError(source, line[position or 0], message)
        raise DataError(source, line, message if position is None else f"token {position + 1}: {message}")


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit alone passes '²' and '١'


@contextmanager
def _open_binary(path: str | Path) -> Iterator[tuple[IO[bytes], str]]:
    if str(path) == "-":
        yield sys.stdin.buffer, "<stdin>"
        return
    if Path(path).is_dir():
        raise DataError(str(path), 0, "is a directory, not a file")
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the ``with`` below; opened apart to word the error
    except OSError as error:
        raise DataError(str(path), 0, f"cannot open: {error.strerror}") from None
    with handle:
        yield handle, str(path)


def _column_index(name: str, fmt: str) -> int:
    if fmt == "conllu":
        if name not in CONLLU_COLUMNS:
            raise ValueError(f"unknown CoNLL-U column {name!r}; choose from {sorted(CONLLU_COLUMNS)}")
        return CONLLU_COLUMNS[name]
    if not _is_number(name) or int(name) == 0:
        raise ValueError(
            f"in the 'conll' format a label column is a 1-based index after the word (e.g. '1'), got {name!r}"
        )
    return int(name)


def read_conllu(path: str | Path, columns: Iterable[str] = ()) -> Iterator[Sentence]:
    """Yield sentences from a CoNLL-U file, checking each line's shape."""
    indices = {name: _column_index(name, "conllu") for name in columns}
    with _open_binary(path) as (handle, source):
        lines: list[str] = []
        start = 0
        for number, text in _decoded_lines(handle, source):
            if text.strip() == "":
                if lines:
                    yield _conllu_sentence(lines, indices, source, start)
                    lines = []
                continue
            if not lines:
                start = number
            if len(lines) >= 4 * MAX_SENTENCE_TOKENS:  # words, ranges, empty nodes and comments together
                raise DataError(source, number, f"sentence over {4 * MAX_SENTENCE_TOKENS} lines")
            lines.append(text)
            if not text.startswith("#"):
                _check_conllu_line(text, source, number)
        if lines:
            yield _conllu_sentence(lines, indices, source, start)


def _check_conllu_line(text: str, source: str, number: int) -> None:
    cells = text.split("\t")
    if len(cells) != 10:
        raise DataError(source, number, f"expected 10 tab-separated columns, found {len(cells)}")
    token_id = cells[0]
    if "-" in token_id:
        parts = token_id.split("-")
    elif "." in token_id:
        parts = token_id.split(".")
    else:
        parts = [token_id]
    if not all(_is_number(p) for p in parts) or len(parts) > 2:
        raise DataError(source, number, f"ID must be an integer, a range (3-4) or a decimal (5.1), got {token_id!r}")
    if cells[1] == "":
        raise DataError(source, number, "empty FORM column")


def _conllu_sentence(lines: list[str], indices: dict[str, int], source: str, start: int) -> Sentence:
    words: list[str] = []
    word_lines: list[int] = []
    labels: dict[str, list[str]] = {name: [] for name in indices}
    for position, text in enumerate(lines):
        if text.startswith("#"):
            continue
        cells = text.split("\t")
        if not _is_number(cells[0]):
            continue  # multiword token range or empty node: carried through unchanged
        words.append(cells[1])
        word_lines.append(position)
        for name, index in indices.items():
            labels[name].append(cells[index])
    if not words:
        raise DataError(source, start, "sentence has no words (only comments, ranges or empty nodes)")
    _check_words(words, source, [start + position for position in word_lines])
    return Sentence(words, labels, lines, word_lines, source, start)


def read_conll(path: str | Path, columns: Iterable[str] = ()) -> Iterator[Sentence]:
    """Yield sentences from whitespace-separated columns (word first), blank lines between sentences."""
    indices = {name: _column_index(name, "conll") for name in columns}
    with _open_binary(path) as (handle, source):
        lines: list[str] = []
        start = 0
        width = 0
        for number, text in _decoded_lines(handle, source):
            if text.strip() == "" or text.startswith("-DOCSTART-"):
                if lines:
                    yield _conll_sentence(lines, indices, source, start)
                    lines = []
                continue
            cells = text.split()
            if not lines:
                start, width = number, len(cells)
            if len(cells) != width:
                raise DataError(
                    source, number, f"expected {width} columns like the sentence's first line, found {len(cells)}"
                )
            if indices and max(indices.values()) >= len(cells):
                raise DataError(
                    source, number, f"column {max(indices.values())} asked for, line has {len(cells)} columns"
                )
            if len(lines) >= MAX_SENTENCE_TOKENS:
                raise DataError(source, number, f"sentence over {MAX_SENTENCE_TOKENS} tokens")
            lines.append(text)
        if lines:
            yield _conll_sentence(lines, indices, source, start)


def _conll_sentence(lines: list[str], indices: dict[str, int], source: str, start: int) -> Sentence:
    rows = [text.split() for text in lines]
    labels = {name: [row[index] for row in rows] for name, index in indices.items()}
    words = [row[0] for row in rows]
    _check_words(words, source, list(range(start, start + len(lines))))
    return Sentence(words, labels, lines, list(range(len(lines))), source, start)


def read_text(path: str | Path) -> Iterator[Sentence]:
    """Pre-tokenized text: one sentence per line, tokens split on whitespace; blank lines skipped."""
    with _open_binary(path) as (handle, source):
        for number, text in _decoded_lines(handle, source):
            words = text.split()
            if words:
                _check_words(words, source, number)
                yield Sentence(words, source=source, line=number)


def read_jsonl(path: str | Path) -> Iterator[Sentence]:
    """JSON lines, each ``{"tokens": ["The", "cow"]}``; blank lines skipped."""
    with _open_binary(path) as (handle, source):
        for number, text in _decoded_lines(handle, source):
            if not text.strip():
                continue
            if json_depth(text) > MAX_JSON_DEPTH:
                raise DataError(source, number, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            try:
                record = json.loads(text)
            except (json.JSONDecodeError, RecursionError) as error:
                raise DataError(source, number, f"not valid JSON: {getattr(error, 'msg', error)}") from None
            tokens = record.get("tokens") if isinstance(record, dict) else None
            if not isinstance(tokens, list):
                raise DataError(source, number, 'expected {"tokens": [non-empty strings, ...]}')
            _check_words(tokens, source, number)
            yield Sentence(tokens, source=source, line=number)


def text_chunks(path: str | Path, *, chunk_bytes: int = 65536, lines: bool = False) -> Iterator[str]:
    """Stream a UTF-8 text file (or ``-``) as text chunks: ``chunk_bytes`` at a time, or line by line.

    Lines keep their line ends. Broken UTF-8 or a NUL byte (a binary file) is a ``DataError`` naming
    the line, raised as soon as that chunk is read.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    with _open_binary(path) as (handle, source):
        line = 1
        while raw := (handle.readline(MAX_LINE_BYTES + 1) if lines else handle.read(chunk_bytes)):
            if lines and len(raw) > MAX_LINE_BYTES:
                raise DataError(source, line, f"line longer than {MAX_LINE_BYTES:,} bytes")
            if b"\x00" in raw:
                at = line + raw[: raw.index(b"\x00")].count(b"\n")
                raise DataError(source, at, "looks like a binary file (NUL byte); expected UTF-8 text")
            try:
                text = decoder.decode(raw)
            except UnicodeDecodeError as error:
                at = line + raw[: max(error.start, 0)].count(b"\n")
                raise DataError(source, at, f"not valid UTF-8 ({error.reason})") from None
            line += raw.count(b"\n")
            if text:
                yield text
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise DataError(source, line, f"not valid UTF-8 ({error.reason} at the end)") from None


def read_sentences(
    path: str | Path, fmt: str, columns: Iterable[str] = (), *, segmenter: Segmenter = DEFAULT_SEGMENTER
) -> Iterator[Sentence]:
    """Dispatch on ``fmt``: conllu, conll, text (one pre-tokenized sentence a line), raw or jsonl."""
    readers = {"conllu": read_conllu, "conll": read_conll}
    if fmt in readers:
        return readers[fmt](path, columns)
    if fmt == "text":
        return read_text(path)
    if fmt == "raw":
        from lstmtag.raw import read_raw  # it builds on this module's readers

        return read_raw(path, segmenter)
    if fmt == "jsonl":
        return read_jsonl(path)
    raise ValueError(f"unknown input format {fmt!r}; choose conllu, conll, text, raw or jsonl")


def load_labelled(path: str | Path, fmt: str, columns: Iterable[str]) -> list[Sentence]:
    """Read a whole training or evaluation file; an empty one is an error."""
    sentences = list(read_sentences(path, fmt, columns))
    if not sentences:
        raise DataError(str(path), 0, "file holds no sentences")
    return sentences


# --- writers -------------------------------------------------------------------------------------


def format_conllu(sentence: Sentence, predicted: dict[str, list[str]], fmt: str = "conllu") -> str:
    """The sentence's raw lines with the predicted columns filled in; every other byte unchanged."""
    lines = list(sentence.lines)
    if not lines:  # a sentence that did not come from CoNLL-U: build minimal lines
        lines = [f"{i}\t{w}" + "\t_" * 8 for i, w in enumerate(sentence.words, start=1)]
        word_lines = list(range(len(lines)))
        fmt = "conllu"
    else:
        word_lines = sentence.word_lines
    for position, line_index in enumerate(word_lines):
        cells = lines[line_index].split("\t") if fmt == "conllu" else lines[line_index].split()
        for name, tags in predicted.items():
            index = _column_index(name, fmt)
            while len(cells) <= index:
                cells.append("_")
            cells[index] = tags[position]
        lines[line_index] = ("\t" if fmt == "conllu" else " ").join(cells)
    return "\n".join(lines) + "\n\n"


def format_tsv(sentence: Sentence, predicted: dict[str, list[str]], probs: dict[str, list[float]]) -> str:
    """One token a line: token, then each column's tag and probability; a blank line after."""
    rows = []
    for position, word in enumerate(sentence.words):
        cells = [word]
        for name in predicted:
            cells += [predicted[name][position], f"{probs[name][position]:.4f}"]
        rows.append("\t".join(cells))
    return "\n".join(rows) + "\n\n"


def format_jsonl(sentence: Sentence, predicted: dict[str, list[str]], probs: dict[str, list[float]]) -> str:
    record: dict[str, object] = {"tokens": sentence.words}
    for name in predicted:
        record[name] = predicted[name]
        record[f"{name}_prob"] = [round(p, 6) for p in probs[name]]
    return json.dumps(record, ensure_ascii=False) + "\n"


def temporary_beside(target: Path) -> tuple[int, str]:
    """A new temporary file ``.NAME.PID.XXXX.tmp`` beside ``target`` (fd, path), after removing stale ones.

    A temporary file is stale when the process named in it is gone: killed (SIGKILL cannot be
    caught) before it could remove its file. Files of live processes, another writer's included,
    are left alone.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}."
    for old in target.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = old.name[len(prefix) :].split(".", 1)[0]
        if _is_number(pid) and not _process_alive(int(pid)):
            old.unlink(missing_ok=True)
    return tempfile.mkstemp(dir=target.parent, prefix=f"{prefix}{os.getpid()}.", suffix=".tmp")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # alive under another user, or not a pid we can judge: keep its file
    return True


@contextmanager
def atomic_writer(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place only on success.

    On any exception (``KeyboardInterrupt`` and the CLI's SIGTERM exit included) the temporary file
    is removed and ``path`` keeps its old content; one left by a killed process is removed by the
    next write beside it.
    """
    target = Path(path)
    fd, tmp = temporary_beside(target)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        current = os.umask(0)
        os.umask(current)
        os.chmod(tmp, 0o666 & ~current)  # mkstemp makes 0600; an output file is as readable as any other
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
