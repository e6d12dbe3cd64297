"""Build models from their config, turn them into model files and back, and find shipped models.

Wherever a model is named, a shipped model's short name (``en``) and a file path both work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from lstmtag import checkpoint
from lstmtag.batch import Vocabs
from lstmtag.config import Config, ModelConfig, saved_config
from lstmtag.ensemble import Ensemble
from lstmtag.hmm import HMMTagger
from lstmtag.tagger import Tagger

SHIPPED = {"en": "en_ewt.safetensors", "shakespeare": "shakespeare_char.safetensors"}


@dataclass
class TaggerBundle:
    """A tagging model with what it needs to read words and name tags."""

    model: nn.Module  # Tagger, Ensemble or HMMTagger: all take a Batch in ``decode``
    vocabs: Vocabs
    config: Config
    info: dict[str, Any] = field(default_factory=dict)


def shipped_dirs() -> list[Path]:
    """Where shipped models live: inside an installed package, or at the root of a source checkout."""
    package = Path(__file__).resolve().parent
    return [package / "models", package.parents[1] / "models"]


def resolve(name: str | Path) -> Path:
    """A shipped model's short name or a path -> the path of the model file."""
    text = str(name)
    if text in SHIPPED:
        for folder in shipped_dirs():
            candidate = folder / SHIPPED[text]
            if candidate.is_file():
                return candidate
        raise checkpoint.ModelFileError(
            f"shipped model {text!r} is not installed (looked in {[str(d) for d in shipped_dirs()]})"
        )
    return Path(text)


def build_tagger(config: Config, vocabs: Vocabs) -> nn.Module:
    """A fresh model of the kind the config names."""
    labels = {name: vocab.itos for name, vocab in vocabs.labels.items()}
    if config.model.kind == "hmm":
        return HMMTagger(
            config.model,
            words=vocabs.words.itos,
            labels=labels,
            suffixes=vocabs.extra.get("suffixes", ()),
            joint_tags=vocabs.extra.get("joint_tags", ()),
        )
    if config.model.kind != "lstm":
        raise ValueError(f"model.kind must be 'lstm' or 'hmm', got {config.model.kind!r}")
    return Tagger(config.model, num_words=len(vocabs.words), num_chars=len(vocabs.chars), labels=labels)


def tagger_file(bundle: TaggerBundle, *, half: bool = False) -> checkpoint.ModelFile:
    """The file form of ``bundle``.

    ``half`` stores float weights as float16: half the size, and loading turns them back into
    float32, so only the rounding of the stored weights changes.
    """
    config = bundle.config.to_dict()
    if isinstance(bundle.model, Ensemble):
        # Members may differ in architecture; each one's model settings are kept, in member order.
        config["members"] = [_plain_model(member.config) for member in bundle.model.members]
    tensors = dict(bundle.model.state_dict())
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    return checkpoint.ModelFile(
        kind="tagger", config=config, vocabs=bundle.vocabs.to_dict(), tensors=tensors, info=bundle.info
    )


def round_to_half(model: nn.Module) -> None:
    """Round float weights to float16 precision in place (they stay float32 tensors)."""
    state = model.state_dict()
    model.load_state_dict({k: v.half() if v.is_floating_point() else v for k, v in state.items()})


def _plain_model(model: ModelConfig) -> dict[str, Any]:
    return Config(model=model).to_dict()["model"]


def bundle_from_file(model_file: checkpoint.ModelFile, source: str) -> TaggerBundle:
    """Rebuild a tagger from a model file's config and vocabularies, then load its weights."""
    try:
        values = dict(model_file.config)
        members = values.pop("members", None)
        config = saved_config(values)
        vocabs = Vocabs.from_dict(model_file.vocabs)
        if members is None:
            model = build_tagger(config, vocabs)
        else:
            model = Ensemble([build_tagger(saved_config({**values, "model": m}), vocabs) for m in members])
        model.load_state_dict(model_file.tensors, strict=True)
    except (ValueError, KeyError, RuntimeError, TypeError) as error:
        raise checkpoint.ModelFileError(f"{source}: model file does not match its own config: {error}") from None
    model.eval()
    return TaggerBundle(model, vocabs, config, model_file.info)


def save_tagger(path: str | Path, bundle: TaggerBundle, *, half: bool = False) -> None:
    checkpoint.save(path, tagger_file(bundle, half=half))


def ensemble(bundles: list[TaggerBundle], sources: list[str]) -> TaggerBundle:
    """One tagger from several trained on the same data: same vocabularies and label columns required.

    The result keeps the first member's settings as its config and each member's training record
    (command, dev accuracy, ...) under ``info["members"]``.
    """
    first = bundles[0]
    for bundle, source in zip(bundles, sources, strict=True):
        if not isinstance(bundle.model, Tagger):
            raise ValueError(f"{source}: only LSTM taggers can be combined, not a {type(bundle.model).__name__}")
        if bundle.vocabs.to_dict() != first.vocabs.to_dict():
            raise ValueError(
                f"{source}: its vocabularies differ from {sources[0]}'s; members must be trained on the same data"
            )
        if bundle.config.data != first.config.data:
            raise ValueError(f"{source}: its [data] settings differ from {sources[0]}'s")
    model = Ensemble([bundle.model for bundle in bundles])
    model.eval()
    info = {"members": [{"source": s, **b.info} for b, s in zip(bundles, sources, strict=True)]}
    return TaggerBundle(model, first.vocabs, first.config, info)


def load_tagger(name: str | Path) -> TaggerBundle:
    path = resolve(name)
    if path.suffix == ".onnx":
        from lstmtag.onnx_backend import load_onnx  # optional extra: onnxruntime is imported only here

        return TaggerBundle(*load_onnx(path))
    model_file = checkpoint.read(path)
    if model_file.kind != "tagger":
        raise checkpoint.ModelFileError(f"{path}: a {model_file.kind} model, not a tagger")
    return bundle_from_file(model_file, str(path))
