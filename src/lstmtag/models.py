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
from lstmtag.config import Config
from lstmtag.hmm import HMMTagger
from lstmtag.tagger import Tagger

SHIPPED = {"en": "en_ewt.safetensors"}


@dataclass
class TaggerBundle:
    """A tagging model with what it needs to read words and name tags."""

    model: nn.Module  # Tagger or HMMTagger: both take a Batch in ``decode``
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
            config.model, words=vocabs.words.itos, labels=labels, suffixes=vocabs.extra.get("suffixes", ())
        )
    if config.model.kind != "lstm":
        raise ValueError(f"model.kind must be 'lstm' or 'hmm', got {config.model.kind!r}")
    return Tagger(config.model, num_words=len(vocabs.words), num_chars=len(vocabs.chars), labels=labels)


def tagger_file(bundle: TaggerBundle) -> checkpoint.ModelFile:
    return checkpoint.ModelFile(
        kind="tagger",
        config=bundle.config.to_dict(),
        vocabs=bundle.vocabs.to_dict(),
        tensors=dict(bundle.model.state_dict()),
        info=bundle.info,
    )


def bundle_from_file(model_file: checkpoint.ModelFile, source: str) -> TaggerBundle:
    """Rebuild a tagger from a model file's config and vocabularies, then load its weights."""
    try:
        config = Config.from_dict(model_file.config)
        vocabs = Vocabs.from_dict(model_file.vocabs)
        model = build_tagger(config, vocabs)
        model.load_state_dict(model_file.tensors, strict=True)
    except (ValueError, KeyError, RuntimeError, TypeError) as error:
        raise checkpoint.ModelFileError(f"{source}: model file does not match its own config: {error}") from None
    model.eval()
    return TaggerBundle(model, vocabs, config, model_file.info)


def save_tagger(path: str | Path, bundle: TaggerBundle) -> None:
    checkpoint.save(path, tagger_file(bundle))


def load_tagger(name: str | Path) -> TaggerBundle:
    path = resolve(name)
    model_file = checkpoint.read(path)
    if model_file.kind != "tagger":
        raise checkpoint.ModelFileError(f"{path}: a {model_file.kind} model, not a tagger")
    return bundle_from_file(model_file, str(path))
