"""lstmtag: LSTM sequence models you can see inside.

>>> import lstmtag
>>> tagger = lstmtag.load("en")
>>> tagger.tag(["The", "cow", "jumped"])
>>> trace = lstmtag.inspect(tagger, ["The", "cow", "jumped"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"
__all__ = ["load", "inspect", "__version__"]


def load(name: str | Path, **options: Any) -> Any:
    """Load a model by shipped short name (``"en"``) or path: a ``Predictor`` or a ``LanguageModel``.

    A tagger takes the ``Predictor`` options: ``precision="int8"`` or ``"bf16"`` for reduced-precision
    weights, ``batch_size``. A ``.onnx`` file (``lstmtag export``) runs on ONNX Runtime.
    """
    from lstmtag import checkpoint
    from lstmtag.models import bundle_from_file, load_tagger, resolve
    from lstmtag.predict import Predictor

    path = resolve(name)
    if path.suffix == ".onnx":
        return Predictor(load_tagger(path), **options)
    model_file = checkpoint.read(path)
    if model_file.kind == "lm":
        from lstmtag.lm import LanguageModel

        return LanguageModel.from_file(model_file, str(path))
    if model_file.kind != "tagger":
        raise checkpoint.ModelFileError(
            f"{path}: a {model_file.kind} file, not a model (use its model, not the training state)"
        )
    return Predictor(bundle_from_file(model_file, str(path)), **options)


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
