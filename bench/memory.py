"""Peak memory of `lstmtag tag`: one file against a long stream, and what the memory consists of.

    python bench/memory.py [--model en[@PRECISION] ...] [--copies 10] [--no-stream] [--no-breakdown]
                           [--name memory]

For each model, in fresh child processes (one thread, the tagged CoNLL-U written to /dev/null):

* ``test``: ``lstmtag tag`` on EWT test (issue 11's bar: at most 350 MB).
* ``stream``: ``lstmtag tag -`` reading ``--copies`` copies of EWT train from a pipe (2 million words
  at 10 copies; issue 13's bar: a peak within 10% of ``test``'s). RSS is sampled every second, so the
  table also shows whether memory levels off (median of the last two thirds of the samples).
* ``breakdown``: one process doing what ``tag`` does, stage by stage, reporting the RSS after each
  stage and the peak within it (``/proc/self/clear_refs`` resets the peak between stages), and at
  the end what the resident pages are: the Python heap and anonymous maps, and the mapped libraries.

Peaks are the children's ``ru_maxrss`` (kernel accounting of resident pages: the heap, anonymous
maps and the touched pages of mapped libraries). Memory figures do not depend on machine load, so
this bench can run beside other work (``nice -n 19``); the CPU seconds it reports are only a rough
guide there. Writes bench/results/NAME.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import RESULTS, SHARED, machine, write

EWT = SHARED / "ud" / "en_ewt"
MIB = 1024 * 1024
ISSUE_11_MB = 350  # issue 11: peak RSS of tagging EWT test with the shipped model, in MB (10^6 bytes)
ISSUE_13_RATIO = 1.10  # issue 13: the long stream's peak within 10% of EWT test's


def model_args(spec: str) -> list[str]:
    """``path@bf16`` -> ``--model path --precision bf16``."""
    name, _, precision = spec.partition("@")
    return ["--model", name] + (["--precision", precision] if precision else [])


def tag_command(spec: str, source: str) -> list[str]:
    return [sys.executable, "-m", "lstmtag", "tag", *model_args(spec), source]  # stdout goes to /dev/null


def status_kib(pid: int | str, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run_measured(command: list[str], *, feed: Path | None = None, copies: int = 0) -> dict[str, object]:
    """Run ``command`` (feeding ``copies`` of ``feed`` to its stdin), sampling RSS; its peak and CPU time."""
    with tempfile.TemporaryFile() as errors:  # not a pipe: a full pipe would stall the child until it is read
        return _run_measured(command, errors, feed=feed, copies=copies)


def _run_measured(command: list[str], errors, *, feed: Path | None, copies: int) -> dict[str, object]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    started = time.perf_counter()
    child = subprocess.Popen(
        command,
        stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=errors,
        env=env,
    )
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            kib = status_kib(child.pid, "VmRSS")
            if kib:
                samples.append(kib / 1024)

    def pump() -> None:
        assert child.stdin is not None
        try:
            data = feed.read_bytes() if feed else b""
            for _ in range(copies):
                child.stdin.write(data)
            child.stdin.close()
        except BrokenPipeError:
            pass

    threads = [threading.Thread(target=sample, daemon=True)]
    if feed is not None:
        threads.append(threading.Thread(target=pump, daemon=True))
    for thread in threads:
        thread.start()
    _, status, usage = os.wait4(child.pid, 0)
    done.set()
    errors.seek(0)
    stderr = errors.read().decode(errors="replace")
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({child.returncode}):\n{stderr[-2000:]}")
    tail = samples[len(samples) // 3 :] or samples
    return {
        "command": shlex.join(command) + (f" < ({copies} x {feed.name})" if feed else ""),
        "peak_mib": usage.ru_maxrss / 1024,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "wall_seconds": time.perf_counter() - started,
        "samples": len(samples),
        "late_median_mib": statistics.median(tail) if tail else None,
        "late_max_mib": max(tail) if tail else None,
        "late_min_mib": min(tail) if tail else None,
        "timeline_mib": [round(mib, 1) for mib in samples[:: max(1, len(samples) // 60)]],  # about 60 points
    }


# --------------------------------------------------------------------------------------------------
# The breakdown child: what `tag` does, stage by stage.

BREAKDOWN = r"""
import json, os, sys, time
from pathlib import Path

def status():
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            values[key] = int(rest.split()[0]) / 1024
    return values

stages = []
def stage(name, function):
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS, so VmHWM below is this stage's peak
    before = status()["VmRSS"]
    result = function()
    after = status()
    stages.append({"stage": name, "rss_mib": after["VmRSS"], "added_mib": after["VmRSS"] - before,
                   "peak_mib": after["VmHWM"], "anon_mib": after["RssAnon"], "file_mib": after["RssFile"]})
    return result

def smaps():
    totals = {}
    name = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and ":" not in fields[0]:
            path = fields[5] if len(fields) > 5 else ""
            name = "heap (brk)" if path == "[heap]" else "anonymous maps" if not path else (
                Path(path).name if path.startswith("/") else path)
        elif fields[0] == "Rss:":
            totals[name] = totals.get(name, 0) + int(fields[1]) / 1024
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

