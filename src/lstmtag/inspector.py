"""Recompute an ``nn.LSTM`` step by step from its own weights, keeping h, c and the four gates.

For layer k and direction d, PyTorch stores the input-to-hidden weights ``weight_ih_l{k}`` (with the
suffix ``_reverse`` for the backward direction) as four blocks in the order i, f, g, o, and the same
for ``weight_hh_l{k}``; both biases are added. At each step::

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      input gate: how much new content to write
    f = sigmoid(W_if x + b_if + W_hf h + b_hf)      forget gate: how much of c to keep
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)         cell candidate: the new content
    o = sigmoid(W_io x + b_io + W_ho h + b_ho)      output gate: how much of c to show
    c' = f * c + i * g                              cell state: long-term memory
    h' = o * tanh(c')    (then h' = W_hr h' when proj_size > 0)   hidden state: output, short-term memory

The backward direction reads each sequence from its own last real token to its first, so padding
never enters it; a sequence's h_n and c_n are taken at its true last step, as packed ``nn.LSTM`` does.
The result equals ``nn.LSTM`` to float rounding (the tests check 1e-6).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

GATES = ("i", "f", "g", "o")


@dataclass
class LayerTrace:
    """One layer and direction over a batch: every array is (B, T, size), indexed by token position."""

    module: str
    layer: int
    direction: str  # "forward" or "backward"
    h: torch.Tensor
    c: torch.Tensor
    i: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    o: torch.Tensor


def _reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row of x (B, T, ...) within its own length; padding stays where it is."""
    steps = x.shape[1]
    positions = torch.arange(steps)[None, :].expand(x.shape[0], steps)
    source = torch.where(positions < lengths[:, None], lengths[:, None] - 1 - positions, positions)
    return x.gather(1, source.view(*source.shape, *([1] * (x.dim() - 2))).expand_as(x))


