"""Lemmas from edit scripts alone or with the lemma lexicon: accuracy on EWT dev (and test), and the speed cost.

    python bench/lemma_decoding.py [--model models/en_ewt.safetensors] [--rounds 5] [--test]

Builds the model's lemma lexicon from EWT train exactly as ``lstmtag pack --lemma-lexicon`` does
(``pack_cli.lemma_lexicon``), then scores lemma accuracy on dev with the edit scripts alone, with the
lexicon, and with two variants that show the choices made on dev (the lexicon without its numbers
rule; every unambiguous training pair, unpruned). ``--test`` also scores EWT test, the two shipped
variants only (look at it once). Speed: ``Predictor.predict`` over dev in one thread, CPU time
(``process_time``), with and without the lexicon (and a second predictor without it, the control) in
rounds of rotating order after a warm-up round each, median words/s; and the lemma step alone (scripts to lemmas), whose cost does not shrink with a
faster LSTM. Writes bench/results/lemma_decoding.json and lemma_decoding.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from dataclasses import replace

import torch

from common import SHARED, machine, write
from lstmtag.data import load_labelled
from lstmtag.lemma import apply_all
from lstmtag.lexicon import LemmaLexicon, build
from lstmtag.models import load_tagger
from lstmtag.pack_cli import lemma_lexicon
from lstmtag.predict import Predictor

EWT = SHARED / "ud" / "en_ewt"
COLUMNS = ["upos", "xpos", "feats", "lemma"]


def accuracy(predictor: Predictor, sentences) -> dict[str, float]:
    columns = predictor.evaluate(sentences)["columns"]
    return {name: columns[name]["accuracy"] for name in ("lemma", "feats", "upos", "xpos") if name in columns}


def speed(predictors: dict[str, Predictor], sentences, rounds: int) -> dict[str, dict[str, float]]:
    """Median words/s (CPU time) of each predictor over ``sentences``, in rotating rounds after a warm-up."""
    words = sum(len(s.words) for s in sentences)
    seconds: dict[str, list[float]] = {name: [] for name in predictors}
    for name in predictors:
        predictors[name].predict(sentences)  # warm: character features, spellings, lemma caches
    for round_ in range(rounds):
        order = list(predictors)[round_ % len(predictors) :] + list(predictors)[: round_ % len(predictors)]
        for name in order:
            started = time.process_time()
            predictors[name].predict(sentences)
            seconds[name].append(time.process_time() - started)
    return {
        name: {
            "words_per_second": words / statistics.median(values),
            "best_words_per_second": words / min(values),
            "seconds": values,
        }
        for name, values in seconds.items()
    }


def lemma_step(lexicon: LemmaLexicon, predictor: Predictor, sentences, rounds: int) -> dict[str, float]:
    """CPU microseconds per word of the lemma step alone (scripts -> lemmas, sentence by sentence, as
    ``Predictor.finish`` does), without and with the lexicon, alternating rounds after a warm-up."""
    predictor.lemma_scripts = False  # so the predicted lemma column holds the raw edit scripts
    tagged = predictor.predict(sentences)
    predictor.lemma_scripts = True
    inputs = [(t.tags["lemma"], s.words, t.tags[lexicon.column]) for s, t in zip(sentences, tagged, strict=True)]
    steps = {
        "edit scripts alone": lambda: [apply_all(edits, words) for edits, words, _ in inputs],
        "with the lexicon": lambda: [lexicon.lemmas(edits, words, tags) for edits, words, tags in inputs],
    }
    words = sum(len(s.words) for s in sentences)
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        step()  # warm the caches
    for round_ in range(rounds):
        for name in list(steps) if round_ % 2 == 0 else list(reversed(steps)):
            started = time.process_time()
            steps[name]()
            seconds[name].append(time.process_time() - started)
    return {name: 1e6 * statistics.median(values) / words for name, values in seconds.items()}


def memory_of(text: str) -> int:
    """Bytes Python allocates to hold the lexicon parsed from ``text`` (tracemalloc)."""
    tracemalloc.start()
    parsed = LemmaLexicon.from_json(text)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del parsed
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/en_ewt.safetensors", help="a tagger with a lemma head")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per variant")
    parser.add_argument("--test", action="store_true", help="also score EWT test (once)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    bundle = replace(load_tagger(args.model), lexicon=None)
    train_file, dev_file, test_file = (EWT / f"en_ewt-ud-{split}.conllu" for split in ("train", "dev", "test"))
    started = time.perf_counter()
    lexicon = lemma_lexicon(bundle, train_file, precision=None)
    build_seconds = time.perf_counter() - started
    train = load_labelled(train_file, "conllu", [lexicon.column, "lemma"])
    variants = {
        "edit scripts alone": None,
        "with the lexicon": lexicon,
        "lexicon without the numbers rule": LemmaLexicon(lexicon.entries, column=lexicon.column),
        "every unambiguous pair (unpruned)": build(train, column=lexicon.column),
    }
    predictors = {name: Predictor(replace(bundle, lexicon=table)) for name, table in variants.items()}
    dev = load_labelled(dev_file, "conllu", COLUMNS)
    dev_scores = {name: accuracy(predictor, dev) for name, predictor in predictors.items()}
    shipped = ["edit scripts alone", "with the lexicon"]
    test_scores = {}
    if args.test:
        test = load_labelled(test_file, "conllu", COLUMNS)
        test_scores = {name: accuracy(predictors[name], test) for name in shipped}
    # A second predictor without the lexicon is the control: how far two identical ones differ here.
    control = "edit scripts alone, a second predictor"
    timing = speed({**{name: predictors[name] for name in shipped}, control: Predictor(bundle)}, dev, args.rounds)
    step = lemma_step(lexicon, Predictor(bundle), dev, args.rounds)
    text = lexicon.to_json()
    payload = {
        "command": " ".join(["python", *sys.argv]),
        "model": args.model,
        "data": {"train": str(train_file), "dev": str(dev_file), "test": str(test_file) if args.test else None},
        "machine": {**machine(), "threads": torch.get_num_threads(), "niceness": os.nice(0)},
        "precision": predictors[shipped[0]].precision,
        "lexicon": {
            "entries": len(lexicon),
            "column": lexicon.column,
            "numbers": lexicon.numbers,
            "json_characters": len(text),
            "python_bytes": memory_of(text),
            "unpruned_entries": len(variants["every unambiguous pair (unpruned)"]),
            "build_seconds": round(build_seconds, 1),
        },
        "dev": dev_scores,
        "test": test_scores,
        "speed": timing,
        "lemma_step_microseconds_per_word": step,
    }
    before, after = (timing[name]["words_per_second"] for name in shipped)
    best_before, best_after = (timing[name]["best_words_per_second"] for name in shipped)
    lines = [
        "# Lemmas: edit scripts alone or with the lemma lexicon",
        "",
        f"Command: `{payload['command']}`",
        f"Model: `{args.model}` (tagging precision here: {payload['precision']}); data: EWT train (lexicon), dev"
        + (", test" if args.test else ""),
        f"Machine: {payload['machine']['cpu']}, {payload['machine']['cores']} cores, torch {payload['machine']['torch']}, "
        f"{payload['machine']['date']}, 1 thread, niceness {payload['machine']['niceness']}",
        f"Lexicon: {len(lexicon):,} (form, {lexicon.column}) entries of {payload['lexicon']['unpruned_entries']:,} "
        f"unambiguous training pairs; numbers rule {'on' if lexicon.numbers else 'off'}; "
        f"{len(text) / 1e3:.0f} kB of JSON, {payload['lexicon']['python_bytes'] / 2**20:.2f} MiB parsed; "
        f"built in {build_seconds:.1f} s",
        "",
        "| lemmas from | dev lemma | dev FEATS | dev UPOS | dev XPOS |"
        + (" test lemma | test FEATS | test UPOS | test XPOS |" if args.test else ""),
        "| --- | --- | --- | --- | --- |" + (" --- | --- | --- | --- |" if args.test else ""),
    ]
    for name, scores in dev_scores.items():
        cells = [f"{scores[c]:.2%}" for c in ("lemma", "feats", "upos", "xpos")]
        if args.test:
            cells += [
                f"{test_scores[name][c]:.2%}" if name in test_scores else "" for c in ("lemma", "feats", "upos", "xpos")
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Speed (Predictor.predict over dev, {args.rounds} rounds of rotating order, median, CPU time): "
        f"{before:,.0f} words/s with the edit scripts alone, {after:,.0f} with the lexicon ({after / before - 1:+.1%}); "
        f"best rounds {best_before:,.0f} and {best_after:,.0f} ({best_after / best_before - 1:+.1%}); rounds took "
        + " and ".join(f"{min(timing[n]['seconds']):.2f}–{max(timing[n]['seconds']):.2f} s" for n in shipped)
        + " (a machine shared with other work); the control, a second predictor without the lexicon: "
        f"{timing[control]['words_per_second']:,.0f} words/s "
        f"({timing[control]['words_per_second'] / before - 1:+.1%}).",
        f"The lemma step alone (scripts to lemmas, sentence by sentence, warm caches, median): "
        f"{step['edit scripts alone']:.3f} µs a word from the scripts alone, {step['with the lexicon']:.3f} µs with "
        f"the lexicon (the whole of tagging here: {1e6 / before:.1f} µs a word).",
    ]
    write("lemma_decoding", payload, "\n".join(lines))


if __name__ == "__main__":
    main()
