"""LSTM language model network: predict the next character or word, carrying (h, c) from call to call.

The network only (tensors in, tensors out); what users hold, with its vocabulary, generation,
scoring and files, is ``language_model.LanguageModel``.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from lstmtag.config import LMConfig

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

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Ids (B, T) and next ids (B, T) -> mean cross-entropy (nats).

        ``keep`` (B,) bool: the streams that carry their state into this window; the others start from zeros.
        """
        state = detach_state(self.state) if self.state is not None else None
        if state is not None and keep is not None and not bool(keep.all()):
            mask = keep.to(state[0].dtype)[None, :, None]  # (1, B, 1)
            state = (state[0] * mask, state[1] * mask)
        autocast = torch.autocast(inputs.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with autocast:
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
