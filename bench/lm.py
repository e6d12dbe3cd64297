"""Character LSTM language model on tinyshakespeare: validation loss by wall-clock time, and generation speed.

    python bench/lm.py --model runs/shakespeare_char.safetensors    # measure a model trained by `lstmtag lm train`
    python bench/lm.py --train-minutes 30                          # or train one first (configs/lm_char.toml)

The validation loss is re-measured here on the last 10% of the file (the split `lm train` makes);
the losses reached at 5, 10, 20 and 30 minutes come from the training state that `lm train` wrote
beside the model. Generation speed is batch 1, one thread, at three lengths, to show the cost per
character stays flat (each new character is one LSTM step on the carried state).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import lstmtag
from common import SHARED, lstmtag_command, machine, run, write
from lstmtag.checkpoint import read, state_path

TEXT = SHARED / "text" / "tinyshakespeare.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/shakespeare_char.safetensors")
    parser.add_argument("--train-minutes", type=float, default=0.0, help="train first, with this budget")
    parser.add_argument(
        "--short-model",
        default="runs/shakespeare_5min.safetensors",
        help="a model trained with --max-minutes 5 (its own LR schedule), reported if present",
    )
    args = parser.parse_args()
    if args.train_minutes == 0 and not Path(args.model).is_file():
        args.train_minutes = 30.0  # nothing to measure yet: train the model first
    if args.train_minutes > 0:
        run(
            [
                *lstmtag_command(),
                "lm",
                "train",
                "--text",
                str(TEXT),
                "--config",
                "configs/lm_char.toml",
                "--out",
                args.model,
                "--max-minutes",
                str(args.train_minutes),
            ]
        )
    torch.set_num_threads(1)
    lm = lstmtag.load(args.model)
    text = TEXT.read_text(encoding="utf-8")
    valid = text[int(len(text) * 0.9) :]
    scored = lm.score([valid[i : i + 65536] for i in range(0, len(valid), 65536)])
    state_file = state_path(args.model)
    milestones = read(state_file).info["run"]["milestones"] if state_file.is_file() else {}
    speeds = {}
    for length in (200, 1000, 4000):
        started = time.perf_counter()
        produced = "".join(lm.generate("ROMEO:", length, temperature=0.8, seed=1))
        speeds[length] = len(produced) / (time.perf_counter() - started)
    sample = "".join(lm.generate("ROMEO:", 300, temperature=0.8, seed=1))
    results = {
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": machine(),
        "model": args.model,
        "train_info": lm.info,
        "valid_loss": scored["loss"],
        "valid_bits_per_char": scored["bits_per_token"],
        "milestones": milestones,
        "generation_chars_per_second": speeds,
        "sample": "ROMEO:" + sample,
    }
    lines = [
        "| measure | value |",
        "| --- | --- |",
        f"| validation loss (last 10%, re-measured) | {scored['loss']:.3f} nats/char ({scored['bits_per_token']:.3f} bits/char) |",
    ]
    for key, value in milestones.items():
        lines.append(f"| best validation loss by {key} of training | {value:.3f} nats/char |")
    lines.append(f"| training time | {lm.info.get('train_seconds', 0) / 60:.1f} min to the best checkpoint |")
    if Path(args.short_model).is_file():
        short = lstmtag.load(args.short_model)
        short_loss = short.score([valid[i : i + 65536] for i in range(0, len(valid), 65536)])["loss"]
        results["short_run"] = {
            "model": args.short_model,
            "valid_loss": short_loss,
            "command": short.info.get("command"),
        }
        lines.append(
            f"| a separate {short.info.get('train_seconds', 0) / 60:.1f}-minute run (`--max-minutes 5`, "
            f"its own schedule) | {short_loss:.3f} nats/char |"
        )
    for length, speed in speeds.items():
        lines.append(f"| generation, {length} chars (batch 1, 1 thread) | {speed:,.0f} chars/s |")
    note = (
        f"\nModel: {lm.config.lm.num_layers}x{lm.config.lm.hidden_size} LSTM, trained by `{lm.info.get('command')}`. "
        f"Measured {results['machine']['date']} on {results['machine']['cpu']} by `{results['command']}`.\n\n"
        f"Sample (temperature 0.8, seed 1):\n\n```\nROMEO:{sample}\n```"
    )
    write("lm", results, "\n".join(lines) + "\n" + note)


if __name__ == "__main__":
    main()
