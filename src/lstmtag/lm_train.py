"""Training for the language model: parallel streams, truncated BPTT with the state carried.

The text is laid out as ``batch_size`` parallel streams (as pytorch/examples' word_language_model
does) and read in windows of ``seq_len`` tokens; the state at the end of one window starts the next,
detached, so gradients reach back one window while the memory reaches back to the start::

    a b c d e f g h i j k l m n o p q r s t u v w x      text of 24 tokens, 4 streams
    stream 0: a b c d e f        window 1: a b c | window 2: d e f
    stream 1: g h i j k l                  g h i |           j k l
    stream 2: m n o p q r                  m n o |           p q r
    stream 3: s t u v w x                  s t u |           v w x
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lstmtag import checkpoint
from lstmtag.config import Config
from lstmtag.lm import LanguageModel, LSTMLanguageModel, detach_state, tokenize
from lstmtag.vocab import Vocab


@dataclass
class LMProgress:
    step: int
    epoch: int
    loss: float
    tokens_per_second: float
    elapsed: float
    valid_loss: float | None = None
    best_valid_loss: float | None = None
    event: str = "step"  # "step" or "valid"


@dataclass
class LMResult:
    best_valid_loss: float
    steps: int
    seconds: float
    stopped_by: str
    milestones: dict[str, float] = field(default_factory=dict)  # "5 min" -> best validation loss by then


def read_text_file(path: str | Path) -> str:
    """The whole file as text; binary or non-UTF-8 input is an error naming the file and line."""
    from lstmtag.data import DataError

    data = Path(path).read_bytes() if Path(path).is_file() else None
    if data is None:
        raise DataError(str(path), 0, "cannot open: no such file")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise DataError(str(path), line, "looks like a binary file (NUL byte); expected UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(str(path), line, f"not valid UTF-8 ({error.reason})") from None
    if not text.strip():
        raise DataError(str(path), 0, "file holds no text")
    return text


def batchify(ids: torch.Tensor, streams: int) -> torch.Tensor:
    """(N,) -> (streams, N // streams): each row a contiguous stretch of the text."""
    length = ids.numel() // streams
    if length < 2:
        raise ValueError(f"text too short for {streams} streams; lower lm.batch_size")
    return ids[: length * streams].view(streams, length)


def build_vocab(tokens: list[str], config: Config) -> Vocab:
    counts = Counter(tokens)
    return Vocab.from_counts(counts, min_count=config.lm.min_word_count if config.lm.unit == "word" else 1)


def evaluate(model: LSTMLanguageModel, data: torch.Tensor, seq_len: int) -> float:
    """Mean cross-entropy (nats) over ``data`` (streams, N), state carried across windows."""
    model.eval()
    state = model.init_state(data.shape[0])
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, data.shape[1] - 1, seq_len):
            inputs = data[:, start : start + seq_len]
            targets = data[:, start + 1 : start + 1 + seq_len]
            inputs = inputs[:, : targets.shape[1]]
            logits, state = model(inputs, state)
            total += float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum"))
            count += targets.numel()
    return total / max(count, 1)


