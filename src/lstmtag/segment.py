"""Raw text -> sentences of tokens: the one splitter behind ``tag --input raw``, the API and the service.

A ``Segmenter`` is any function from text to sentences of tokens, so a trained tokenizer can replace
``split_text`` later without touching its callers (``data.read_sentences`` and ``serve`` take it
from here).
"""

from __future__ import annotations

import re
from collections.abc import Callable

Segmenter = Callable[[str], list[list[str]]]

TOKEN = re.compile(
    r"n't\b|'(?:s|re|ve|ll|d|m)\b|\w+?(?=n't\b)|\w+(?:[-.]\w+|'(?!(?:s|re|ve|ll|d|m)\b)\w+)*|[^\w\s]", re.IGNORECASE
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_text(text: str) -> list[list[str]]:
    """A simple, documented tokenizer for raw text.

    Sentences end after ``.``, ``!`` or ``?`` followed by whitespace. Tokens are runs of letters and
    digits (keeping inner hyphens, dots and apostrophes: ``e-mail``, ``U.S``, ``o'clock``), each other
    non-space character alone, and the clitics ``n't``, ``'s``, ``'re``, ``'ve``, ``'ll``, ``'d``,
    ``'m`` split off as UD English does (``don't`` -> ``do n't``).
    """
    sentences = []
    for chunk in SENTENCE_END.split(text.strip()):
        tokens = TOKEN.findall(chunk)
        if tokens:
            sentences.append(tokens)
    return sentences


DEFAULT: Segmenter = split_text  # what raw text is split with unless a caller passes another
