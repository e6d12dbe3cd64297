"""The Turkish (UD IMST) pipeline from raw text and on gold tokens: the scores of docs/turkish.md.

    python bench/turkish.py --model runs/tr_imst.safetensors --segmenter runs/tr_imst.segmenter.safetensors

Every score comes from the `lstmtag evaluate` command, run here in child processes with one thread:
on gold tokens (UPOS, XPOS, FEATS and LEMMA accuracy, all / known / unknown words) and from raw text
(`--raw`, CoNLL 2018 F1). Multiword tokens are checked on their own: the segmenter's multiword tokens
against the gold ranges (same characters, and same words). Writes bench/results/turkish.json and .md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
from pathlib import Path

import torch

from common import SHARED, lstmtag_command, machine, write
from lstmtag import ud_eval
from lstmtag.checkpoint import read
from lstmtag.data import load_labelled
from lstmtag.models import load_segmenter
from lstmtag.pipeline import gold_paragraphs
from lstmtag.raw import segmented

IMST = SHARED / "ud" / "tr_imst"
RAW_METRICS = ("Tokens", "Sentences", "Words", "UPOS", "XPOS", "UFeats", "AllTags", "Lemmas")


def evaluate(arguments: list[str]) -> dict:
    """`lstmtag evaluate ... --json` in a child process with one thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [*lstmtag_command(), "evaluate", *arguments, "--json"]
    print("$", " ".join(command), flush=True)
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout)


def multiword_spans(document: ud_eval.Document) -> dict[tuple[int, int], tuple[str, ...]]:
    """Each multiword token's character span -> its words."""
    spans: dict[tuple[int, int], tuple[str, ...]] = {}
    for word in document.words:
        if word.multiword:
            spans[(word.start, word.end)] = (*spans.get((word.start, word.end), ()), word.form)
    return spans


def multiword_check(segmenter_file: str, gold_file: Path) -> dict[str, int]:
    """How many of the gold multiword tokens the segmenter finds (same characters) and expands right."""
    torch.set_num_threads(1)
    gold = load_labelled(gold_file, "conllu", [])
    text = "\n\n".join(gold_paragraphs(gold))
    system = list(segmented(text, load_segmenter(segmenter_file), "<system>", 0, itertools.count(1)))
    gold_spans = multiword_spans(ud_eval.document(gold))
    system_spans = multiword_spans(ud_eval.document(system))
    found = [span for span in system_spans if span in gold_spans]
    return {
        "gold": len(gold_spans),
        "system": len(system_spans),
        "same_span": len(found),
        "same_span_and_words": sum(1 for span in found if system_spans[span] == gold_spans[span]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/tr_imst.safetensors")
    parser.add_argument("--segmenter", default="runs/tr_imst.segmenter.safetensors")
    parser.add_argument("--parts", default="dev,test", help="IMST files to score, comma-separated.")
    args = parser.parse_args()
    parts = {}
    for part in args.parts.split(","):
        gold = IMST / f"tr_imst-ud-{part}.conllu"
        parts[part] = {
            "gold_tokens": {
                name: {key: column[key] for key in ("accuracy", "known_accuracy", "unknown_accuracy", "unknown_tokens")}
                for name, column in evaluate([args.model, str(gold)])["columns"].items()
            },
            "raw": evaluate([args.model, str(gold), "--raw", "--segmenter", args.segmenter])["scores"],
            "multiword": multiword_check(args.segmenter, gold),
        }
    models = {name: read(path).info for name, path in (("tagger", args.model), ("segmenter", args.segmenter))}
    payload = {"machine": machine(), "model": args.model, "segmenter": args.segmenter, "info": models, "parts": parts}
    lines = [
        f"UD Turkish IMST; tagger {args.model}, segmenter {args.segmenter}; `python bench/turkish.py`",
        "",
        "From raw text, CoNLL 2018 F1:",
        "",
        "| part | " + " | ".join(RAW_METRICS) + " |",
        "| --- |" + " --- |" * len(RAW_METRICS),
        *(
            f"| {part} | " + " | ".join(f"{100 * scores['raw'][m]['f1']:.2f}" for m in RAW_METRICS) + " |"
            for part, scores in parts.items()
        ),
        "",
        "On gold tokens, accuracy all / known / unknown words:",
        "",
        "| part | column | all | known | unknown | unknown tokens |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {part} | {name} | {100 * c['accuracy']:.2f} | {100 * c['known_accuracy']:.2f} | "
            f"{100 * c['unknown_accuracy']:.2f} | {c['unknown_tokens']} |"
            for part, scores in parts.items()
            for name, c in scores["gold_tokens"].items()
        ),
        "",
        "Multiword tokens (the segmenter's against the gold ranges):",
        "",
        "| part | gold | system | same characters | same characters and words |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {part} | {m['gold']} | {m['system']} | {m['same_span']} | {m['same_span_and_words']} |"
            for part, m in ((part, scores["multiword"]) for part, scores in parts.items())
        ),
        "",
        f"Measured {payload['machine']['date']} on {payload['machine']['cpu']} ({payload['machine']['cores']} cores, "
        f"shared with other jobs), torch {payload['machine']['torch']}.",
    ]
    write("turkish", payload, "\n".join(lines))


if __name__ == "__main__":
    main()
