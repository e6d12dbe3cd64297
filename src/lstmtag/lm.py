"""LSTM language model: predict the next character or word, carrying (h, c) from call to call.

``LanguageModel`` is what users hold: ``init_state``, ``step`` (one token, one LSTM step on the
carried state), ``generate`` (streams text; each new token costs one step, never a re-run of the
prefix), ``score`` (perplexity over a stream of chunks, state carried across them) and ``inspect``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lstmtag import checkpoint
from lstmtag.config import Config, LMConfig, saved_config
from lstmtag.inspector import Trace, single, trace_lstm
from lstmtag.limits import MAX_GENERATE_LENGTH, MAX_INSPECT_TOKENS
from lstmtag.metrics import perplexity
from lstmtag.vocab import Vocab

State = tuple[torch.Tensor, torch.Tensor]


class LSTMLanguageModel(nn.Module):
    """Embedding -> stacked nn.LSTM (dropout between layers) -> linear decoder, weights tied if asked.

    Weight tying (Press & Wolf 2017; Inan et al. 2017) shares the embedding with the decoder; it
    needs ``embed_dim == hidden_size``.
    """

    def __init__(self, config: LMConfig, vocab_size: int) -> None:
        super().__init__()
        if config.tie_weights and config.embed_dim != config.hidden_size:
            raise ValueError(
                f"lm.tie_weights needs lm.embed_dim == lm.hidden_size (got {config.embed_dim} and "
                f"{config.hidden_size}); set them equal or set lm.tie_weights = false"
            )
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embed_dim)
        self.lstm = nn.LSTM(
            config.embed_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.decoder = nn.Linear(config.hidden_size, vocab_size)
        if config.tie_weights:
            self.decoder.weight = self.embedding.weight

    def init_state(self, batch_size: int = 1) -> State:
        """Zeros, shaped (num_layers, batch, hidden) for h and for c."""
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)
        weight = self.decoder.weight
        return weight.new_zeros(shape), weight.new_zeros(shape)

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Ids (B, T) -> logits (B, T, V) and the state after the last step."""
        embedded = self.dropout(self.embedding(ids))
        output, state = self.lstm(embedded, state)
        return self.decoder(self.dropout(output)), state

    def step(self, ids: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One token per stream, ids (B,) -> logits (B, V) and the next state; for inference (no dropout).

        The same numbers as ``forward`` on one step (to float rounding), computed with
        ``torch.lstm_cell`` layer by layer: a one-step ``nn.LSTM`` call was measured 8x slower here
        (4.6 ms against 0.6 ms for 2x512), as the fused kernel's set-up dominates a single step.
        """
        x = self.embedding(ids)  # (B, E)
        hs, cs = [], []
        for layer in range(self.config.num_layers):
            weights = [
                getattr(self.lstm, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            ]
            h, c = torch.lstm_cell(x, (state[0][layer], state[1][layer]), *weights)
            hs.append(h)
            cs.append(c)
            x = h
        return self.decoder(x), (torch.stack(hs), torch.stack(cs))


class LMLoss(nn.Module):
    """The training objective, ``forward(inputs, targets) -> loss``, carrying (h, c) from call to call.

    Each call starts from the state the previous one ended with, detached (truncated BPTT); the state
    is a plain attribute, not a buffer, so DDP leaves each worker's own streams alone.
    """

    def __init__(self, model: LSTMLanguageModel, *, bf16: bool = False) -> None:
        super().__init__()
        self.model, self.bf16 = model, bf16
        self.state: State | None = None  # None: zeros (a new pass over the text)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Ids (B, T) and next ids (B, T) -> mean cross-entropy (nats)."""
        state = detach_state(self.state) if self.state is not None else None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits, state = self.model(inputs, state)
        self.state = (state[0].detach().float(), state[1].detach().float())
        return nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())


def detach_state(state: State) -> State:
    """Keep the values, cut the graph: truncated back-propagation through time."""
    return state[0].detach(), state[1].detach()


def tokenize(text: str, unit: str) -> list[str]:
    """Characters, or whitespace-separated words with ``<eos>`` at each line end (as word_language_model)."""
    if unit == "char":
        return list(text)
    tokens = []
    for line in text.split("\n"):
        tokens.extend(line.split())
        tokens.append("<eos>")
    return tokens[:-1]  # the last piece has no line end after it


