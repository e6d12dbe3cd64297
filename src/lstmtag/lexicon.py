"""A lemma lexicon: where the training treebank settles a (form, tag) pair's lemma, that lemma wins.

Why: the edit-script head (``lemma.py``) generalises to words never seen, but the context can still
mislead it on words it has seen (EWT dev: ``stolen`` -> ``stolan``, ``Buses`` -> ``buse``). UDPipe and
Stanza keep such a dictionary beside their learned lemmatizer; here it is a table stored in the model
file, consulted before the script.

What the table keeps (``build``): each (form, tag) pair of the training treebank that always has the
same lemma there (ambiguous pairs, ``'s``/VBZ as *be* or *have*, are left to the head in context),
less the pairs the head would get right anyway: those whose lemma is the form itself or its
lowercase and whose every training occurrence the head already lemmatizes right. The tag is the
model's predicted XPOS (UPOS for a model without XPOS). docs/lemmas.md gives the choices measured on dev.

A token's lemma (``lemmas``), first that applies: the entry of (form, tag); the entry of (lowercased
form, tag) (sentence-initial ``Putting``); the form without its commas when the lexicon says the
treebank writes numbers so (``numbers``: EWT's ``5,000`` -> ``5000``); the edit script.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from lstmtag.data import Sentence
from lstmtag.lemma import CACHED_FORM, apply_uncached
from lstmtag.limits import MAX_JSON_DEPTH, MAX_LEXICON_CHARS, json_depth

VERSION = 1
CACHE = 65536  # (script, form, tag) triples whose lemma is remembered, as lemma._apply does for (script, form)
_NONE: dict[str, str] = {}  # the forms of a tag the lexicon has no entry for
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")  # 5,000 and 1,234,567.89; not 1,2 or 12,34


class LemmaLexicon:
    """(form, tag) -> lemma, applied before the edit scripts; ``column`` names the tag column it is keyed by."""

    def __init__(self, entries: dict[tuple[str, str], str], *, column: str = "xpos", numbers: bool = False) -> None:
        # tag -> form -> lemma: a table per tag costs less memory than a tuple key per entry (EWT's
        # lexicon: 0.8 MiB, against 1.2 MiB).
        self.table: dict[str, dict[str, str]] = defaultdict(dict)
        for (form, tag), lemma in entries.items():
            self.table[tag][form] = lemma
        self.table = dict(self.table)
        self.column = column
        self.numbers = numbers  # numbers with thousands commas lose them (5,000 -> 5000)
        # One cached call per token, as lemma.apply_all: per model, since the answer depends on the table.
        self._cached = functools.lru_cache(maxsize=CACHE)(self.lemma)

    @property
    def entries(self) -> dict[tuple[str, str], str]:
        """(form, tag) -> lemma."""
        return {(form, tag): lemma for tag, forms in self.table.items() for form, lemma in forms.items()}

    def __len__(self) -> int:
        return sum(map(len, self.table.values()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LemmaLexicon):
            return NotImplemented
        return (self.table, self.column, self.numbers) == (other.table, other.column, other.numbers)

    def lemma(self, edit: str, form: str, tag: str) -> str:
        """The lemma of ``form`` tagged ``tag`` whose predicted edit script is ``edit``."""
        forms = self.table.get(tag, _NONE)
        found = forms.get(form)
        if found is None:
            lower = form.lower()
            if lower != form:
                found = forms.get(lower)
        if found is None and self.numbers and NUMBER.fullmatch(form):
            found = form.replace(",", "")
        return apply_uncached(edit, form) if found is None else found

    def lemmas(self, edits: Sequence[str], forms: Sequence[str], tags: Sequence[str]) -> list[str]:
        """``lemma`` of each token: one cached call per token where no form is long (the hot path)."""
        if max(map(len, forms), default=0) <= CACHED_FORM:
            return list(map(self._cached, edits, forms, tags))
        return list(map(self.lemma, edits, forms, tags))  # long tokens would bloat the cache

    def to_json(self) -> str:
        """The JSON a model file stores: ``{"version", "column", "numbers", "entries": {tag: {form: lemma}}}``."""
        nested = {tag: dict(sorted(self.table[tag].items())) for tag in sorted(self.table)}
        values = {"version": VERSION, "column": self.column, "numbers": self.numbers, "entries": nested}
        return json.dumps(values, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, *, columns: Sequence[str] | None = None) -> LemmaLexicon:
        """Inverse of ``to_json``; a ``ValueError`` says what is wrong with ``text``.

        ``text`` is refused unread beyond ``limits.MAX_LEXICON_CHARS`` characters (loading a model file
        stays bounded whatever its metadata holds); ``columns``: the model's label columns, one of which
        must be the lexicon's.
        """
        if not isinstance(text, str):
            raise ValueError(f"expected JSON text, got {type(text).__name__}")
        if len(text) > MAX_LEXICON_CHARS:
            raise ValueError(
                f"{len(text):,} characters of JSON; at most {MAX_LEXICON_CHARS:,} (limits.MAX_LEXICON_CHARS)"
            )
        if json_depth(text) > MAX_JSON_DEPTH:
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH}")
        values = json.loads(text)
        if not isinstance(values, dict) or values.get("version") != VERSION:
            raise ValueError(f"expected a table of version {VERSION}")
        column, numbers, nested = values.get("column"), values.get("numbers"), values.get("entries")
        if not isinstance(column, str) or not isinstance(numbers, bool) or not isinstance(nested, dict):
            raise ValueError("expected a column name, a numbers flag and a table of entries")
        for tag, forms in nested.items():
            if not (isinstance(forms, dict) and all(isinstance(v, str) for v in forms.values())):
                raise ValueError(f"the entries of tag {tag!r} must map forms to lemma strings")
        if columns is not None and column not in columns:
            raise ValueError(f"it is keyed by the column {column!r}, which the model does not predict")
        lexicon = cls({}, column=column, numbers=numbers)
        lexicon.table = nested
        return lexicon


def build(
    sentences: Sequence[Sentence], *, column: str = "xpos", predicted: Sequence[Sequence[str]] | None = None
) -> LemmaLexicon:
    """The lexicon of ``sentences`` (gold ``column`` and ``lemma`` labels); see the module docstring.

    ``predicted``: the lemma head's lemmas of the same sentences, token by token; pairs whose lemma is
    the form (or its lowercase) and which the head gets right at every occurrence are left out.
    Without it every unambiguous pair is kept. ``numbers`` is set when the treebank has numbers with
    thousands commas and lemmatizes every one of them without its commas.
    """
    lemmas: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    missed: set[tuple[str, str]] = set()  # pairs the head got wrong at least once
    number_lemmas = []
    for index, sentence in enumerate(sentences):
        gold = sentence.labels["lemma"]
        guesses = predicted[index] if predicted is not None else gold
        for form, tag, lemma, guess in zip(sentence.words, sentence.labels[column], gold, guesses, strict=True):
            lemmas[(form, tag)][lemma] += 1
            if guess != lemma:
                missed.add((form, tag))
            if NUMBER.fullmatch(form):
                number_lemmas.append(lemma == form.replace(",", ""))
    entries = {}
    for (form, tag), counts in lemmas.items():
        if len(counts) > 1:
            continue
        (lemma,) = counts
        if predicted is not None and lemma in (form, form.lower()) and (form, tag) not in missed:
            continue
        entries[(form, tag)] = lemma
    return LemmaLexicon(entries, column=column, numbers=bool(number_lemmas) and all(number_lemmas))
