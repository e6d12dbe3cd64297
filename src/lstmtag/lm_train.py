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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lstmtag import checkpoint, devices, distributed, loop
from lstmtag.config import Config
from lstmtag.distributed import Context
from lstmtag.language_model import LanguageModel
from lstmtag.lm import LMLoss, LSTMLanguageModel, tokenize
from lstmtag.vocab import Vocab

LMProgress = loop.Progress  # event "step", or "eval" with the validation loss as ``score``


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
    """Mean cross-entropy (nats) over ``data`` (streams, N), state carried across windows, on ``model``'s device."""
    model.eval()
    data = data.to(devices.of(model))
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
    """Train on ``text`` (the last ``valid_fraction`` held out unless ``valid_text`` is given).

    Under torchrun (distributed.py) every worker calls this with the same arguments and carries its
    own share of the ``lm.batch_size`` streams.
    """
    settings = config.lm
    if settings.unit not in ("char", "word"):
        raise ValueError(f"lm.unit must be 'char' or 'word', got {settings.unit!r}")
    device = devices.resolve(settings.device)
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
    model = LSTMLanguageModel(settings, len(vocab)).to(device)  # the text stays on the CPU: a window at a time moves
    task = LMTask(train_data, valid_data, vocab, config, model, out, info=dict(info or {}))
    loop_settings = loop.Settings(
        epochs=settings.epochs,
        lr=settings.lr,
        clip=settings.clip,
        seed=settings.seed,
        lr_floor=0.02,
        weight_decay=settings.weight_decay,
        max_minutes=settings.max_minutes,
        eval_every=settings.eval_every,
        higher_is_better=False,
        report_every=10,
    )
    result = loop.fit(task, loop_settings, out, config=config.to_dict(), resume=resume, on_progress=on_progress)
    return LMResult(result.best_score, result.steps, result.seconds, result.stopped_by, result.milestones)


class LMTask(loop.Task):
    """Language-model training for the loop: windows over parallel streams, validation loss as the score.

    A global batch is one window over all ``lm.batch_size`` streams; each rank reads its own rows and
    carries their (h, c). The resume state holds the whole (h, c), gathered from every rank, so a run
    resumed mid-pass, on any number of workers, continues the same streams.
    """

    def __init__(self, train_data, valid_data, vocab: Vocab, config: Config, model, out, *, info: dict) -> None:
        self.train_data, self.valid_data, self.vocab, self.config, self.out, self.info = (
            train_data,
            valid_data,
            vocab,
            config,
            out,
            info,
        )
        self.model = model
        self.objective = LMLoss(model, bf16=config.lm.bf16)
        self.seq_len = config.lm.seq_len
        self.reset_fraction = config.lm.reset_fraction
        self.steps_per_epoch = math.ceil((train_data.shape[1] - 1) / self.seq_len)

    def batches(self, epoch: int) -> range:
        return range(0, self.steps_per_epoch * self.seq_len, self.seq_len)  # window start positions

    def piece(self, position: int, context: Context, rng: random.Random) -> tuple[tuple, float]:
        streams = self.train_data.shape[0]
        if streams < context.world:
            raise ValueError(f"lm.batch_size is {streams} streams for {context.world} workers: give each one at least")
        share = distributed.share(streams, context)
        rows = self.train_data[share]
        inputs = rows[:, position : position + self.seq_len]
        targets = rows[:, position + 1 : position + 1 + self.seq_len]
        # Some streams start this window from zeros, as generation from a prompt does (lm.reset_fraction).
        keep = (
            torch.tensor([rng.random() >= self.reset_fraction for _ in range(rows.shape[0])])
            if self.reset_fraction
            else None
        )
        return (inputs[:, : targets.shape[1]], targets, keep), context.world * rows.shape[0] / streams

    def tokens(self, position: int) -> int:
        return self.train_data.shape[0] * min(self.seq_len, self.train_data.shape[1] - 1 - position)

    def start_epoch(self) -> None:
        self.objective.state = None  # a new pass over the text starts fresh

    def evaluate(self, model) -> float:
        return evaluate(model, self.valid_data, self.seq_len)

    def save_model(self, model, score: float, info: dict) -> None:
        best_info = {**self.info, "step": info["step"], "valid_loss": score, "train_seconds": info["train_seconds"]}
        checkpoint.save(self.out, LanguageModel(devices.on_cpu(model), self.vocab, self.config, best_info).to_file())

    def fingerprint(self) -> dict[str, str]:
        return {
            "training text": distributed.digest(self.train_data.numpy().tobytes()),
            "validation text": distributed.digest(self.valid_data.numpy().tobytes()),
        }

    def carried(self, context: Context) -> dict[str, torch.Tensor]:
        state = self.objective.state
        if state is None:
            rows = self.train_data[distributed.share(self.train_data.shape[0], context)].shape[0]
            state = self.model.init_state(rows)
        return {"h": distributed.gather_rows(state[0], 1, context), "c": distributed.gather_rows(state[1], 1, context)}

    def restore_carried(self, tensors: dict[str, torch.Tensor], context: Context) -> None:
        rows, device = distributed.share(tensors["h"].shape[1], context), devices.of(self.model)
        self.objective.state = (tensors["h"][:, rows].clone().to(device), tensors["c"][:, rows].clone().to(device))