@dataclass
class LanguageModel:
    """A trained language model with its vocabulary: the user-facing object."""

    model: LSTMLanguageModel
    vocab: Vocab
    config: Config
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return self.config.lm.unit

    @property
    def is_char_model(self) -> bool:
        return self.unit == "char"

    def encode(self, text: str | list[str]) -> list[int]:
        """Token ids; characters or words outside the vocabulary become ``<unk>``."""
        tokens = tokenize(text, self.unit) if isinstance(text, str) else text
        return self.vocab.ids(tokens)

    def init_state(self, batch_size: int = 1) -> State:
        return self.model.init_state(batch_size)

    @torch.no_grad()
    def step(self, token: str | int, state: State | None = None) -> tuple[torch.Tensor, State]:
        """One token in, next-token logits (V,) and the new state out."""
        self.model.eval()
        index = token if isinstance(token, int) else self.vocab.id(token)
        logits, state = self.model.step(torch.tensor([index]), state or self.init_state())
        return logits[0], state

    def generate(
        self,
        prompt: str,
        length: int,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield ``length`` new tokens after ``prompt``, one LSTM step each on the carried state.

        Bad settings raise ``ValueError`` here, before the first token (the tokens come lazily).
        """
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number above 0, got {temperature}")
        if not 0 <= length <= MAX_GENERATE_LENGTH:
            raise ValueError(f"length must be between 0 and {MAX_GENERATE_LENGTH}, got {length}")
        if top_k < 0:
            raise ValueError(f"top_k must be 0 (all tokens) or more, got {top_k}")
        return self._generate(prompt, length, temperature=temperature, top_k=top_k, seed=seed)

    @torch.no_grad()
    def _generate(self, prompt: str, length: int, *, temperature: float, top_k: int, seed: int | None) -> Iterator[str]:
        self.model.eval()
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        ids = self.encode(prompt) if prompt else [self.vocab.id("\n" if self.is_char_model else "<eos>")]
        logits, state = self.model(torch.tensor([ids]), self.init_state())  # the prompt: one call
        logits = logits[0, -1]
        separator = "" if self.is_char_model else " "
        for _ in range(length):
            scores = logits / temperature
            scores[0] = -math.inf  # never <pad>
            if top_k > 0:
                threshold = scores.topk(min(top_k, scores.numel())).values[-1]
                scores = scores.masked_fill(scores < threshold, -math.inf)
            index = int(torch.multinomial(scores.softmax(-1), 1, generator=generator))
            token = self.vocab.itos[index]
            yield ("\n" if token == "<eos>" else token) + ("" if token == "<eos>" else separator)
            logits, state = self.model.step(torch.tensor([index]), state)
            logits = logits[0]

    @torch.no_grad()
    def score(self, chunks: Iterable[str]) -> dict[str, float]:
        """Mean loss (nats), bits per token and perplexity over text arriving in chunks.

        The state and the last token of each chunk carry into the next, so the result does not
        depend on how the text is cut. The first token is only context (it has no prediction).
        """
        self.model.eval()
        state, previous = self.init_state(), None
        total, count = 0.0, 0
        loss = nn.CrossEntropyLoss(reduction="sum")
        for chunk in chunks:
            ids = self.encode(chunk) if not self.is_char_model else self.vocab.ids(chunk)
            if previous is not None:
                ids = [previous, *ids]
            if len(ids) < 2:
                previous = ids[-1] if ids else previous
                continue
            inputs = torch.tensor([ids[:-1]])
            logits, state = self.model(inputs, state)
            total += float(loss(logits[0], torch.tensor(ids[1:])))
            count += len(ids) - 1
            previous = ids[-1]
        if count == 0:
            raise ValueError("nothing to score: the text needs at least two tokens")
        return {**perplexity(total, count), "tokens": count}

    def inspect(self, text: str | list[str]) -> Trace:
        """h, c and the gates of every layer for a text (characters, or words for a word model)."""
        tokens = list(text) if self.is_char_model and isinstance(text, str) else list(text)
        if isinstance(text, str) and not self.is_char_model:
            tokens = text.split()
        if not 1 <= len(tokens) <= MAX_INSPECT_TOKENS:  # every vector of every step is kept
            raise ValueError(f"inspect takes 1 to {MAX_INSPECT_TOKENS} tokens, got {len(tokens)}")
        ids = torch.tensor([self.vocab.ids(tokens)])
        self.model.eval()
        with torch.no_grad():
            embedded = self.model.embedding(ids)
            logits, _ = self.model(ids)
        _, _, traces = trace_lstm(self.model.lstm, embedded, module="lm")
        probs = logits[0].softmax(-1)
        best = probs.argmax(-1)
        following = [{"tag": self.vocab.itos[int(i)], "prob": float(probs[t, i])} for t, i in enumerate(best)]
        return Trace(tokens, {"next": following}, single(traces))

    def to_file(self) -> checkpoint.ModelFile:
        return checkpoint.ModelFile(
            "lm", self.config.to_dict(), {"tokens": self.vocab.to_list()}, dict(self.model.state_dict()), self.info
        )

    @classmethod
    def from_file(cls, model_file: checkpoint.ModelFile, source: str) -> LanguageModel:
        try:
            config = saved_config(model_file.config)
            vocab = Vocab(model_file.vocabs["tokens"])
            model = LSTMLanguageModel(config.lm, len(vocab))
            model.load_state_dict(model_file.tensors, strict=True)
        except (ValueError, KeyError, RuntimeError, TypeError) as error:
            raise checkpoint.ModelFileError(
                f"{source}: language model file does not match its config: {error}"
            ) from None
        model.eval()
        return cls(model, vocab, config, model_file.info)
