import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmtag.inspector import Stepper, trace_lstm

CASES = list(itertools.product([1, 2, 3], [False, True], [0, 3], [False, True]))


def _reference(lstm, x, lengths, state):
    """nn.LSTM itself, packed so that each sequence stops at its true length."""
    packed = pack_padded_sequence(x, lengths, batch_first=lstm.batch_first, enforce_sorted=False)
    output, (h_n, c_n) = lstm(packed, state)
    output, _ = pad_packed_sequence(
        output, batch_first=lstm.batch_first, total_length=x.shape[1 if lstm.batch_first else 0]
    )
    return output, h_n, c_n


@pytest.mark.parametrize(("layers", "bidirectional", "proj", "batch_first"), CASES)
@pytest.mark.parametrize("given_state", [False, True])
def test_trace_matches_nn_lstm(layers, bidirectional, proj, batch_first, given_state):
    torch.manual_seed(layers * 7 + proj)
    lstm = nn.LSTM(5, 6, num_layers=layers, bidirectional=bidirectional, proj_size=proj, batch_first=batch_first)
    lengths = torch.tensor([7, 3, 5, 1])
    x = torch.randn(4, 7, 5) if batch_first else torch.randn(7, 4, 5)
    directions = 2 if bidirectional else 1
    state = None
    if given_state:
        state = (torch.randn(layers * directions, 4, proj or 6), torch.randn(layers * directions, 4, 6))
    expected, h_n, c_n = _reference(lstm, x, lengths, state)
    output, (h, c), traces = trace_lstm(lstm, x, state, lengths=lengths)
    assert torch.allclose(output, expected, atol=1e-6)
    assert torch.allclose(h, h_n, atol=1e-6)
    assert torch.allclose(c, c_n, atol=1e-6)
    assert len(traces) == layers * directions
    assert [t.direction for t in traces[:directions]] == ["forward", "backward"][:directions]


@pytest.mark.parametrize("batch_size", [1, 3])
def test_full_length_batches_match_unpacked_call(batch_size):
    torch.manual_seed(0)
    lstm = nn.LSTM(4, 5, num_layers=2, bidirectional=True)
    x = torch.randn(6, batch_size, 4)
    expected, (h_n, c_n) = lstm(x)
    output, (h, c), traces = trace_lstm(lstm, x)
    assert torch.allclose(output, expected, atol=1e-6)
    assert torch.allclose(h, h_n, atol=1e-6) and torch.allclose(c, c_n, atol=1e-6)
    # The last layer's traced h, per direction, is the output itself.
    assert torch.allclose(torch.cat([traces[-2].h, traces[-1].h], -1).transpose(0, 1), expected, atol=1e-6)


def test_lesson_shapes_and_last_output_is_h_n():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 3)  # input (seq_len, batch, input_size), as in the lesson
    inputs = torch.randn(5, 1, 3)
    out, (h_n, c_n) = lstm(inputs)
    assert out.shape == (5, 1, 3)
    assert h_n.shape == c_n.shape == (1, 1, 3)  # (num_layers * directions, batch, hidden)
    assert torch.equal(out[-1], h_n[0])
    stacked = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    _, (h_n, c_n) = stacked(inputs)
    assert h_n.shape == c_n.shape == (4, 1, 4)


def test_step_by_step_equals_all_at_once():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2)
    inputs = torch.randn(6, 2, 3)
    whole, (h_n, c_n) = lstm(inputs)
    stepper = Stepper(lstm)
    steps = torch.stack([stepper.step(x_t) for x_t in inputs])
    assert torch.allclose(steps, whole, atol=1e-6)
    assert torch.allclose(stepper.state[0], h_n, atol=1e-6) and torch.allclose(stepper.state[1], c_n, atol=1e-6)


def test_zero_state_is_the_default():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4)
    inputs = torch.randn(4, 2, 3)
    zeros = (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))
    assert torch.equal(lstm(inputs)[0], lstm(inputs, zeros)[0])
    assert torch.allclose(trace_lstm(lstm, inputs)[0], trace_lstm(lstm, inputs, zeros)[0])


def test_gates_are_in_range_and_rebuild_the_cell():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4)
    _, _, (trace,) = trace_lstm(lstm, torch.randn(5, 1, 3))
    for gate in (trace.i, trace.f, trace.o):
        assert float(gate.min()) >= 0 and float(gate.max()) <= 1
    assert float(trace.g.abs().max()) <= 1
    c_previous = torch.cat([torch.zeros(1, 1, 4), trace.c[:, :-1]], dim=1)
    assert torch.allclose(trace.c, trace.f * c_previous + trace.i * trace.g, atol=1e-6)
    assert torch.allclose(trace.h, trace.o * torch.tanh(trace.c), atol=1e-6)


def test_unbatched_input():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2)
    x = torch.randn(5, 3)
    expected, (h_n, c_n) = lstm(x)
    output, (h, c), _ = trace_lstm(lstm, x)
    assert torch.allclose(output, expected, atol=1e-6) and torch.allclose(h, h_n, atol=1e-6)


def test_bidirectional_cannot_stream():
    with pytest.raises(ValueError, match="bidirectional"):
        Stepper(nn.LSTM(3, 4, bidirectional=True))
