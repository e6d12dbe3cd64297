"""Tagging speed side by side with spaCy: words/s, latency, peak memory and accuracy on EWT test.

    python bench/speed.py [--system NAME=SPEC ...] [--rounds 3] [--passes 3] [--latency-sentences 300]
                          [--no-train-spacy] [--results-dir bench/results]

A SPEC is a spaCy pipeline directory, or an lstmtag model (`en`, a path, `PATH.onnx`) with an optional
precision suffix (`en@int8`, `en@bf16`, `en@float`, loaded with `lstmtag.load(path, precision=...)`). Without
`--system`: the spaCy peer (trained here first if missing, see bench/spacy_peer.py), `en`, `en@int8`,
`models/en_ewt_accurate.safetensors` if present, and the HMM `runs/hmm.safetensors` (fitted if missing).

How it measures: in each round every system runs in a fresh child process of its own, one thread,
in a rotated order (alternating, so drift in machine load hits every system alike). A child loads its
model and reads the test file (not timed), tags the whole file once to warm up (the accuracy comes
from this pass), then times ``--passes`` passes over all test sentences (lstmtag:
`Predictor.predict`; spaCy: `nlp.pipe(docs, batch_size=1000)` over pre-built Docs, gold tokens both)
and one call per sentence for a fixed sample (latency). Words/s is the median over rounds; the ratio
to spaCy is the median over rounds of the ratio within each round. One more child per round times a
one-thread fp32 matrix multiply and each LSTM encoder alone, to give the encoder's achieved GFLOP/s
against what the hardware does on a plain matmul. Writes bench/results/speed.json and speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEST = HERE.parents[1] / "shared" / "data" / "ud" / "en_ewt" / "en_ewt-ud-test.conllu"
SPACY_MODEL = Path("runs/spacy_ewt/model/model-best")
HMM_MODEL = Path("runs/hmm.safetensors")
ACCURATE_MODEL = Path("runs/en_ewt_accurate.safetensors")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "BLIS_NUM_THREADS": "1"}
SKIP = 3  # a child's exit code for "this system cannot run here", with the reason in its JSON line


# --------------------------------------------------------------------------------------------------
# Children: one system each, or the GFLOP/s measurement. Nothing here imports torch for spaCy.


def read_test(path: Path) -> list[tuple[list[str], list[bool], list[str], list[str]]]:
    """(words, space after each word, gold UPOS, gold XPOS) per sentence; words only, no ranges or empty nodes."""
    sentences = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        words, spaces, upos, xpos = [], [], [], []
        for line in block.splitlines():
            cells = line.split("\t")
            if line.startswith("#") or len(cells) != 10 or not cells[0].isdigit():
                continue
            words.append(cells[1])
            spaces.append("SpaceAfter=No" not in cells[9].split("|"))
            upos.append(cells[3])
            xpos.append(cells[4])
        if words:
            sentences.append((words, spaces, upos, xpos))
    return sentences


def latency_sample(count: int, size: int) -> list[int]:
    """The same evenly spread sentence indices for every system."""
    size = min(size, count)
    return [i * count // size for i in range(size)]


def accuracy(gold: list[list[str]], predicted: list[list[str]]) -> float:
    pairs = [(g, p) for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True)]
    return 100 * sum(g == p for g, p in pairs) / len(pairs)


def timed_passes(run_all, passes: int, words: int) -> list[float]:
    """Words/s of each pass over the whole test set; ``run_all`` builds its inputs untimed and returns a callable."""
    speeds = []
    for _ in range(passes):
        job = run_all()
        started = time.perf_counter()
        job()
        speeds.append(words / (time.perf_counter() - started))
    return speeds


def child_spacy(path: str, test: Path, passes: int, latency_size: int) -> dict:
    # spaCy needs no torch; thinc imports it when installed, which would add torch's memory to spaCy's peak.
    sys.modules["torch"] = None  # type: ignore[assignment]
    import spacy
    from spacy.tokens import Doc

    started = time.perf_counter()
    nlp = spacy.load(path)
    data = read_test(test)
    load_seconds = time.perf_counter() - started
    words = sum(len(s[0]) for s in data)

    def docs() -> list:
        return [Doc(nlp.vocab, words=w, spaces=s) for w, s, _, _ in data]

    tagged = list(nlp.pipe(docs(), batch_size=1000))  # warm-up, and the accuracy
    upos = accuracy([s[2] for s in data], [[t.pos_ for t in doc] for doc in tagged])
    xpos = accuracy([s[3] for s in data], [[t.tag_ for t in doc] for doc in tagged])

    def run_all():
        prepared = docs()
        return lambda: list(nlp.pipe(prepared, batch_size=1000))

    speeds = timed_passes(run_all, passes, words)
    sample = latency_sample(len(data), latency_size)
    singles = [Doc(nlp.vocab, words=data[i][0], spaces=data[i][1]) for i in sample]
    for doc in singles[:20]:
        nlp(Doc(nlp.vocab, words=[t.text for t in doc]))  # warm the single-call path
    latencies = []
    for doc in singles:
        started = time.perf_counter()
        nlp(doc)
        latencies.append(time.perf_counter() - started)
    return {
        "kind": "spacy",
        "version": spacy.__version__,
        "pipeline": nlp.pipe_names,
        "load_seconds": load_seconds,
        "words": words,
        "sentences": len(data),
        "upos": upos,
        "xpos": xpos,
        "words_per_second": statistics.median(speeds),
        "passes": speeds,
        "latencies": latencies,
    }


def load_lstmtag(spec: str):
    """``lstmtag.load`` of ``PATH[@BACKEND]``."""
    import lstmtag

    path, _, backend = spec.partition("@")
    return lstmtag.load(path, precision=backend) if backend else lstmtag.load(path)


def child_lstmtag(spec: str, test: Path, passes: int, latency_size: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from lstmtag.data import read_conllu

    started = time.perf_counter()
    try:
        predictor = load_lstmtag(spec)
    except Exception as error:  # a backend or format this checkout does not have yet: skip, saying why
        return {"skipped": f"lstmtag.load({spec!r}) failed: {type(error).__name__}: {error}"}
    if not hasattr(predictor, "predict"):
        return {"skipped": f"{spec} loads as a {type(predictor).__name__}, not a tagger"}
    sentences = list(read_conllu(test, ["upos", "xpos"]))
    load_seconds = time.perf_counter() - started
    words = sum(len(s.words) for s in sentences)

    tagged = predictor.predict(sentences)  # warm-up, and the accuracy
    scores = {}
    for column in ("upos", "xpos"):
        if column in tagged[0].tags:
            scores[column] = accuracy([s.labels[column] for s in sentences], [t.tags[column] for t in tagged])
    speeds = timed_passes(lambda: lambda: predictor.predict(sentences), passes, words)
    sample = [sentences[i] for i in latency_sample(len(sentences), latency_size)]
    for sentence in sample[:20]:
        predictor.predict([sentence])
    latencies = []
    for sentence in sample:
        started = time.perf_counter()
        predictor.predict([sentence])
        latencies.append(time.perf_counter() - started)
    bundle = getattr(predictor, "bundle", None)
    return {
        "kind": "lstmtag",
        "model": type(bundle.model).__name__ if bundle is not None else type(predictor).__name__,
        "threads": torch.get_num_threads(),
        "load_seconds": load_seconds,
        "words": words,
        "sentences": len(sentences),
        **scores,
        "words_per_second": statistics.median(speeds),
        "passes": speeds,
        "latencies": latencies,
    }


def best_seconds(job, *, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        job()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        job()
        times.append(time.perf_counter() - started)
    return min(times)


def encoders(predictor) -> list[tuple[str, object, object]]:
    """(name, word-level nn.LSTM, character nn.LSTM or None) of a Tagger or of each Ensemble member."""
    model = predictor.bundle.model
    members = (
        [(f"members.{k}.", m) for k, m in enumerate(model.members)] if hasattr(model, "members") else [("", model)]
    )
    found = []
    for prefix, member in members:
        if hasattr(member, "encoder"):
            chars = getattr(member.embedder, "chars", None)
            found.append((prefix + "encoder", member.encoder, chars.lstm if chars is not None else None))
    return found


def lstm_flops(lstm) -> float:
    """FLOPs per time step of an nn.LSTM (all layers and directions): 2 * 4H * (input + recurrent) each.

    Counts the two matrix products only; the gate nonlinearities and the bias add are O(H), under 1%.
    """
    directions = 2 if lstm.bidirectional else 1
    recurrent = lstm.proj_size or lstm.hidden_size
    total = 0.0
    for layer in range(lstm.num_layers):
        inputs = lstm.input_size if layer == 0 else directions * recurrent
        per_direction = 2 * 4 * lstm.hidden_size * (inputs + recurrent)
        if lstm.proj_size:
            per_direction += 2 * lstm.hidden_size * lstm.proj_size
        total += directions * per_direction
    return total


def child_gflops(specs: list[str], test: Path, repeats: int) -> dict:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    peak = 2 * n**3 / best_seconds(lambda: a @ b, repeats=repeats) / 1e9
    data = read_test(test)
    chars_per_word = sum(len(w) for s in data for w in s[0]) / sum(len(s[0]) for s in data)
    result = {"matmul": {"shape": f"{n}x{n} @ {n}x{n}", "gflops": peak}, "models": {}}
    for spec in specs:
        try:
            predictor = load_lstmtag(spec)
            found = encoders(predictor)
        except Exception as error:
            result["models"][spec] = {"skipped": f"{type(error).__name__}: {error}"}
            continue
        rows = []
        with torch.no_grad():
            for name, lstm, char_lstm in found:
                lstm.eval()
                x = torch.randn(64, 20, lstm.input_size)  # (B, T, input): 64 sentences of 20 words
                seconds = best_seconds(lambda lstm=lstm, x=x: lstm(x), repeats=repeats)
                flops = lstm_flops(lstm)
                tokens_per_second = x.shape[0] * x.shape[1] / seconds
                # The matmul an LSTM step does: 64 sequences x (input + H) -> 4H gates.
                shape = (64, lstm.input_size + lstm.hidden_size, 4 * lstm.hidden_size)
                m = torch.randn(shape[0], shape[1])
                w = torch.randn(shape[1], shape[2])
                small = 2 * shape[0] * shape[1] * shape[2] / best_seconds(lambda m=m, w=w: m @ w, repeats=50) / 1e9
                rows.append(
                    {
                        "encoder": name,
                        "input": lstm.input_size,
                        "hidden": lstm.hidden_size,
                        "layers": lstm.num_layers,
                        "bidirectional": lstm.bidirectional,
                        "mflops_per_token": flops / 1e6,
                        "tokens_per_second": tokens_per_second,
                        "gflops": flops * tokens_per_second / 1e9,
                        "lstm_matmul": {"shape": "x".join(map(str, shape)), "gflops": small},
                        "char_mflops_per_word": lstm_flops(char_lstm) * chars_per_word / 1e6 if char_lstm else 0.0,
                    }
                )
        result["models"][spec] = {"encoders": rows}
    result["chars_per_word"] = chars_per_word
    return result


def child_main(args: argparse.Namespace) -> None:
    if args.child == "gflops":
        result = child_gflops(args.gflops_spec, args.test, args.repeats)
    elif is_spacy(args.child):
        result = child_spacy(args.child, args.test, args.passes, args.latency_sentences)
    else:
        result = child_lstmtag(args.child, args.test, args.passes, args.latency_sentences)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))
    sys.exit(SKIP if "skipped" in result else 0)


# --------------------------------------------------------------------------------------------------
# Parent: rounds of children, medians, ratios, tables.


def is_spacy(spec: str) -> bool:
    return (Path(spec) / "meta.json").is_file()


def is_torch_lstmtag(spec: str) -> bool:
    return not is_spacy(spec) and "@" not in spec and not spec.endswith(".onnx")


def run_child(spec: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", spec, "--test", str(args.test)]
    command += ["--passes", str(args.passes), "--latency-sentences", str(args.latency_sentences)]
    command += ["--repeats", str(args.repeats)]
    if spec == "gflops":
        command += [arg for s in args.gflops_specs for arg in ("--gflops-spec", s)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
    lines = done.stdout.strip().splitlines()
    if done.returncode not in (0, SKIP) or not lines:
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"child for {spec!r} failed with exit code {done.returncode}")
    return json.loads(lines[-1])


def default_systems(args: argparse.Namespace) -> list[str]:
    systems = []
    if SPACY_MODEL.exists() or not args.no_train_spacy:
        systems.append(f"spacy={SPACY_MODEL}")
    systems += ["en=en", "en-int8=en@int8"]
    if ACCURATE_MODEL.exists():
        systems.append(f"en-accurate={ACCURATE_MODEL}")
    systems.append(f"hmm={HMM_MODEL}")
    return systems


def prepare(systems: dict[str, str], args: argparse.Namespace) -> None:
    """Train the spaCy peer and fit the HMM when their default files are missing."""
    for spec in systems.values():
        if Path(spec) == SPACY_MODEL and not SPACY_MODEL.exists():
            if args.no_train_spacy:
                raise SystemExit(f"{SPACY_MODEL} is missing; drop --no-train-spacy to train it (14-26 min)")
            import spacy_peer

            seconds = spacy_peer.train()
            print(f"trained the spaCy peer in {seconds / 60:.1f} min", flush=True)
        if Path(spec) == HMM_MODEL and not HMM_MODEL.exists():
            ewt = args.test.parent
            command = [sys.executable, "-m", "lstmtag", "train", "--train", str(ewt / "en_ewt-ud-train.conllu")]
            command += ["--dev", str(ewt / "en_ewt-ud-dev.conllu"), "--config", "configs/hmm.toml"]
            command += ["--out", str(HMM_MODEL)]
            HMM_MODEL.parent.mkdir(parents=True, exist_ok=True)
            print("$", " ".join(command), flush=True)
            subprocess.run(command, check=True, capture_output=True, text=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(name: str, spec: str, runs: list[dict], reference: list[dict] | None) -> dict:
    latencies = [statistics.median(r["latencies"]) * 1000 for r in runs]
    p90s = [percentile(r["latencies"], 0.9) * 1000 for r in runs]
    summary = {
        "system": name,
        "spec": spec,
        "kind": runs[0]["kind"],
        "words_per_second": statistics.median(r["words_per_second"] for r in runs),
        "latency_median_ms": statistics.median(latencies),
        "latency_p90_ms": statistics.median(p90s),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "upos": runs[0].get("upos"),
        "xpos": runs[0].get("xpos"),
        "load_seconds": statistics.median(r["load_seconds"] for r in runs),
        "rounds": [{k: v for k, v in r.items() if k != "latencies"} for r in runs],
    }
    if reference:
        ratios = [r["words_per_second"] / ref["words_per_second"] for r, ref in zip(runs, reference, strict=True)]
        summary["ratio_to_reference"] = statistics.median(ratios)
    return summary


def number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def tables(results: dict) -> str:
    ref = results["reference"]
    lines = [
        f"# Tagging speed on EWT test, one thread ({results['words']:,} words, {results['sentences']:,} sentences)",
        "",
        f"| system | words/s | ratio to {ref or 'reference'} | latency median (ms) | latency p90 (ms) | peak RSS (MiB) "
        "| UPOS | XPOS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in results["systems"]:
        lines.append(
            f"| {s['system']} | {number(s['words_per_second'], 0)} | {number(s.get('ratio_to_reference'), 2)} "
            f"| {number(s['latency_median_ms'], 2)} | {number(s['latency_p90_ms'], 2)} | {number(s['peak_rss_mib'], 0)} "
            f"| {number(s['upos'], 2)} | {number(s['xpos'], 2)} |"
        )
    for s in results["skipped"]:
        lines.append(f"| {s['system']} | skipped: {s['reason']} | | | | | | |")
    gflops = results.get("gflops")
    if gflops:
        lines += [
            "",
            f"## Encoder arithmetic rate against a one-thread fp32 matmul ({gflops['matmul']['shape']}: "
            f"{gflops['matmul']['gflops']:.1f} GFLOP/s)",
            "",
            "Encoder alone on a (64, 20, input) batch of random features, no character part; FLOPs count the "
            "LSTM's matrix products (2 · 4H · (input + H) per token, layer and direction). The character BiLSTM "
            f"costs the last column more per word ({gflops['chars_per_word']:.2f} characters per EWT test word).",
            "",
            "| system | encoder | shape (in, H, layers × dirs) | MFLOP/token | encoder tokens/s | GFLOP/s "
            "| % of 1024² matmul | LSTM-step matmul GFLOP/s (shape) | GFLOP/s in full tagging | char MFLOP/word |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in gflops["rows"]:
            dirs = 2 if row["bidirectional"] else 1
            lines.append(
                f"| {row['system']} | {row['encoder']} | {row['input']}, {row['hidden']}, {row['layers']} × {dirs} "
                f"| {row['mflops_per_token']:.2f} | {row['tokens_per_second']:,.0f} | {row['gflops']:.1f} "
                f"| {100 * row['gflops'] / gflops['matmul']['gflops']:.0f}% "
                f"| {row['lstm_matmul']['gflops']:.1f} ({row['lstm_matmul']['shape']}) "
                f"| {number(row.get('gflops_in_tagging'), 1)} | {row['char_mflops_per_word']:.2f} |"
            )
    m = results["machine"]
    lines += [
        "",
        f"Median of {results['rounds']} rounds; in each round every system ran in a fresh process of its own "
        f"(one thread, order rotated per round), {results['passes']} timed passes over the test set after a "
        f"warm-up pass, latency from one call per sentence on the same {results['latency_sentences']} sentences. "
        "Ratios are medians of the per-round ratios. Model load and file reading are not timed; peak RSS includes "
        "them (the spaCy process runs without torch imported).",
        "",
        f"Command: `{results['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, load average {m['load_average']} at the start; Python "
        f"{m['python']}, torch {m['torch']}, spaCy {m['spacy']}; {m['date']}",
    ]
    return "\n".join(lines)


def parent_main(args: argparse.Namespace) -> None:
    from common import machine

    systems: dict[str, str] = {}
    for item in args.system or default_systems(args):
        name, sep, spec = item.partition("=")
        if not sep or not name or not spec:
            raise SystemExit(f"--system takes NAME=SPEC, got {item!r}")
        systems[name] = spec
    prepare(systems, args)
    reference = args.reference or next((n for n, s in systems.items() if is_spacy(s)), None)
    if reference is not None and reference not in systems:
        raise SystemExit(f"--reference {reference!r} is not among the systems {list(systems)}")
    args.gflops_specs = list(dict.fromkeys(s for s in systems.values() if is_torch_lstmtag(s)))
    info = machine()
    info["load_average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        info["spacy"] = metadata.version("spacy")
    except metadata.PackageNotFoundError:
        info["spacy"] = None

    runs: dict[str, list[dict]] = {name: [] for name in systems}
    skipped: dict[str, str] = {}
    gflops_runs = []
    jobs = [*systems, "gflops"] if args.gflops_specs and not args.no_gflops else list(systems)
    for round_index in range(args.rounds):
        shift = round_index % len(jobs)
        for job in jobs[shift:] + jobs[:shift]:
            if job in skipped:
                continue
            spec = "gflops" if job == "gflops" else systems[job]
            result = run_child(spec, args)
            if "skipped" in result:
                skipped[job] = result["skipped"]
                print(f"round {round_index + 1}: {job}: skipped ({result['skipped']})", flush=True)
                continue
            if job == "gflops":
                gflops_runs.append(result)
                print(f"round {round_index + 1}: matmul {result['matmul']['gflops']:.1f} GFLOP/s", flush=True)
                continue
            runs[job].append(result)
            print(
                f"round {round_index + 1}: {job}: {result['words_per_second']:,.0f} words/s, "
                f"latency {statistics.median(result['latencies']) * 1000:.2f} ms, "
                f"{result['peak_rss_mib']:.0f} MiB, UPOS {number(result.get('upos'), 2)}",
                flush=True,
            )

    ran = [name for name in systems if name not in skipped]
    reference_runs = runs[reference] if reference in ran else None
    summaries = [summarise(name, systems[name], runs[name], reference_runs) for name in ran]
    first = runs[ran[0]][0] if ran else {"words": 0, "sentences": 0}
    results = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": info,
        "test": str(args.test),
        "words": first["words"],
        "sentences": first["sentences"],
        "rounds": args.rounds,
        "passes": args.passes,
        "latency_sentences": args.latency_sentences,
        "threads": 1,
        "reference": reference if reference in ran else None,
        "systems": summaries,
        "skipped": [{"system": name, "spec": systems[name], "reason": reason} for name, reason in skipped.items()],
        "gflops": gflops_summary(gflops_runs, systems, summaries),
    }
    write(args.results_dir, args.name, results, tables(results))


def gflops_summary(gflops_runs: list[dict], systems: dict[str, str], summaries: list[dict]) -> dict | None:
    if not gflops_runs:
        return None
    speed = {s["spec"]: s["words_per_second"] for s in summaries}
    rows = []
    for name, spec in systems.items():
        found = [r["models"].get(spec, {}) for r in gflops_runs]
        if not found or "encoders" not in found[0]:
            continue
        total = sum(e["mflops_per_token"] for e in found[0]["encoders"])
        for k, encoder in enumerate(found[0]["encoders"]):
            row = dict(encoder)
            for key in ("tokens_per_second", "gflops"):
                row[key] = statistics.median(r["encoders"][k][key] for r in found)
            row["lstm_matmul"] = {
                "shape": encoder["lstm_matmul"]["shape"],
                "gflops": statistics.median(r["encoders"][k]["lstm_matmul"]["gflops"] for r in found),
            }
            # What the whole tagger's words/s means in encoder arithmetic (all members' encoders together).
            row["gflops_in_tagging"] = total * speed[spec] / 1e3 if spec in speed and k == 0 else None
            rows.append({"system": name, "spec": spec, **row})
    return {
        "matmul": {
            "shape": gflops_runs[0]["matmul"]["shape"],
            "gflops": statistics.median(r["matmul"]["gflops"] for r in gflops_runs),
        },
        "chars_per_word": gflops_runs[0]["chars_per_word"],
        "rows": rows,
        "peak_rss_mib": max(r["peak_rss_mib"] for r in gflops_runs),
    }


def write(folder: Path, name: str, payload: dict, table: str) -> None:
    """FOLDER/NAME.json and NAME.md, as common.write does for bench/results."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    (folder / f"{name}.md").write_text(table + "\n", encoding="utf-8")
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", action="append", help="NAME=SPEC, repeatable (see the module docstring)")
    parser.add_argument("--reference", help="the system ratios are to (default: the first spaCy system)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passes", type=int, default=3, help="timed passes over the test set per child")
    parser.add_argument("--latency-sentences", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats of each GFLOP/s measurement")
    parser.add_argument("--test", type=Path, default=TEST)
    parser.add_argument("--no-train-spacy", action="store_true", help="fail instead of training a missing peer")
    parser.add_argument("--no-gflops", action="store_true")
    parser.add_argument("--results-dir", type=Path, default=HERE / "results")
    parser.add_argument("--name", default="speed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--gflops-spec", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
    else:
        parent_main(args)


if __name__ == "__main__":
    main()
