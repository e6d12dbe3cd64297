"""Raw text -> tagged CoNLL-U against pre-tokenized text, in words/s of the same model (issue 12's 80%).

    python bench/raw_speed.py --segmenter runs/en_ewt.segmenter.safetensors [--model en] [--passes 3]

One process, one thread. The text is EWT test's own (its ``# text`` lines, a paragraph per
``# newpar``), the words its gold words, so both runs tag the same sentences. Each pass times, in CPU
seconds (steadier than wall time on a shared machine): pre-tokenized sentences through
``Predictor.stream``; raw text through ``raw.read_raw`` with the rule tokenizer, then with the
trained segmenter, and the tagger, the three interleaved. The best pass of each counts. Words/s divide the gold word count.
Writes bench/results/raw_speed.json and .md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from common import RESULTS, SHARED, machine
from lstmtag.data import format_conllu, load_labelled, read_text
from lstmtag.pipeline import gold_paragraphs
from lstmtag.predict import Predictor, choose_segmenter
from lstmtag.raw import read_raw
from lstmtag.segment import rule_segment


def timed(predictor: Predictor, sentences) -> float:
    """CPU seconds to tag ``sentences`` (an iterator, so reading and segmenting are timed too) into CoNLL-U."""
    started = time.process_time()
    for sentence, tagged in predictor.stream(sentences):
        format_conllu(sentence, tagged.tags)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="en")
    parser.add_argument("--segmenter", required=True)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--gold", default=str(SHARED / "ud" / "en_ewt" / "en_ewt-ud-test.conllu"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    gold = load_labelled(args.gold, "conllu", [])
    words = sum(len(s.words) for s in gold)
    folder = Path(tempfile.mkdtemp())
    (folder / "raw.txt").write_text("\n\n".join(gold_paragraphs(gold)) + "\n", encoding="utf-8")
    (folder / "words.txt").write_text("".join(" ".join(s.words) + "\n" for s in gold), encoding="utf-8")
    predictor = Predictor.load(args.model)
    trained = choose_segmenter(args.model, args.segmenter, precision=predictor.precision)
    runs = {
        "pre-tokenized (--input text)": lambda: read_text(folder / "words.txt"),
        "raw, rule tokenizer": lambda: read_raw(folder / "raw.txt", rule_segment),
        "raw, trained segmenter": lambda: read_raw(folder / "raw.txt", trained),
    }
    timed(predictor, runs["pre-tokenized (--input text)"]())  # warm-up: caches of spellings filled
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.passes):  # interleaved, so drift in the machine's load hits every input alike
        for name, make in runs.items():
            best[name] = min(best[name], timed(predictor, make()))
    base = words / best["pre-tokenized (--input text)"]
    rows = [
        {"input": name, "cpu_seconds": s, "words_per_second": words / s, "ratio": words / s / base}
        for name, s in best.items()
    ]
    result = {"machine": machine(), "model": args.model, "precision": predictor.precision, "words": words, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "raw_speed.json").write_text(json.dumps(result, indent=2))
    lines = [
        f"EWT test, {words:,} gold words; model {args.model} ({predictor.precision}); best of {args.passes} passes, one thread",
        "",
        "| input | CPU s | words/s | ratio to pre-tokenized |",
        "| --- | --- | --- | --- |",
        *(f"| {r['input']} | {r['cpu_seconds']:.2f} | {r['words_per_second']:,.0f} | {r['ratio']:.2f} |" for r in rows),
    ]
    (RESULTS / "raw_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