model, precision, test = sys.argv[1], sys.argv[2] or None, sys.argv[3]
stages.append({"stage": "python", **{k: v for k, v in [("rss_mib", status()["VmRSS"])]}})
torch = stage("import torch", lambda: __import__("torch"))
torch.set_num_threads(1)
stage("import lstmtag.cli (typer, rich)", lambda: __import__("lstmtag.cli"))
from lstmtag import memory
from lstmtag.data import format_conllu, read_sentences
memory.bound_heap()
predictor = stage("import predict, load model", lambda: __import__("lstmtag.predict", fromlist=["Predictor"])
                  .Predictor.load(model, precision=precision))
def tag(limit=None):
    with open(os.devnull, "w") as out:
        for count, (sentence, tagged) in enumerate(predictor.stream(read_sentences(test, "conllu")), 1):
            out.write(format_conllu(sentence, tagged.tags, "conllu"))
            if count == limit:
                break
stage("tag the first sentence", lambda: tag(1))
stage("tag EWT test", tag)
stage("tag EWT test again", tag)
print(json.dumps({"stages": stages, "resident": smaps()}))
"""


def breakdown(spec: str, test: Path) -> dict[str, object]:
    name, _, precision = spec.partition("@")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", BREAKDOWN, name, precision, str(test)], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"breakdown of {spec} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


# --------------------------------------------------------------------------------------------------
# Tables.


def fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def tables(results: dict[str, dict], copies: int) -> str:
    lines = [
        "# Peak memory of `lstmtag tag` (one thread, output to /dev/null)",
        "",
        f"| model | EWT test peak (MiB) | (MB) | ≤ {ISSUE_11_MB} MB | {copies}× EWT train peak (MiB) "
        "| late median / max (MiB) | stream / test | ≤ 1.10 | CPU s (test / stream) |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for spec, result in results.items():
        test, stream = result["test"], result.get("stream")
        megabytes = test["peak_mib"] * MIB / 1e6
        ratio = stream["peak_mib"] / test["peak_mib"] if stream else None
        lines.append(
            f"| {spec} | {fmt(test['peak_mib'], 1)} | {fmt(megabytes, 1)} | {'yes' if megabytes <= ISSUE_11_MB else 'no'} "
            f"| {fmt(stream and stream['peak_mib'], 1)} "
            f"| {fmt(stream and stream['late_median_mib'])} / {fmt(stream and stream['late_max_mib'])} "
            f"| {fmt(ratio, 3)} | {'—' if ratio is None else 'yes' if ratio <= ISSUE_13_RATIO else 'no'} "
            f"| {fmt(test['cpu_seconds'], 1)} / {fmt(stream and stream['cpu_seconds'], 1)} |"
        )
    for spec, result in results.items():
        if "breakdown" not in result:
            continue
        lines += [
            "",
            f"## What the memory of `tag` consists of: {spec}",
            "",
            "| stage | RSS after (MiB) | added (MiB) | peak within (MiB) | anonymous (MiB) | mapped files (MiB) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in result["breakdown"]["stages"]:
            lines.append(
                f"| {row['stage']} | {fmt(row['rss_mib'], 1)} | {fmt(row.get('added_mib'), 1)} "
                f"| {fmt(row.get('peak_mib'), 1)} | {fmt(row.get('anon_mib'), 1)} | {fmt(row.get('file_mib'), 1)} |"
            )
        resident = list(result["breakdown"]["resident"].items())
        shown = ", ".join(f"{name} {mib:.1f}" for name, mib in resident[:8])
        rest = sum(mib for _, mib in resident[8:])
        lines += ["", f"Resident at the end (MiB): {shown}, the rest {rest:.1f}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="model[@precision]; repeatable (default: en)")
    parser.add_argument("--copies", type=int, default=10, help="copies of EWT train in the long stream")
    parser.add_argument("--no-stream", action="store_true", help="skip the long stream")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the stage-by-stage breakdown")
    parser.add_argument("--name", default="memory", help="results file name under bench/results/")
    args = parser.parse_args()
    test, train = EWT / "en_ewt-ud-test.conllu", EWT / "en_ewt-ud-train.conllu"
    results: dict[str, dict] = {}
    for spec in args.model or ["en"]:
        result: dict[str, object] = {"test": run_measured(tag_command(spec, str(test)))}
        print(spec, "test", json.dumps(result["test"]), flush=True)
        if not args.no_stream:
            result["stream"] = run_measured(tag_command(spec, "-"), feed=train, copies=args.copies)
            print(spec, "stream", json.dumps(result["stream"]), flush=True)
        if not args.no_breakdown:
            result["breakdown"] = breakdown(spec, test)
        results[spec] = result
    command = "python bench/memory.py " + shlex.join(sys.argv[1:])
    info = machine()
    info["load_average_at_end"] = os.getloadavg()
    table = tables(results, args.copies)
    table += (
        f"\n\nPeaks are the children's ru_maxrss; 1 MiB = 1.048576 MB. Command: `{command}`  \n"
        f"Machine: {info['cpu']}, {info['cores']} cores, load average {info['load_average_at_end'][0]:.1f} "
        f"at the end; Python {info['python']}, torch {info['torch']}; {info['date']}"
    )
    write(args.name, {"command": command, "machine": info, "copies": args.copies, "results": results}, table)


if __name__ == "__main__":
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    main()
