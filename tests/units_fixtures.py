"""Shared pieces of the tests of units, unit_search, probe and views: a tiny LM and direct traces."""

import torch

from lstmtag.config import Config, LMConfig
from lstmtag.inspector import trace_lstm
from lstmtag.language_model import LanguageModel
from lstmtag.lm import LSTMLanguageModel
from lstmtag.vocab import Vocab

TEXT = 'ROMEO:\nBut soft, what light (through "yonder") window breaks?\n\nJULIET:\nAy me!\nO Romeo, Romeo!\n' * 3


def tiny_lm(seed: int = 0, *, layers: int = 1) -> LanguageModel:
    """A randomly initialised character LM: enough for checking statistics, which need no training."""
    torch.manual_seed(seed)
    config = Config(lm=LMConfig(unit="char", embed_dim=5, hidden_size=7, num_layers=layers, dropout=0.0))
    vocab = Vocab(sorted(set(TEXT)))
    model = LSTMLanguageModel(config.lm, len(vocab))
    model.eval()
    return LanguageModel(model, vocab, config)


def stream_traces(language_model: LanguageModel, text: str, start: int, end: int):
    """Every layer's trace of text[start:end], read in one call from a zero state: (T, size) arrays."""
    ids = torch.tensor([language_model.vocab.ids(list(text[start:end]))])
    with torch.no_grad():
        embedded = language_model.model.embedding(ids)
    _, _, traces = trace_lstm(language_model.model.lstm, embedded, module="lm")
    return [(t.module, t.layer, t.direction, t) for t in traces]


def pooled_d(with_label: torch.Tensor, without: torch.Tensor) -> torch.Tensor:
    """Cohen's d from the raw values of two groups (N1, H) and (N0, H), by the textbook formula."""
    n1, n0 = len(with_label), len(without)
    v1, v0 = with_label.var(0, unbiased=True), without.var(0, unbiased=True)
    pooled = (((n1 - 1) * v1 + (n0 - 1) * v0) / (n1 + n0 - 2)).sqrt()
    return (with_label.mean(0) - without.mean(0)) / pooled