def train_lm(
    text: str,
    config: Config,
    out: str | Path,
    *,
    valid_text: str | None = None,
    resume: bool = False,
    on_progress: Callable[[LMProgress], None] | None = None,
    info: dict | None = None,
) -> LMResult:
    """Train on ``text`` (the last ``valid_fraction`` held out unless ``valid_text`` is given)."""
    settings = config.lm
    if settings.unit not in ("char", "word"):
        raise ValueError(f"lm.unit must be 'char' or 'word', got {settings.unit!r}")
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    if valid_text is None:
        cut = int(len(text) * (1 - settings.valid_fraction))
        text, valid_text = text[:cut], text[cut:]
    train_tokens = tokenize(text, settings.unit)
    vocab = build_vocab(train_tokens, config)
    train_data = batchify(torch.tensor(vocab.ids(train_tokens)), settings.batch_size)
    valid_data = batchify(torch.tensor(vocab.ids(tokenize(valid_text, settings.unit))), min(settings.batch_size, 16))
    model = LSTMLanguageModel(settings, len(vocab))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    windows_per_epoch = math.ceil((train_data.shape[1] - 1) / settings.seq_len)
    total_steps = settings.epochs * windows_per_epoch
    run = {"step": 0, "best_valid_loss": math.inf, "elapsed": 0.0, "milestones": {}}
    state_file = checkpoint.state_path(out)
    if resume and state_file.is_file():
        run.update(checkpoint.load_training_state(state_file, modules={"model": model}, optimizer=optimizer)["run"])
    budget = settings.max_minutes * 60 if settings.max_minutes > 0 else math.inf
    started = time.perf_counter() - run["elapsed"]
    info = dict(info or {})
    stopped_by = "epochs"
    state = model.init_state(settings.batch_size)
    window_start, window_tokens, loss_sum, loss_count = time.perf_counter(), 0, 0.0, 0
    while run["step"] < total_steps:
        elapsed = time.perf_counter() - started
        if elapsed > budget:
            stopped_by = "time"
            break
        position = (run["step"] % windows_per_epoch) * settings.seq_len
        if position == 0:
            state = model.init_state(settings.batch_size)  # a new pass over the text starts fresh
        inputs = train_data[:, position : position + settings.seq_len]
        targets = train_data[:, position + 1 : position + 1 + settings.seq_len]
        inputs = inputs[:, : targets.shape[1]]
        fraction = max(run["step"] / total_steps, elapsed / budget)
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(fraction, 1.0))))
        model.train()
        state = detach_state(state)
        if settings.reset_fraction > 0:  # some streams start this window from zeros, as a prompt does
            keep = (torch.rand(settings.batch_size) >= settings.reset_fraction).float()[None, :, None]
            state = (state[0] * keep, state[1] * keep)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings.bf16):
            logits, state = model(inputs, state)
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        state = (state[0].float(), state[1].float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
        optimizer.step()
        run["step"] += 1
        window_tokens += targets.numel()
        loss_sum += float(loss.detach())
        loss_count += 1
        if on_progress is not None and run["step"] % 10 == 0:
            now = time.perf_counter()
            on_progress(
                LMProgress(
                    run["step"],
                    run["step"] // windows_per_epoch + 1,
                    loss_sum / loss_count,
                    window_tokens / (now - window_start),
                    now - started,
                )
            )
            window_start, window_tokens, loss_sum, loss_count = now, 0, 0.0, 0
        if run["step"] % settings.eval_every == 0 or run["step"] == total_steps:
            _validate(model, valid_data, vocab, config, out, run, started, info, optimizer, state_file, on_progress)
    if run["step"] % settings.eval_every != 0 and run["step"] != total_steps:
        _validate(model, valid_data, vocab, config, out, run, started, info, optimizer, state_file, on_progress)
    seconds = time.perf_counter() - started
    # Only the milestones the run reached: a half-minute run has no "best by 5 min".
    reached = {key: loss for key, loss in run["milestones"].items() if float(key.split()[0]) * 60 <= seconds}
    return LMResult(run["best_valid_loss"], run["step"], seconds, stopped_by, reached)


def _validate(model, valid_data, vocab, config, out, run, started, info, optimizer, state_file, on_progress) -> None:
    valid_loss = evaluate(model, valid_data, config.lm.seq_len)
    elapsed = time.perf_counter() - started
    if valid_loss < run["best_valid_loss"]:
        run["best_valid_loss"] = valid_loss
        best_info = {**info, "step": run["step"], "valid_loss": valid_loss, "train_seconds": elapsed}
        checkpoint.save(out, LanguageModel(model, vocab, config, best_info).to_file())
    for minutes in (5, 10, 20, 30):  # the best loss reached by each wall-clock milestone
        if elapsed <= minutes * 60:
            key = f"{minutes} min"
            run["milestones"][key] = min(run["milestones"].get(key, math.inf), run["best_valid_loss"])
    run["elapsed"] = elapsed
    checkpoint.save_training_state(
        state_file, config=config.to_dict(), modules={"model": model}, optimizer=optimizer, info={"run": run}
    )
    if on_progress is not None:
        on_progress(LMProgress(run["step"], 0, 0.0, 0.0, elapsed, valid_loss, run["best_valid_loss"], "valid"))
