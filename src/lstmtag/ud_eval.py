"""The CoNLL 2018 shared-task scores of a system's CoNLL-U against gold, on raw-text pipelines.

Why its own module: a pipeline that tokenizes raw text cannot be scored token by token (its tokens
need not be the gold ones). The shared task (Zeman et al. 2018, the definition in its
``conll18_ud_eval.py``) scores it in three steps, written out again here:

1. Both files are read as one string of characters: the forms of their tokens (a multiword token's
   surface form, not its words) with space characters removed. The two strings must be equal.
   Every token, sentence and word gets a span of character offsets in that string; the words of a
   multiword token share their token's span.
2. Tokens and Sentences: F1 of spans that match exactly (same start and end).
3. Words are aligned: outside multiword tokens a gold and a system word are aligned when their spans
   are equal. Where either side has a multiword token, the smallest stretch of words around it whose
   ends agree is cut out, and its words are aligned by a longest common subsequence of their
   lower-cased forms. Words is then F1 of aligned words; UPOS, XPOS, UFeats (universal features
   only), AllTags (UPOS, XPOS and FEATS together) and Lemmas count aligned words whose columns match.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lstmtag.data import DataError, Sentence

# The features of the UD v2 guidelines that UFeats compares; language-specific ones are left out.
UNIVERSAL_FEATURES = frozenset(
    [
        "PronType",
        "NumType",
        "Poss",
        "Reflex",
        "Foreign",
        "Abbr",
        "Gender",
        "Animacy",
        "Number",
        "Case",
        "Definite",
        "Degree",
        "VerbForm",
        "Mood",
        "Tense",
        "Aspect",
        "Voice",
        "Evident",
        "Polarity",
        "Person",
        "Polite",
    ]
)
METRICS = ("Tokens", "Sentences", "Words", "UPOS", "XPOS", "UFeats", "AllTags", "Lemmas")


@dataclass(frozen=True)
class Word:
    """One syntactic word with the span of its token in the document's characters."""

    form: str
    lemma: str
    upos: str
    xpos: str
    feats: str  # universal features only, sorted
    start: int
    end: int
    multiword: bool = False


@dataclass
class Document:
    """A CoNLL-U file as the shared task sees it: characters, and spans of tokens, sentences and words."""

    characters: list[str] = field(default_factory=list)
    tokens: list[tuple[int, int]] = field(default_factory=list)
    sentences: list[tuple[int, int]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)


@dataclass(frozen=True)
class Score:
    """Counts behind one metric: precision = correct / system, recall = correct / gold."""

    gold: int
    system: int
    correct: int
    aligned: int | None = None

    @property
    def precision(self) -> float:
        return self.correct / self.system if self.system else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        total = self.gold + self.system
        return 2 * self.correct / total if total else 0.0

    def summary(self) -> dict[str, float | int]:
        result: dict[str, float | int] = {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "gold": self.gold,
            "system": self.system,
            "correct": self.correct,
        }
        if self.aligned is not None:
            result["aligned_accuracy"] = self.correct / self.aligned if self.aligned else 0.0
        return result


def _strip_spaces(form: str) -> str:
    return "".join(c for c in form if unicodedata.category(c) != "Zs")


def universal(feats: str) -> str:
    """The universal features of a FEATS string, sorted (what UFeats compares; ``_`` gives "")."""
    return "|".join(sorted(f for f in feats.split("|") if f.split("=", 1)[0] in UNIVERSAL_FEATURES))


def document(sentences: Iterable[Sentence]) -> Document:
    """The shared task's view of sentences read by ``data.read_conllu`` (their raw lines are used)."""
    doc = Document()
    for sentence in sentences:
        first = len(doc.characters)
        covered = 0  # the last word ID inside a multiword token seen so far
        for offset, line in enumerate(sentence.lines):
            if line.startswith("#"):
                continue
            cells = line.split("\t")
            token_id, form = cells[0], _strip_spaces(cells[1])
            if "." in token_id:
                continue  # empty nodes have no characters
            number = sentence.line + offset
            if not form:
                raise DataError(sentence.source, number, "a FORM made only of spaces")
            start = len(doc.characters)
            if "-" in token_id:
                low, high = (int(part) for part in token_id.split("-"))
                doc.characters.extend(form)
                doc.tokens.append((start, start + len(form)))
                covered = high
                continue
            word = Word(form, cells[2], cells[3], cells[4], universal(cells[5]), start, start, False)
            if int(token_id) <= covered:  # a word of the multiword token just read: that token's span
                start, end = doc.tokens[-1]
                doc.words.append(Word(**{**word.__dict__, "start": start, "end": end, "multiword": True}))
                continue
            doc.characters.extend(form)
            doc.tokens.append((start, start + len(form)))
            doc.words.append(Word(**{**word.__dict__, "end": start + len(form)}))
        if len(doc.characters) > first:
            doc.sentences.append((first, len(doc.characters)))
    return doc


