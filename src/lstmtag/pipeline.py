"""Raw text through the whole pipeline: segmenter -> tagger -> tokens with offsets, or scores against gold.

Why a module of its own: the API's document view (tokens with character offsets, space-after and the
words of multiword tokens) and ``evaluate --raw`` (the gold file's text through the pipeline, scored
with ``ud_eval``) both need the segmenter's tokens next to the tagger's words, which ``Predictor``
alone does not keep.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from lstmtag import ud_eval
from lstmtag.data import DataError, Sentence, format_conllu
from lstmtag.raw import segmented
from lstmtag.segment import Segmenter, Token, clean, paragraphs, words

if TYPE_CHECKING:
    from lstmtag.predict import Predictor, Tagged


def tag_document(predictor: Predictor, text: str, segmenter: Segmenter) -> list[dict[str, object]]:
    """Raw text -> sentences: ``{"text", "start", "end", "paragraph", "tokens": [...]}``.

    Each token: ``{"text", "start", "end", "space_after", "words": [{"word", column: tag,
    column_prob: p, ...}]}`` (one word unless it is a multiword token); offsets are into ``text``.
    """
    pieces = segment_document(text, segmenter)
    return document(text, pieces, predictor.predict([Sentence(words(tokens)) for _, tokens in pieces]))


def segment_document(text: str, segmenter: Segmenter) -> list[tuple[int, list[Token]]]:
    """``text``'s sentences as (paragraph number, tokens); the service tags them in its shared batches."""
    cleaned = clean(text)  # one character for one: offsets into it are offsets into ``text``
    breaks = [offset for offset, _ in paragraphs(cleaned)]
    return [(bisect.bisect_right(breaks, tokens[0].start) - 1, tokens) for tokens in segmenter(cleaned)]


def document(text: str, pieces: list[tuple[int, list[Token]]], tagged: Sequence[Tagged]) -> list[dict[str, object]]:
    """The document view (see ``tag_document``) of ``segment_document``'s sentences and their tags."""
    result = []
    for (number, tokens), labelled in zip(pieces, tagged, strict=True):
        position = 0
        rows = []
        for token in tokens:
            found = []
            for form in token.forms:
                word: dict[str, object] = {"word": form}
                for name in labelled.tags:
                    word[name] = labelled.tags[name][position]
                    word[f"{name}_prob"] = labelled.probs[name][position]
                found.append(word)
                position += 1
            start, end = token.start, token.end
            rows.append(
                {"text": token.text, "start": start, "end": end, "space_after": token.space_after, "words": found}
            )
        first, last = rows[0]["start"], rows[-1]["end"]
        result.append({"text": text[first:last], "start": first, "end": last, "paragraph": number, "tokens": rows})  # type: ignore[index]
    return result


def gold_paragraphs(sentences: Iterable[Sentence]) -> Iterator[str]:
    """The raw text of gold CoNLL-U: its ``# text`` lines, a new paragraph at ``# newpar`` or ``# newdoc``."""
    paragraph: list[str] = []
    for sentence in sentences:
        comments = [line for line in sentence.lines if line.startswith("#")]
        texts = [line.split("=", 1)[1].strip() for line in comments if line.startswith("# text =")]
        if not texts:
            raise DataError(sentence.source, sentence.line, "sentence has no '# text = ...' line to take raw text from")
        if paragraph and any(line.startswith(("# newpar", "# newdoc")) for line in comments):
            yield " ".join(paragraph)
            paragraph = []
        paragraph.append(texts[0])
    if paragraph:
        yield " ".join(paragraph)


def evaluate_raw(predictor: Predictor, gold: list[Sentence], segmenter: Segmenter) -> dict[str, object]:
    """The gold file's text through segmenter and tagger, scored as the CoNLL 2018 shared task does."""
    numbers = itertools.count(1)
    system = list(segmented("\n\n".join(gold_paragraphs(gold)), segmenter, "<system>", 0, numbers))
    filled = []
    for sentence, tagged in predictor.stream(system):
        columns = {name: tags for name, tags in tagged.tags.items() if name in ("upos", "xpos", "feats", "lemma")}
        lines = format_conllu(sentence, columns).rstrip("\n").split("\n")
        filled.append(Sentence(sentence.words, lines=lines, word_lines=sentence.word_lines))
    scores = ud_eval.evaluate(ud_eval.document(gold), ud_eval.document(filled), source="the pipeline's output")
    return {
        "scores": {name: score.summary() for name, score in scores.items()},
        "sentences": len(system),
        "words": sum(len(s.words) for s in system),
    }
