"""Load test of `lstmtag serve` on loopback: requests/s, tokens/s and latency at 1, 8 and 32 clients.

    python bench/serve_load.py [--model en] [--requests 400] [--clients 1,8,32]

Starts the server as a child process on 127.0.0.1, sends a bounded number of POST /tag requests
(one EWT dev sentence each) from N concurrent clients, and stops the server. The same client also
loads an empty FastAPI endpoint (bench/empty_server.py) right before each row: the ceiling, so the
service's requests/s is reported as a fraction of what the HTTP stack alone allows here. Writes
bench/results/serve_load.json and serve_load.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from common import SHARED, lstmtag_command, machine, write
from lstmtag.data import read_conllu


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(url: str, sentences: list[list[str]], clients: int, total: int) -> dict:
    latencies: list[float] = []
    errors = 0
    tokens = 0
    counter = iter(range(total))

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors, tokens
        for index in counter:
            sentence = sentences[index % len(sentences)]
            started = time.perf_counter()
            try:
                response = await http.post(url + "/tag", json={"sentences": [sentence]})
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            if ok:
                tokens += len(sentence)
            else:
                errors += 1

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "clients": clients,
        "requests": total,
        "errors": errors,
        "seconds": seconds,
        "requests_per_second": total / seconds,
        "tokens_per_second": tokens / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000,
    }


def wait_for(url: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="en")
    parser.add_argument("--requests", type=int, default=400, help="requests per client count")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--max-wait-ms", type=float, default=0.0)
    args = parser.parse_args()
    sentences = [s.words for s in read_conllu(SHARED / "ud" / "en_ewt" / "en_ewt-ud-dev.conllu")][:500]
    port, empty_port = free_port(), free_port()
    command = [
        *lstmtag_command(),
        "serve",
        "--model",
        args.model,
        "--port",
        str(port),
        "--max-wait-ms",
        str(args.max_wait_ms),
    ]
    empty_command = [sys.executable, str(Path(__file__).with_name("empty_server.py")), str(empty_port)]
    print("$", " ".join(command), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    servers = [subprocess.Popen(c, env=env, stderr=subprocess.DEVNULL) for c in (command, empty_command)]
    url, empty_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{empty_port}"
    rows = []
    try:
        for address in (url, empty_url):
            wait_for(address)
        for n in args.clients.split(","):
            ceiling = asyncio.run(load(empty_url, sentences, int(n), args.requests))
            row = asyncio.run(load(url, sentences, int(n), args.requests))
            row["ceiling_requests_per_second"] = ceiling["requests_per_second"]
            row["fraction_of_ceiling"] = row["requests_per_second"] / ceiling["requests_per_second"]
            rows.append(row)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
    results = {
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": machine(),
        "server": " ".join(command),
        "rows": rows,
    }
    lines = [
        "| clients | requests/s | empty endpoint requests/s | fraction of it | tokens/s | p50 latency | p99 latency | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['clients']} | {row['requests_per_second']:.0f} | {row['ceiling_requests_per_second']:.0f} | "
            f"{row['fraction_of_ceiling']:.2f} | {row['tokens_per_second']:,.0f} | "
            f"{row['p50_ms']:.1f} ms | {row['p99_ms']:.1f} ms | {row['errors']} |"
        )
    note = (
        f"\n{args.requests} requests per row, one EWT dev sentence each (mean {sum(map(len, sentences)) / len(sentences):.1f} "
        f"tokens), server and clients on the same {results['machine']['cores']}-core machine ({results['machine']['cpu']}), "
        f"server on one thread, micro-batching wait {args.max_wait_ms:g} ms. Measured {results['machine']['date']} by "
        f"`{results['command']}`."
    )
    write("serve_load", results, "\n".join(lines) + "\n" + note)


if __name__ == "__main__":
    main()
