"""``LanguageModel``: a trained LSTM language model with its vocabulary, as users hold it.

``init_state``, ``step`` (one token, one LSTM step on the carried state), ``generate`` (streams text;
each new token costs one step, never a re-run of the prefix), ``score`` (perplexity over a stream of
chunks, state carried across them), ``inspect`` and its file form. The network is ``lm.LSTMLanguageModel``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lstmtag import checkpoint
from lstmtag.config import Config, saved_config
from lstmtag.contract import Capabilities
from lstmtag.inspector import Trace, single, trace_lstm
from lstmtag.limits import MAX_GENERATE_LENGTH, MAX_INSPECT_TOKENS
from lstmtag.lm import LSTMLanguageModel, State, tokenize
from lstmtag.metrics import perplexity
from lstmtag.vocab import Vocab


@dataclass
class LanguageModel:
    """A trained language model with its vocabulary: the user-facing object."""

    model: LSTMLanguageModel
    vocab: Vocab
    config: Config
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(traced=True, stepped=True, generates=True, trained=True)

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
