"""lstmtag: LSTM sequence models you can see inside.

>>> import lstmtag
>>> tagger = lstmtag.load("en")
>>> tagger.tag(["The", "cow", "jumped"])
>>> trace = lstmtag.inspect(tagger, ["The", "cow", "jumped"])
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lstmtag.language_model import LanguageModel
    from lstmtag.predict import Predictor

__version__ = "0.1.0"
__all__ = ["load", "inspect", "__version__"]


def load(name: str | Path, **options: Any) -> Predictor | LanguageModel:
    """Load a model by shipped short name (``"en"``) or path: a ``Predictor`` or a ``LanguageModel``.

    Which one, and what it can do, its ``capabilities`` say (``generates`` for a language model).
    A tagger takes the ``Predictor`` options: ``precision="int8"`` or ``"bf16"`` for reduced-precision
    weights, ``batch_size``. A ``.onnx`` file (``lstmtag export``) runs on ONNX Runtime.

    A tagger is the whole pipeline from raw text: ``lstmtag.load("en")("Raw text. Two sentences.")``
    gives sentences of tokens with offsets. ``segmenter=`` names a trained segmenter file; by default
    a shipped model uses the one shipped beside it, and any other the rule tokenizer.
    """
    from lstmtag import models
    from lstmtag.predict import Predictor, choose_segmenter

    loaded = models.load(name)
    if not loaded.capabilities.tags:
        return loaded  # type: ignore[return-value]
    precision = options.get("precision") or loaded.info.get("precision", "float")
    segmenter = choose_segmenter(name, options.pop("segmenter", None), precision=precision)
    return Predictor(loaded, segmenter=segmenter, **options)  # type: ignore[arg-type]


def inspect(model: Any, tokens: Any) -> Any:
    """h, c and the i/f/g/o gates, per token, layer and direction, recomputed from the weights.

    ``model`` is a tagger (``Predictor``, path or short name), a ``LanguageModel`` or a bare
    ``torch.nn.LSTM``; ``tokens`` is a list of words (a string of text for a character model), or for
    a bare LSTM an input tensor (T, input_size).
    """
    import torch

    from lstmtag.inspector import Trace, single, trace_lstm

    if isinstance(model, torch.nn.LSTM):
        inputs = torch.as_tensor(tokens, dtype=torch.float32)
        batched = inputs.unsqueeze(0 if model.batch_first else 1) if inputs.dim() == 2 else inputs
        _, _, traces = trace_lstm(model, batched)
        return Trace([str(t) for t in range(len(traces[0].h[0]))], {}, single(traces))
    if isinstance(model, (str, Path)):
        model = load(model)
    return model.inspect(tokens)