def _run_direction(
    lstm: nn.LSTM, layer: int, reverse: bool, x: torch.Tensor, lengths: torch.Tensor, h: torch.Tensor, c: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """One layer, one direction. x (B, T, in), h (B, out), c (B, hidden)."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    w_ih, w_hh = getattr(lstm, f"weight_ih{suffix}"), getattr(lstm, f"weight_hh{suffix}")
    b_ih = getattr(lstm, f"bias_ih{suffix}") if lstm.bias else None
    b_hh = getattr(lstm, f"bias_hh{suffix}") if lstm.bias else None
    w_hr = getattr(lstm, f"weight_hr{suffix}") if lstm.proj_size > 0 else None
    if reverse:
        x = _reverse_within(x, lengths)
    projected_inputs = torch.nn.functional.linear(x, w_ih, b_ih)  # (B, T, 4H): all steps at once
    batch, steps, _ = x.shape
    record: dict[str, list[torch.Tensor]] = {name: [] for name in ("h", "c", *GATES)}
    for t in range(steps):
        gates = projected_inputs[:, t] + torch.nn.functional.linear(h, w_hh, b_hh)
        i, f, g, o = gates.chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        new_c = f * c + i * g
        new_h = o * torch.tanh(new_c)
        if w_hr is not None:
            new_h = torch.nn.functional.linear(new_h, w_hr)
        real = (t < lengths)[:, None]
        h = torch.where(real, new_h, h)  # frozen after the sequence ends: h_n at its last real token
        c = torch.where(real, new_c, c)
        for name, value in zip(("h", "c", *GATES), (new_h, new_c, i, f, g, o), strict=True):
            record[name].append(torch.where(real, value, torch.zeros_like(value)))
    stacked = {name: torch.stack(values, dim=1) for name, values in record.items()}  # (B, T, size)
    if reverse:
        stacked = {name: _reverse_within(value, lengths) for name, value in stacked.items()}
    return stacked, h, c


@torch.no_grad()
def trace_lstm(
    lstm: nn.LSTM,
    inputs: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor] | None = None,
    *,
    lengths: torch.Tensor | None = None,
    module: str = "lstm",
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], list[LayerTrace]]:
    """Run ``lstm`` by hand: the same (output, (h_n, c_n)) as ``lstm``, plus a trace of every step.

    Args:
        lstm: any ``nn.LSTM`` (layers, bidirectional, proj_size, batch_first all honoured).
        inputs: (T, B, input_size), or (B, T, input_size) when ``lstm.batch_first``; or unbatched (T, input_size).
        state: optional (h0, c0), shaped (layers * directions, B, out) and (layers * directions, B, hidden).
        lengths: (B,) true lengths of right-padded sequences; all full length when omitted.
        module: the name this LSTM gets in the traces.

    Returns:
        output padded with zeros beyond each length (the layout ``nn.LSTM`` uses for these inputs),
        (h_n, c_n), and one ``LayerTrace`` per layer and direction with (B, T, size) arrays.
    """
    unbatched = inputs.dim() == 2
    x = inputs.unsqueeze(1 if not lstm.batch_first else 0) if unbatched else inputs
    if not lstm.batch_first:
        x = x.transpose(0, 1)  # (B, T, in)
    batch, steps, _ = x.shape
    if lengths is None:
        lengths = torch.full((batch,), steps, dtype=torch.long)
    lengths = lengths.to("cpu")
    directions = 2 if lstm.bidirectional else 1
    out_size = lstm.proj_size or lstm.hidden_size
    if state is None:
        h0 = x.new_zeros(lstm.num_layers * directions, batch, out_size)
        c0 = x.new_zeros(lstm.num_layers * directions, batch, lstm.hidden_size)
    else:
        h0, c0 = (s.unsqueeze(1) if unbatched else s for s in state)
    traces: list[LayerTrace] = []
    h_n, c_n = [], []
    layer_input = x
    for layer in range(lstm.num_layers):
        outputs = []
        for direction in range(directions):
            index = layer * directions + direction
            stacked, h, c = _run_direction(lstm, layer, direction == 1, layer_input, lengths, h0[index], c0[index])
            traces.append(LayerTrace(module, layer, "backward" if direction else "forward", **stacked))
            outputs.append(stacked["h"])
            h_n.append(h)
            c_n.append(c)
        layer_input = torch.cat(outputs, dim=-1)  # (B, T, directions * out)
    output = layer_input if lstm.batch_first else layer_input.transpose(0, 1)
    h_n_t, c_n_t = torch.stack(h_n), torch.stack(c_n)
    if unbatched:
        output = output.squeeze(0 if lstm.batch_first else 1)
        h_n_t, c_n_t = h_n_t.squeeze(1), c_n_t.squeeze(1)
    return output, (h_n_t, c_n_t), traces


class Stepper:
    """Feed a unidirectional LSTM one step at a time, carrying (h, c), as the lesson does.

    ``Stepper(lstm).step(x_t)`` returns the output for step t; after T steps the outputs equal one
    call over the whole sequence. A bidirectional LSTM is refused: its backward direction reads each
    sequence from the end, so the output at step t depends on steps that have not arrived yet.
    """

    def __init__(self, lstm: nn.LSTM, state: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        if lstm.bidirectional:
            raise ValueError(
                "cannot step a bidirectional LSTM one token at a time: its backward direction starts "
                "from the last token, so each output depends on tokens that have not been seen yet; "
                "run it over the whole sequence instead (or configure model.bidirectional = false)"
            )
        self.lstm = lstm
        self.state = state

    @torch.no_grad()
    def step(self, x: torch.Tensor) -> torch.Tensor:
        """X (B, input_size) -> output (B, out); the state moves on by one step."""
        inputs = x.unsqueeze(1) if self.lstm.batch_first else x.unsqueeze(0)
        output, self.state = self.lstm(inputs, self.state)
        return output.squeeze(1 if self.lstm.batch_first else 0)


@dataclass
class Trace:
    """What ``lstmtag.inspect`` returns for one sentence: tokens, predicted tags and every layer's states.

    ``layers`` holds one ``LayerTrace`` per LSTM layer and direction with (T, size) arrays for one
    sentence. ``to_json`` gives the documented JSON shape.
    """

    tokens: list[str]
    tags: dict[str, list[dict[str, object]]]
    layers: list[LayerTrace]

    def to_json(self) -> dict[str, object]:
        """``{"tokens": [...], "tags": {...}, "layers": [{"module", "layer", "direction", "h", ...}]}``."""
        return {
            "tokens": self.tokens,
            "tags": self.tags,
            "layers": [
                {
                    "module": layer.module,
                    "layer": layer.layer,
                    "direction": layer.direction,
                    **{name: getattr(layer, name).tolist() for name in ("h", "c", *GATES)},
                }
                for layer in self.layers
            ],
        }

    def summary(self) -> list[dict[str, object]]:
        """Per layer, direction and token: |h|, |c| and the mean of each gate (what the CLI prints)."""
        rows = []
        for layer in self.layers:
            for position, token in enumerate(self.tokens):
                row: dict[str, object] = {
                    "module": layer.module,
                    "layer": layer.layer,
                    "direction": layer.direction,
                    "token": token,
                    "h_norm": float(layer.h[position].norm()),
                    "c_norm": float(layer.c[position].norm()),
                }
                row.update({name: float(getattr(layer, name)[position].mean()) for name in GATES})
                rows.append(row)
        return rows


def single(traces: list[LayerTrace], row: int = 0) -> list[LayerTrace]:
    """The traces of one sequence of a batch: (B, T, size) arrays become (T, size)."""
    return [
        LayerTrace(t.module, t.layer, t.direction, *(getattr(t, name)[row] for name in ("h", "c", *GATES)))
        for t in traces
    ]
