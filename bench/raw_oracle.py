"""Where the points of raw-text tagging go: the pipeline with gold tokens and gold sentence ends swapped in.

    python bench/raw_oracle.py [--model en] [--segmenter SEG.safetensors] [--gold DEV.conllu] [--name raw_oracle]

Scores the gold file's text (its ``# text`` lines, a paragraph per ``# newpar``) through the model's
pipeline four times, CoNLL 2018 F1 (``pipeline.evaluate_raw``), changing only the segmentation:

1. gold tokens, gold sentences: the tagger alone (equal to its scores on gold tokens);
2. gold tokens cut where the segmenter ends sentences: what sentence splitting costs the tags;
3. the segmenter's tokens cut where gold sentences end: what tokenization costs them;
4. the segmenter's tokens and sentences: the pipeline as users run it (``evaluate --raw``).

Why: the raw-text bars of issue 12 sit above the gold-token scores less what tokenization costs;
this says how much of each gap is the tagger's and how much the segmenter's. One thread; writes
bench/results/NAME.json and .md with the command, the machine and the settings.
"""

from __future__ import annotations

import argparse
import bisect
import sys
from collections.abc import Sequence

import torch

from common import SHARED, machine, write
from lstmtag.data import Sentence, read_conllu
from lstmtag.pipeline import evaluate_raw, gold_paragraphs
from lstmtag.predict import Predictor
from lstmtag.segment import Token, clean
from lstmtag.segmenter_train import tokens_of

METRICS = ("Tokens", "Sentences", "Words", "UPOS", "XPOS", "UFeats", "AllTags", "Lemmas")
NEEDS = {
    "UPOS": {"upos"},
    "XPOS": {"xpos"},
    "UFeats": {"feats"},
    "AllTags": {"upos", "xpos", "feats"},
    "Lemmas": {"lemma"},
}


def gold_segmentation(gold: Sequence[Sentence], text: str) -> list[list[Token]]:
    """The gold sentences as ``Token`` s with offsets into ``text`` (the gold paragraphs joined by blank lines)."""
    sentences, at = [], 0
    for sentence in gold:
        tokens: list[Token] = []
        for surface, words in tokens_of(sentence):  # what the segmenter is trained on, read the same way
            while text[at].isspace():
                at += 1
            if not text.startswith(surface, at):
                raise ValueError(f"gold line {sentence.line}: token {surface!r} is not at {text[at : at + 20]!r}")
            end = at + len(surface)
            multiword = tuple(words) if words != [surface] else ()
            tokens.append(Token(surface, at, end, end >= len(text) or text[end].isspace(), multiword))
            at = end
        sentences.append(tokens)
    return sentences


def cut_at(tokens: Sequence[Sequence[Token]], where: Sequence[Sequence[Token]]) -> list[list[Token]]:
    """The tokens of ``tokens`` cut into sentences after each token that ends where a sentence of ``where`` ends."""
    ends = sorted(sentence[-1].end for sentence in where)
    sentences, current = [], []
    for token in (token for sentence in tokens for token in sentence):
        current.append(token)
        found = bisect.bisect_left(ends, token.end)
        if found < len(ends) and ends[found] == token.end:
            sentences.append(current)
            current = []
    return sentences + [current] if current else sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="en")
    parser.add_argument("--segmenter", default=None, help="default: the one beside the model, else the rule tokenizer")
    parser.add_argument("--gold", default=str(SHARED / "ud" / "en_ewt" / "en_ewt-ud-dev.conllu"))
    parser.add_argument("--name", default="raw_oracle", help="results file name under bench/results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    predictor = Predictor.load(args.model, segmenter=args.segmenter)
    gold = list(read_conllu(args.gold))
    text = clean("\n\n".join(gold_paragraphs(gold)))  # what the segmenter reads (evaluate_raw cleans it alike)
    by_gold = gold_segmentation(gold, text)
    by_model = predictor.segmenter(text)
    variants = {
        "gold tokens, gold sentences": by_gold,
        "gold tokens, the segmenter's sentence ends": cut_at(by_gold, by_model),
        "the segmenter's tokens, gold sentence ends": cut_at(by_model, by_gold),
        "the segmenter's tokens and sentences (`evaluate --raw`)": by_model,
    }
    shown = [metric for metric in METRICS if NEEDS.get(metric, set()) <= set(predictor.columns)]  # what it predicts
    rows = {}
    for name, sentences in variants.items():
        report = evaluate_raw(predictor, gold, lambda _text, given=sentences: given)
        rows[name] = {metric: report["scores"][metric]["f1"] for metric in shown}
        print(name, {metric: round(100 * value, 2) for metric, value in rows[name].items()}, flush=True)
    command = "python " + " ".join(["bench/raw_oracle.py", *sys.argv[1:]])
    info = machine()
    lines = [
        f"# Raw-text scores with gold tokens or gold sentence ends swapped in (`{command}`)",
        "",
        f"{args.gold}; model {args.model} ({predictor.precision}), segmenter {args.segmenter or 'beside the model'}; "
        "CoNLL 2018 F1; "
        f"{info['cpu']}, torch {info['torch']}, {info['date']}",
        "",
        "| segmentation | " + " | ".join(METRICS) + " |",
        "| --- |" + " ---: |" * len(METRICS),
    ]
    for name, scores in rows.items():
        lines.append(
            f"| {name} | " + " | ".join(f"{100 * scores[m]:.2f}" if m in scores else "–" for m in METRICS) + " |"
        )
    payload = {
        "command": command,
        "machine": info,
        "model": args.model,
        "segmenter": args.segmenter,
        "gold": args.gold,
        "scores": rows,
    }
    write(args.name, payload, "\n".join(lines))


if __name__ == "__main__":
    main()
