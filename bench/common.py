"""Shared helpers for the benchmarks: what machine, running the CLI, writing results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def run(command: list[str]) -> subprocess.CompletedProcess:
    """Run a CLI command, echoing it, and fail loudly."""
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, check=True, capture_output=True, text=True)


def lstmtag_command() -> list[str]:
    return [sys.executable, "-m", "lstmtag"]


def write(name: str, payload: dict, table: str) -> None:
    """bench/results/NAME.json and NAME.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    (RESULTS / f"{name}.md").write_text(table + "\n", encoding="utf-8")
    print(table)


def train_minutes(info: dict) -> float:
    """Training wall time of a model file; an ensemble's members trained side by side, so the longest."""
    if "members" in info:
        return max(member.get("train_seconds", 0) for member in info["members"]) / 60
    return info.get("train_seconds", 0) / 60
