"""Raw text -> sentences with their CoNLL-U lines: the reader behind ``tag --input raw`` and ``evaluate --raw``.

Paragraphs are gathered into blocks and handed to the segmenter a block at a time (a trained one
labels a block's windows in one batch); each sentence gets ``# newpar``, ``# sent_id``, ``# text``,
multiword ranges and ``SpaceAfter=No`` (``segment.conllu_lines``), which ``data.format_conllu`` fills.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from pathlib import Path

from lstmtag.data import Sentence, _check_words, _decoded_lines, _open_binary
from lstmtag.limits import MAX_LINE_BYTES
from lstmtag.segment import DEFAULT as DEFAULT_SEGMENTER
from lstmtag.segment import Segmenter, clean, conllu_lines, paragraphs
from lstmtag.segment import words as segment_words

RAW_BLOCK_BYTES = 65_536  # paragraphs handed to the segmenter at once (a trained one labels them in one batch)


def read_raw(path: str | Path, segmenter: Segmenter = DEFAULT_SEGMENTER) -> Iterator[Sentence]:
    """Raw text, split into sentences and tokens by ``segmenter`` (``segment.rule_segment`` by default).

    Paragraphs (runs of lines up to a blank line, or ``MAX_LINE_BYTES`` of text) are gathered into
    blocks of about ``RAW_BLOCK_BYTES`` and split a block at a time, so a file of any size streams; a
    sentence never spans a blank line. Each sentence names its paragraph's first line and carries its
    CoNLL-U lines (``segment.conllu_lines``: ``# newpar``, ``# sent_id``, ``# text``, multiword
    ranges, ``SpaceAfter=No``), which ``format_conllu`` fills in.
    """
    numbers = itertools.count(1)
    with _open_binary(path) as (handle, source):
        block: list[tuple[int, str, bool]] = []  # (first line, paragraph, starts a paragraph)
        lines: list[str] = []
        start = size = block_size = 0
        newpar = True
        for number, text in _decoded_lines(handle, source):
            if text.strip():
                start = start if lines else number
                lines.append(text)
                size += len(text)
            if lines and (not text.strip() or size > MAX_LINE_BYTES):
                block.append((start, " ".join(lines), newpar))
                block_size += size
                newpar = not text.strip()  # a paragraph cut at the size limit goes on in the next piece
                lines = []
                if block_size >= RAW_BLOCK_BYTES or size > MAX_LINE_BYTES:
                    yield from _block(block, segmenter, source, numbers)
                    block, block_size = [], 0
                size = 0
        if lines:
            block.append((start, " ".join(lines), newpar))
        yield from _block(block, segmenter, source, numbers)


def _block(
    block: list[tuple[int, str, bool]], segmenter: Segmenter, source: str, numbers: Iterator[int]
) -> Iterator[Sentence]:
    """The sentences of a block of paragraphs, segmented at once (paragraphs joined by blank lines).

    Only the first paragraph of a block can be the rest of one cut at the size limit (a cut flushes
    its block), so its ``newpar`` is the block's.
    """
    if block:
        text = "\n\n".join(paragraph for _, paragraph, _ in block)
        lines = [line for line, _, _ in block]
        yield from segmented(text, segmenter, source, lines[0], numbers, newpar=block[0][2], lines=lines)


def segmented(
    text: str,
    segmenter: Segmenter,
    source: str,
    line: int,
    numbers: Iterator[int],
    *,
    newpar: bool = True,
    lines: list[int] | None = None,
) -> Iterator[Sentence]:
    """The sentences of ``text`` (paragraphs separated by blank lines), with their CoNLL-U lines.

    ``numbers`` gives the sent_ids; a sentence starts a paragraph (``# newpar``) when it is the first
    (and ``newpar``) or a blank line lies before it. ``lines``: each paragraph's first line in the
    source, for errors (else ``line``).
    """
    text = clean(text)  # as the segmenter sees it (one character for one), so # text agrees with the tokens
    breaks = [offset for offset, _ in paragraphs(text)]
    last = -1  # the paragraph of the sentence before
    for tokens in segmenter(text):
        paragraph = bisect.bisect_right(breaks, tokens[0].start) - 1
        starts = paragraph != last if last >= 0 else newpar
        last = paragraph
        sentence_lines, word_lines = conllu_lines(tokens, text, sent_id=str(next(numbers)), newpar=starts)
        words = segment_words(tokens)
        where = lines[paragraph] if lines else line
        _check_words(words, source, where)
        yield Sentence(words, lines=sentence_lines, word_lines=word_lines, source=source, line=where)
