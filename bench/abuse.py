"""Load-and-abuse run of `lstmtag serve` on loopback: good and bad requests mixed, from N clients.

    python bench/abuse.py [--model en] [--clients 8] [--requests 400] [--max-seconds 120]

Starts the server as a child process on 127.0.0.1 (never another address), learns the answer to
each good request sent alone, then sends a bounded number of requests, one in three good, the rest
bad (malformed, deeply nested, oversized, lone surrogates, over-long tokens, too many tokens, wrong
types, unknown routes, ...), and stops by itself after --requests or --max-seconds, whichever comes
first. Reports the status codes per kind of request, the server's RSS before and after, and
whether any good response's tags differed from its answer alone, and the largest probability
difference (batching changes rounding: ~1e-7 in float, ~1e-5 in bf16, see the README).
Writes bench/results/abuse.json and abuse.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx

from common import SHARED, lstmtag_command, machine, write
from lstmtag.data import read_conllu
from serve_load import free_port

FALLBACK = [["The", "cow", "jumped", "over", "the", "moon", "."], ["It", "rained", "all", "day", "."]]

# name -> (method, route, body bytes or None): each is a request the server must refuse with a 4xx.
BAD: dict[str, tuple[str, str, bytes | None]] = {
    "malformed JSON": ("POST", "/tag", b'{"sentences": [["a"]'),
    "nested 100,000 deep": ("POST", "/tag", b"[" * 100_000 + b"]" * 100_000),
    "body over 1 MB": ("POST", "/tag", b'{"text": "' + b"a " * 600_000 + b'"}'),
    "lone surrogate in sentences": ("POST", "/tag", b'{"sentences": [["ok", "\\ud800"]]}'),
    "lone surrogate in text": ("POST", "/tag", b'{"text": "bad \\udfff text"}'),
    "lone surrogate in /inspect tokens": ("POST", "/inspect", b'{"tokens": ["\\ud800"]}'),
    "token of 100,000 characters": ("POST", "/tag", b'{"sentences": [["' + b"x" * 100_000 + b'"]]}'),
    "sentence of 600 tokens": ("POST", "/tag", b'{"sentences": [[' + b",".join([b'"a"'] * 600) + b"]]}"),
    "300 sentences": ("POST", "/tag", b'{"sentences": [' + b",".join([b'["a"]'] * 300) + b"]}"),
    "/inspect 600 tokens": ("POST", "/inspect", b'{"tokens": [' + b",".join([b'"a"'] * 600) + b"]}"),
    "wrong types": ("POST", "/tag", b'{"sentences": [[1, 2, {"a": null}]]}'),
    "empty token": ("POST", "/tag", b'{"sentences": [["a", " "]]}'),
    "unknown model": ("POST", "/tag", b'{"sentences": [["a"]], "model": "nope"}'),
    "extra field": ("POST", "/tag", b'{"sentences": [["a"]], "extra": 1}'),
    "not UTF-8": ("POST", "/tag", b'{"text": "\xff\xfe"}'),
    "unknown route": ("GET", "/nothing-here", None),
    "wrong method": ("GET", "/tag", None),
}
# Valid but as heavy as the limits allow: must be answered, and must not hurt the good requests.
# 500 distinct spellings of 990 characters each: the character model's worst case within the limits.
HEAVY = b'{"sentences": [[' + b",".join(b'"' + b"y" * 990 + b"%09d" % i + b'"' for i in range(500)) + b"]]}"


def rss_mb(pid: int) -> dict[str, float]:
    """Resident and peak resident memory of a process, from /proc (Linux)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return {"rss_mb": values.get("VmRSS", 0.0), "peak_rss_mb": values.get("VmHWM", 0.0)}


def compare(answer: dict, expected: dict) -> tuple[bool, float]:
    """Whether the tags are equal, and the largest difference of a probability."""
    got, want = answer["sentences"][0], expected["sentences"][0]
    if len(got) != len(want):
        return False, 0.0
    tags_equal, largest = True, 0.0
    for a, b in zip(got, want, strict=True):
        tags_equal &= {k: v for k, v in a.items() if not k.endswith("_prob")} == {
            k: v for k, v in b.items() if not k.endswith("_prob")
        }
        largest = max([largest, *(abs(a[k] - b[k]) for k in a if k.endswith("_prob"))])
    return tags_equal, largest


