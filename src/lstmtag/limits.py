"""Documented bounds on input, checked where input enters: the readers, the CLI, the Python API, the service.

Each bound keeps one bad input from taking all the memory or time: a sentence's cost grows with its
tokens, the character model's with the characters of its longest token, a parser's stack with JSON
nesting. The bounds sit far above real text (UD English EWT's longest token is a 473-character URL,
its longest sentence 159 tokens), so only broken or hostile input meets them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_TOKEN_CHARS = 1_000  # characters in one token
# Characters of a token the character model reads (its cost grows with the longest spelling in a
# batch, so one long token must not pad every other); 64 covers all but URLs and e-mail addresses.
CHAR_MODEL_CHARS = 64
MAX_SENTENCE_TOKENS = 1_000  # tokens in one sentence (the service's default is lower: 512)
MAX_INSPECT_TOKENS = 512  # tokens the inspector traces at once (every vector of every layer is kept)
MAX_LINE_BYTES = 1_000_000  # bytes in one line of an input file (a JSONL line holds a whole sentence)
MAX_JSON_DEPTH = 20  # nesting of arrays and objects in one JSON document ({"sentences": [[...]]} is 3)
MAX_GENERATE_LENGTH = 1_000_000  # tokens `lm generate` produces in one call
# Characters of JSON in a model file's lemma lexicon (lexicon.py), refused unparsed beyond: EWT's
# table is 128 k characters (6,637 entries), 0.8 MiB parsed (under 7 bytes a character), so the bound
# keeps a parsed lexicon near 55 MB; EWT's every unambiguous training pair would be 448 k characters.
MAX_LEXICON_CHARS = 8_000_000

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def sentence_problem(tokens: object, *, max_tokens: int = MAX_SENTENCE_TOKENS) -> tuple[int | None, str] | None:
    """The first way ``tokens`` breaks the input rules, or None when it keeps them all.

    Returns ``(position, message)``: the token's position (None for the sentence as a whole) and one
    line saying what is wrong. Callers turn it into their own error, naming the file and line
    (``DataError``), the request field (the service) or the sentence (``ValueError``).
    """
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        return None, f"expected a list of token strings, got {type(tokens).__name__}"
    if not tokens:
        return None, "no tokens"
    if len(tokens) > max_tokens:
        return None, f"{len(tokens)} tokens; at most {max_tokens} in one sentence"
    for position, token in enumerate(tokens):
        problem = token_problem(token)
        if problem is not None:
            return position, problem
    return None


def token_problem(token: object) -> str | None:
    """What is wrong with one token (not a string, empty, too long, not encodable as UTF-8), or None."""
    if not isinstance(token, str):
        return f"expected a string, got {type(token).__name__}"
    if not token or token.isspace():
        return "empty token"
    if len(token) > MAX_TOKEN_CHARS:
        return f"token of {len(token)} characters; at most {MAX_TOKEN_CHARS}"
    if not token.isprintable() and _has_surrogate(token):
        return "token holds a lone surrogate (not valid Unicode text)"
    return None


class TokenError(ValueError):
    """A sentence that breaks a rule: ``where`` it is, the token's ``position`` (None: the whole sentence).

    ``str(error)`` names them for a person (``sentence 3, token 1: empty token``); ``field`` names
    them as a request field (``sentences.3.1``); ``too_large`` marks a sentence over the token limit.
    """

    def __init__(self, where: str, position: int | None, message: str, *, too_large: bool = False) -> None:
        super().__init__(f"{where if position is None else f'{where}, token {position}'}: {message}")
        self.where = where
        self.position = position
        self.message = message
        self.too_large = too_large

    @property
    def field(self) -> str:
        return self.where if self.position is None else f"{self.where}.{self.position}"


def check_sentence(tokens: object, where: str = "sentence", *, max_tokens: int = MAX_SENTENCE_TOKENS) -> list[str]:
    """``tokens`` as a list, or a ``TokenError`` naming ``where`` (and the token) and the rule broken.

    The one check of tokens given by a caller: the Python API, the CLI and the service all use it.
    """
    problem = sentence_problem(tokens, max_tokens=max_tokens)
    if problem is not None:
        position, message = problem
        too_large = position is None and isinstance(tokens, Sequence) and len(tokens) > max_tokens
        raise TokenError(where, position, message, too_large=too_large)
    return list(tokens)  # type: ignore[arg-type]


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text (brackets inside strings do not count).

    Cheap enough to run before parsing, so a document nested 100,000 deep is refused without
    recursing into it.
    """
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
