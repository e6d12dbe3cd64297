"""Raw text -> tagged CoNLL-U against pre-tokenized text, in words/s of the same model (issue 12's 80%).

    python bench/raw_speed.py [--model en] [--segmenter SEG.safetensors] [--precision bf16] [--passes 5] [--no-freeze]
                              [--name raw_speed]

One process, one thread. The text is EWT test's own (its ``# text`` lines, a paragraph per
``# newpar``), the words its gold words, so both runs tag the same sentences. Each pass times, in CPU
seconds of this process (steadier than wall time on a shared machine): pre-tokenized sentences
through ``Predictor.stream``; raw text through ``raw.read_raw`` with the rule tokenizer, then with the
trained segmenter, and the tagger; and the trained segmenter alone on the whole text (its share of
the raw run), all interleaved. The best pass of each counts. Words/s divide the gold word count.
``--model`` names the tagger (a shipped name or a file: a single student stands in for the final
``en``); ``--segmenter`` the segmenter (default: the one shipped beside the model); ``--precision``
the tagger's and the segmenter's (default: what the model file names). As ``lstmtag tag`` does, what
is loaded before tagging is frozen out of the garbage collector's passes (``memory.freeze_loaded``);
``--no-freeze`` measures without that, as a library caller who does not freeze gets. Writes
bench/results/NAME.json and .md with the command, the machine and these settings.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import SHARED, machine, write
from lstmtag import memory
from lstmtag.data import format_conllu, load_labelled, read_text
from lstmtag.pipeline import gold_paragraphs
from lstmtag.predict import Predictor, choose_segmenter
from lstmtag.raw import read_raw
from lstmtag.segment import rule_segment

PRE = "pre-tokenized (--input text)"
ALONE = "trained segmenter alone (no tagging)"


def timed(predictor: Predictor, sentences) -> float:
    """CPU seconds to tag ``sentences`` (an iterator, so reading and segmenting are timed too) into CoNLL-U."""
    started = time.process_time()
    for sentence, tagged in predictor.stream(sentences):
        format_conllu(sentence, tagged.tags)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="en")
    parser.add_argument("--segmenter", default=None, help="default: the segmenter shipped beside the model")
    parser.add_argument("--precision", default=None, choices=["float", "int8", "bf16"])
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--no-freeze", action="store_true", help="leave the loaded objects to the collector")
    parser.add_argument("--gold", default=str(SHARED / "ud" / "en_ewt" / "en_ewt-ud-test.conllu"))
    parser.add_argument("--name", default="raw_speed", help="results file name under bench/results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gold = load_labelled(args.gold, "conllu", [])
    words = sum(len(s.words) for s in gold)
    folder = Path(tempfile.mkdtemp())
    text = "\n\n".join(gold_paragraphs(gold)) + "\n"
    (folder / "raw.txt").write_text(text, encoding="utf-8")
    (folder / "words.txt").write_text("".join(" ".join(s.words) + "\n" for s in gold), encoding="utf-8")
    predictor = Predictor.load(args.model, precision=args.precision)
    trained = choose_segmenter(args.model, args.segmenter, precision=predictor.precision)
    if trained is rule_segment:
        raise SystemExit(f"{args.model}: no segmenter beside it; name one with --segmenter")
    if not args.no_freeze:
        memory.freeze_loaded()  # as `lstmtag tag` does after loading

    def alone() -> float:
        started = time.process_time()
        trained(text)
        return time.process_time() - started

    runs = {
        PRE: lambda: timed(predictor, read_text(folder / "words.txt")),
        "raw, rule tokenizer": lambda: timed(predictor, read_raw(folder / "raw.txt", rule_segment)),
        "raw, trained segmenter": lambda: timed(predictor, read_raw(folder / "raw.txt", trained)),
        ALONE: alone,
    }
    runs[PRE]()  # warm-up: caches of spellings filled
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.passes):  # interleaved, so drift in the machine's load hits every input alike
        for name, run in runs.items():
            best[name] = min(best[name], run())
    base = best[PRE]
    rows = [
        {"input": name, "cpu_seconds": s, "words_per_second": words / s, "ratio": base / s, "share": s / base}
        for name, s in best.items()
    ]
    settings = {
        "model": args.model,
        "segmenter": args.segmenter or "beside the model",
        "segmenter_config": {k: v for k, v in vars(trained.config.model).items() if k in SEGMENTER_KEYS},
        "precision": predictor.precision,
        "segmenter_precision": trained.precision,
        "passes": args.passes,
        "frozen": not args.no_freeze,
        "threads": 1,
        "gold": args.gold,
        "words": words,
        "characters": len(text),
    }
    command = " ".join(["python", *sys.argv])
    lines = [
        f"# Raw text against pre-tokenized text (`{command}`)",
        "",
        f"{Path(args.gold).name}, {words:,} gold words, {len(text):,} characters; model {args.model} "
        f"({predictor.precision}); segmenter {settings['segmenter']} ({trained.precision}, "
        + ", ".join(f"{k} {v}" for k, v in settings["segmenter_config"].items())
        + f"); best of {args.passes} passes, one thread, CPU seconds of one process; loaded objects "
        + ("left to the garbage collector" if args.no_freeze else "frozen out of the garbage collector, as `tag` does")
        + f"; {machine()['cpu']}",
        "",
        "| input | CPU s | words/s | ratio to pre-tokenized |",
        "| --- | --- | --- | --- |",
        *(
            f"| {r['input']} | {r['cpu_seconds']:.3f} | {r['words_per_second']:,.0f} | {r['ratio']:.2f} |"
            for r in rows
            if r["input"] != ALONE
        ),
        "",
        f"The trained segmenter alone (no tagging) takes {best[ALONE]:.3f} CPU s: "
        f"{best[ALONE] / base:.0%} of tagging the pre-tokenized text.",
    ]
    write(args.name, {"command": command, "machine": machine(), "settings": settings, "rows": rows}, "\n".join(lines))


SEGMENTER_KEYS = ("char_dim", "hidden_size", "num_layers")


if __name__ == "__main__":
    main()
