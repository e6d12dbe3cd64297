"""Lemmas as edit scripts: a lemma is predicted as a class, the way a tag is.

Why: the lemma of a word is mostly its form with a small edit at the ends (``running`` -> ``run``,
``mice`` -> ``mouse`` is the exception). Predicting *how to edit the form* instead of the lemma string
turns lemmatization into one more softmax column over a few hundred classes that generalises to
words never seen in training (Chrupała 2006; UDPipe, Straka et al. 2016, uses the same idea).

A script is ``case|cut_prefix|add_prefix|cut_suffix|add_suffix``, applied to the form after the
case step (``keep`` or ``lower``); where the form and lemma share nothing the script is the whole
lemma, written ``=lemma`` (``was`` -> ``=be``).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from lstmtag.data import Sentence

COLUMN = "lemma"  # the label column whose values are edit scripts inside a model
CACHED_FORM = 64  # the longest form whose lemmas are cached
NONE = "="  # the script of an empty lemma ("_" is kept as a lemma, never produced by an edit)


def _common(a: str, b: str) -> tuple[int, int, int]:
    """Start in ``a``, start in ``b`` and length of their longest common substring."""
    best = (0, 0, 0)
    previous = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        current = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                current[j] = previous[j - 1] + 1
                if current[j] > best[2]:
                    best = (i - current[j], j - current[j], current[j])
        previous = current
    return best


def script(form: str, lemma: str) -> str:
    """The edit script that turns ``form`` into ``lemma``: ``apply(script(f, l), f) == l``."""
    choices = []
    for case, base in (("keep", form), ("lower", form.lower())):
        start_form, start_lemma, length = _common(base, lemma)
        choices.append((length, case == "keep", case, base, start_form, start_lemma))
    length, _, case, base, start_form, start_lemma = max(choices)
    if length == 0:
        return NONE + lemma
    end_form, end_lemma = start_form + length, start_lemma + length
    return "|".join((case, str(start_form), lemma[:start_lemma], str(len(base) - end_form), lemma[end_lemma:]))


def is_script(label: str) -> bool:
    """Whether a label is an edit script (model files store scripts; lemma strings are not scripts)."""
    parts = label.split("|")
    return label.startswith(NONE) or (len(parts) == 5 and parts[0] in ("keep", "lower") and parts[1].isdecimal())


def apply(edit: str, form: str) -> str:
    """The lemma that ``edit`` makes of ``form``; a script that does not fit returns the form itself."""
    # long tokens would bloat the cache
    return _apply(edit, form) if len(form) <= CACHED_FORM else apply_uncached(edit, form)


def apply_all(edits: Sequence[str], forms: Sequence[str]) -> list[str]:
    """``apply`` of each edit to its form: one cached call per token where no form is long (the hot path)."""
    if max(map(len, forms), default=0) <= CACHED_FORM:
        return list(map(_apply, edits, forms))
    return list(map(apply, edits, forms))


def apply_uncached(edit: str, form: str) -> str:
    """``apply`` without the cache (for callers that keep their own)."""
    if edit.startswith(NONE):
        return edit[len(NONE) :]
    parts = edit.split("|")
    if len(parts) != 5 or not parts[1].isdecimal() or not parts[3].isdecimal():
        return form
    case, cut_prefix, add_prefix, cut_suffix, add_suffix = parts
    base = form.lower() if case == "lower" else form
    cut_prefix_n, cut_suffix_n = int(cut_prefix), int(cut_suffix)
    if cut_prefix_n + cut_suffix_n >= len(base):
        return form
    return add_prefix + base[cut_prefix_n : len(base) - cut_suffix_n] + add_suffix


_apply = functools.lru_cache(maxsize=65536)(apply_uncached)  # hot: every token tagged


def with_scripts(sentences: Sequence[Sentence], *, min_count: int = 2) -> list[Sentence]:
    """Copies of ``sentences`` whose lemma column holds edit scripts, for training a lemma head.

    Scripts seen fewer than ``min_count`` times become ``""``, which the training vocabulary leaves
    out, so the loss ignores those tokens instead of learning one-off classes.
    """
    scripted = [[script(w, lemma) for w, lemma in zip(s.words, s.labels[COLUMN], strict=True)] for s in sentences]
    counts = Counter(edit for edits in scripted for edit in edits)
    return [
        replace(s, labels={**s.labels, COLUMN: [e if counts[e] >= min_count else "" for e in edits]})
        for s, edits in zip(sentences, scripted, strict=True)
    ]