def spans_score(gold: Sequence[tuple[int, int]], system: Sequence[tuple[int, int]]) -> Score:
    """Spans that match exactly; both lists are in document order."""
    correct = g = s = 0
    while g < len(gold) and s < len(system):
        if system[s][0] < gold[g][0]:
            s += 1
        elif gold[g][0] < system[s][0]:
            g += 1
        else:
            correct += gold[g][1] == system[s][1]
            g += 1
            s += 1
    return Score(len(gold), len(system), correct)


def _beyond(words: Sequence[Word], index: int, end: int) -> bool:
    """Whether ``words[index]`` lies past a multiword stretch that ends at ``end``."""
    if index >= len(words):
        return True
    if words[index].multiword:
        return words[index].start >= end
    return words[index].end > end


def _multiword_stretch(gold: Sequence[Word], system: Sequence[Word], g: int, s: int) -> tuple[int, int, int, int]:
    """The smallest stretch (gold g0:g1, system s0:s1) around a multiword token whose ends agree."""
    if gold[g].multiword:
        end = gold[g].end
        if not system[s].multiword and system[s].start < gold[g].start:
            s += 1  # a system word that ends inside the token but starts before it stays unaligned
    else:
        end = system[s].end
        if not gold[g].multiword and gold[g].start < system[s].start:
            g += 1
    g0, s0 = g, s
    while not _beyond(gold, g, end) or not _beyond(system, s, end):
        if g < len(gold) and (s >= len(system) or gold[g].start <= system[s].start):
            if gold[g].multiword:
                end = max(end, gold[g].end)
            g += 1
        else:
            if system[s].multiword:
                end = max(end, system[s].end)
            s += 1
    return g0, s0, g, s


def _lcs_pairs(gold: Sequence[Word], system: Sequence[Word]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of lower-cased forms, taken greedily from the left."""
    gold_forms = [w.form.lower() for w in gold]
    system_forms = [w.form.lower() for w in system]
    n, m = len(gold_forms), len(system_forms)
    table = [[0] * (m + 1) for _ in range(n + 1)]  # table[i][j]: LCS of gold[i:] and system[j:]
    for i in reversed(range(n)):
        for j in reversed(range(m)):
            same = table[i + 1][j + 1] + 1 if gold_forms[i] == system_forms[j] else 0
            table[i][j] = max(same, table[i + 1][j], table[i][j + 1])
    pairs = []
    i = j = 0
    while i < n and j < m:
        if gold_forms[i] == system_forms[j]:
            pairs.append((i, j))
            i += 1
            j += 1
        elif table[i][j] == table[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def align(gold: Sequence[Word], system: Sequence[Word]) -> list[tuple[int, int]]:
    """Pairs (gold index, system index) of aligned words, in order."""
    pairs: list[tuple[int, int]] = []
    g = s = 0
    while g < len(gold) and s < len(system):
        if gold[g].multiword or system[s].multiword:
            g0, s0, g, s = _multiword_stretch(gold, system, g, s)
            pairs += [(g0 + i, s0 + j) for i, j in _lcs_pairs(gold[g0:g], system[s0:s])]
        elif (gold[g].start, gold[g].end) == (system[s].start, system[s].end):
            pairs.append((g, s))
            g += 1
            s += 1
        elif gold[g].start <= system[s].start:
            g += 1
        else:
            s += 1
    return pairs


def evaluate(gold: Document, system: Document, *, source: str = "system") -> dict[str, Score]:
    """The eight shared-task scores of ``system`` against ``gold`` (see the module docstring)."""
    if gold.characters != system.characters:
        at = next(
            (i for i, (a, b) in enumerate(zip(gold.characters, system.characters, strict=False)) if a != b),
            min(len(gold.characters), len(system.characters)),
        )
        context = "".join(gold.characters[max(0, at - 20) : at + 20])
        raise ValueError(
            f"{source}: its text differs from the gold text at non-space character {at} (gold around it: {context!r}); "
            "the pipeline must keep every character of the input"
        )
    pairs = align(gold.words, system.words)

    def count(same) -> Score:
        correct = sum(1 for g, s in pairs if same(gold.words[g], system.words[s]))
        return Score(len(gold.words), len(system.words), correct, len(pairs))

    return {
        "Tokens": spans_score(gold.tokens, system.tokens),
        "Sentences": spans_score(gold.sentences, system.sentences),
        "Words": count(lambda g, s: True),
        "UPOS": count(lambda g, s: g.upos == s.upos),
        "XPOS": count(lambda g, s: g.xpos == s.xpos),
        "UFeats": count(lambda g, s: g.feats == s.feats),
        "AllTags": count(lambda g, s: (g.upos, g.xpos, g.feats) == (s.upos, s.xpos, s.feats)),
        "Lemmas": count(lambda g, s: g.lemma == "_" or g.lemma == s.lemma),
    }
