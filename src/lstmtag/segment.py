"""Raw text -> sentences of tokens with character offsets: the seam behind ``tag --input raw``, the API and the service.

A ``Segmenter`` is any function from text to sentences of ``Token`` s (their offsets into that text,
whether a space follows, and the words of a multiword token). The text may hold several paragraphs
separated by blank lines (``paragraphs``); no sentence spans one, so a caller can hand over many
paragraphs at once and a trained segmenter labels them in one batch. Two exist: the rule
tokenizer here (``rule_segment``, the default) and the trained character BiLSTM
(``segmenter.SegmenterModel``); callers take whichever they are given and never ask which.

Every character is accounted for: a token is a slice of the text, and what lies between tokens is
whitespace (control characters and zero-width spaces count as whitespace, see ``clean``). ``bounded`` cuts what no model
should be handed whole: a sentence over ``MAX_SENTENCE_TOKENS`` tokens (a 1 MB line without a
sentence end) is cut into pieces of that many tokens, and a token over ``MAX_TOKEN_CHARS``
characters (text without spaces) into pieces of that many characters, joined with no space.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import NamedTuple

from lstmtag.limits import MAX_SENTENCE_TOKENS, MAX_TOKEN_CHARS


class Token(NamedTuple):
    """A slice ``text[start:end]`` of a paragraph, and the syntactic words it stands for.

    A named tuple, not a frozen dataclass: raw text makes one per token, and a tuple is built 2.7x
    faster (25,000 tokens: 8.2 against 22.6 ms, about 2% of tagging EWT test from raw text).
    """

    text: str
    start: int
    end: int
    space_after: bool = True
    words: tuple[str, ...] = ()  # a multiword token's words (don't -> do, n't); empty: the token is one word

    @property
    def forms(self) -> tuple[str, ...]:
        return self.words or (self.text,)


Segmenter = Callable[[str], list[list[Token]]]

TOKEN = re.compile(
    r"n't\b|'(?:s|re|ve|ll|d|m)\b|\w+?(?=n't\b)|\w+(?:[-.]\w+|'(?!(?:s|re|ve|ll|d|m)\b)\w+)*|[^\w\s]", re.IGNORECASE
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")  # a blank line (maybe holding spaces), and the whitespace after it


def paragraphs(text: str) -> list[tuple[int, str]]:
    """``(offset, paragraph)`` for each run of text between blank lines."""
    pieces, start = [], 0
    for match in [*PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        if text[start:end].strip():
            pieces.append((start, text[start:end]))
        start = match.end() if match else len(text)
    return pieces


INVISIBLE = frozenset("\u200b\u2060\ufeff")  # zero-width space, word joiner, byte-order mark
# Unicode's control characters (category Cc: U+0000-001F and U+007F-009F, fixed by its stability
# policy) other than tab and line ends, and the invisible separators.
UNWANTED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f" + "".join(sorted(INVISIBLE)) + "]")


def clean(text: str) -> str:
    """``text`` with control characters (other than tab and line ends) and invisible separators as spaces.

    One character for one, so offsets into the result are offsets into the input. Why: a NUL or a
    bell inside a CoNLL-U FORM helps no tagger and breaks some readers. Zero-width joiners and
    non-joiners stay: they belong inside Persian and Indic words and emoji sequences. One regular
    expression rather than a test per character: raw text is cleaned on its way to every segmenter.
    """
    return UNWANTED.sub(" ", text)


def rule_segment(text: str) -> list[list[Token]]:
    """The rule tokenizer: a simple, documented baseline with no model behind it.

    Sentences end after ``.``, ``!`` or ``?`` followed by whitespace. Tokens are runs of letters and
    digits (keeping inner hyphens, dots and apostrophes: ``e-mail``, ``U.S``, ``o'clock``), each other
    non-space character alone, and the clitics ``n't``, ``'s``, ``'re``, ``'ve``, ``'ll``, ``'d``,
    ``'m`` split off as UD English does (``don't`` -> ``do n't``, two tokens, no multiword token).
    """
    text = clean(text)
    sentences = []
    for offset, paragraph in paragraphs(text):
        start, stop = offset, offset + len(paragraph)
        for end in [m.start() for m in SENTENCE_END.finditer(text, start, stop)] + [stop]:
            tokens = [
                Token(m.group(), m.start(), m.end(), _space_after(text, m.end()))
                for m in TOKEN.finditer(text, start, end)
            ]
            if tokens:
                sentences.append(tokens)
            start = end
    return bounded(sentences)


def _space_after(text: str, end: int) -> bool:
    return end >= len(text) or text[end].isspace()


def bounded(
    sentences: Sequence[Sequence[Token]], *, max_tokens: int = MAX_SENTENCE_TOKENS, max_chars: int = MAX_TOKEN_CHARS
) -> list[list[Token]]:
    """Cut over-long tokens into ``max_chars`` pieces and over-long sentences into pieces of ``max_tokens`` words."""
    result = []
    for sentence in sentences:
        if sentence and _within(sentence, max_tokens, max_chars):  # nearly every sentence: nothing to cut
            result.append(list(sentence))
            continue
        tokens: list[Token] = []
        for token in sentence:
            if len(token.text) <= max_chars and all(len(w) <= max_chars for w in token.words):
                tokens.append(token)
                continue
            for at in range(token.start, token.end, max_chars):
                stop = min(at + max_chars, token.end)
                piece = token.text[at - token.start : stop - token.start]
                tokens.append(Token(piece, at, stop, token.space_after if stop == token.end else False))
        piece: list[Token] = []
        count = 0  # words in ``piece``: the limit is on words, after multiword tokens are expanded
        for token in tokens:
            if piece and count + len(token.forms) > max_tokens:
                result.append(piece)
                piece, count = [], 0
            piece.append(token)
            count += len(token.forms)
        if piece:
            result.append(piece)
    return result


def _within(sentence: Sequence[Token], max_tokens: int, max_chars: int) -> bool:
    """Whether ``bounded`` leaves ``sentence`` whole: no token or word over ``max_chars``, at most ``max_tokens`` words.

    Why apart: it asks per sentence what the cutting loop asks per token, and raw text passes here whole.
    """
    multiword = [token.words for token in sentence if token.words]
    if len(sentence) + sum(map(len, multiword)) - len(multiword) > max_tokens:
        return False
    longest = max(map(len, map(_TEXT, sentence)))
    return longest <= max_chars and all(len(word) <= max_chars for forms in multiword for word in forms)


_TEXT = attrgetter("text")


def words(sentence: Sequence[Token]) -> list[str]:
    """The syntactic words of a sentence: multiword tokens expanded."""
    return [form for token in sentence for form in token.forms]


def split_text(text: str) -> list[list[str]]:
    """The rule tokenizer's sentences as lists of words (see ``rule_segment``)."""
    return [words(sentence) for sentence in rule_segment(text)]


def conllu_lines(
    sentence: Sequence[Token], text: str, *, sent_id: str, newpar: bool = False
) -> tuple[list[str], list[int]]:
    """CoNLL-U lines of one segmented sentence of paragraph ``text``, and the index of each word's line.

    Comments ``# newpar`` (first sentence of a paragraph), ``# sent_id`` and ``# text``; a range line
    for each multiword token; ``SpaceAfter=No`` in MISC where no space follows (on the range line for
    a multiword token). The columns a tagger fills stay ``_``.
    """
    lines = ["# newpar"] if newpar else []
    sentence_text = " ".join(text[sentence[0].start : sentence[-1].end].split())
    lines += [f"# sent_id = {sent_id}", f"# text = {sentence_text}"]
    word_lines = []
    number = 0
    for position, token in enumerate(sentence):
        last = position == len(sentence) - 1
        misc = "_" if token.space_after or last and token.end >= len(text) else "SpaceAfter=No"
        form = _form(token.text)
        if token.words:
            lines.append(f"{number + 1}-{number + len(token.words)}\t{form}" + "\t_" * 7 + f"\t{misc}")
            for word in token.words:
                number += 1
                word_lines.append(len(lines))
                lines.append(f"{number}\t{_form(word)}" + "\t_" * 8)
        else:
            number += 1
            word_lines.append(len(lines))
            lines.append(f"{number}\t{form}" + "\t_" * 7 + f"\t{misc}")
    return lines, word_lines


def _form(text: str) -> str:
    """A FORM cell: inner whitespace (a tab or line end would break the line) becomes a plain space."""
    return " ".join(text.split()) or "_"


def with_offset(sentences: list[list[Token]], offset: int) -> list[list[Token]]:
    """Tokens moved ``offset`` characters on (for a piece of a longer text)."""
    return [[t._replace(start=t.start + offset, end=t.end + offset) for t in sentence] for sentence in sentences]


DEFAULT: Segmenter = rule_segment  # what raw text is split with unless a caller passes another