async def attack(url: str, good: list[list[str]], expected: list[dict], args) -> dict:
    plan = []
    names = [*BAD, "heavy valid"]
    rng = random.Random(args.seed)
    for index in range(args.requests):
        plan.append(("good", index % len(good)) if index % 3 == 0 else (rng.choice(names), None))
    statuses: dict[str, Counter] = defaultdict(Counter)
    changed, failures, largest = 0, 0, 0.0
    deadline = time.monotonic() + args.max_seconds
    queue = iter(plan)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal changed, failures, largest
        for kind, index in queue:
            if time.monotonic() > deadline:
                return
            try:
                if kind == "good":
                    response = await http.post(url + "/tag", json={"sentences": [good[index]]})
                    if response.status_code == 200:
                        tags_equal, difference = compare(response.json(), expected[index])
                        changed += not tags_equal
                        largest = max(largest, difference)
                elif kind == "heavy valid":
                    response = await http.post(
                        url + "/tag", content=HEAVY, headers={"content-type": "application/json"}
                    )
                else:
                    method, route, body = BAD[kind]
                    response = await http.request(
                        method, url + route, content=body, headers={"content-type": "application/json"}
                    )
                    if response.status_code >= 400 and "error" not in response.json():
                        failures += 1  # an error without the documented {"error": ...} shape
                statuses[kind][str(response.status_code)] += 1
            except (httpx.HTTPError, ValueError) as error:
                statuses[kind][type(error).__name__] += 1

    started = time.monotonic()
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=args.clients)) as http:
        await asyncio.gather(*(client(http) for _ in range(args.clients)))
    return {
        "seconds": time.monotonic() - started,
        "sent": sum(sum(c.values()) for c in statuses.values()),
        "statuses": {kind: dict(counts) for kind, counts in sorted(statuses.items())},
        "good_changed": changed,
        "largest_probability_difference": largest,
        "errors_without_error_field": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="en")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="requests in all (a third of them good)")
    parser.add_argument("--max-seconds", type=float, default=120, help="stop sending after this long")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    dev = SHARED / "ud" / "en_ewt" / "en_ewt-ud-dev.conllu"
    good = [s.words for s in read_conllu(dev)][:20] if dev.is_file() else FALLBACK
    port = free_port()
    command = [*lstmtag_command(), "serve", "--model", args.model, "--host", "127.0.0.1", "--port", str(port)]
    print("$", " ".join(command), flush=True)
    server = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("server did not start")
        expected = [httpx.post(url + "/tag", json={"sentences": [s]}, timeout=60).json() for s in good]
        before = rss_mb(server.pid)
        report = asyncio.run(attack(url, good, expected, args))
        after = rss_mb(server.pid)
        alive = httpx.get(url + "/health", timeout=10).status_code == 200
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    tracebacks = stderr.decode("utf-8", "replace").count("Traceback")
    results = {
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": machine(),
        "server": " ".join(command),
        "clients": args.clients,
        **report,
        "rss_before": before,
        "rss_after": after,
        "alive_after": alive,
        "server_tracebacks": tracebacks,
    }
    lines = ["| request | status counts |", "| --- | --- |"]
    for kind, counts in report["statuses"].items():
        lines.append(f"| {kind} | {', '.join(f'{code}: {n}' for code, n in sorted(counts.items()))} |")
    five = sum(
        n
        for counts in report["statuses"].values()
        for code, n in counts.items()
        if not code.startswith("4") and code != "200"
    )
    note = (
        f"\n{report['sent']} requests from {args.clients} clients in {report['seconds']:.1f} s (a third good, one EWT dev "
        f'sentence each); answers other than 2xx/4xx: {five}; error answers without an "error" field: '
        f"{report['errors_without_error_field']}; good answers whose tags differed from the request alone: "
        f"{report['good_changed']} (largest probability difference {report['largest_probability_difference']:.1e}); server RSS {before['rss_mb']:.0f} MB before, {after['rss_mb']:.0f} MB after "
        f"(peak {after['peak_rss_mb']:.0f} MB); tracebacks in the server log: {tracebacks}; alive after: {alive}. "
        f"Measured {results['machine']['date']} on {results['machine']['cpu']} ({results['machine']['cores']} cores) by "
        f"`{results['command']}`."
    )
    write("abuse", results, "\n".join(lines) + "\n" + note)


if __name__ == "__main__":
    main()
