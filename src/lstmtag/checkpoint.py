"""Models and training states as safetensors files with JSON metadata; never pickle.

A model file is self-sufficient: the resolved config, the vocabularies as lists of strings, the
weights and a format version. Loading reads the JSON, rebuilds the module from the config and loads
the weights into it, so opening a file never runs code from it. Files are written atomically (to a
temporary file, then renamed), so a kill during a save leaves the previous file intact.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from lstmtag.data import atomic_writer

FORMAT = "lstmtag"
# 2: ``kind`` names the model kind of ``models.KINDS`` ("tagger", "hmm", "ensemble", "lm", "segmenter"); version 1
# files said "tagger" for every tagger (``models.saved_kind`` reads them).
FORMAT_VERSION = 2
LEXICON = "lemma_lexicon"  # the metadata key of a tagger's lemma lexicon (optional)


class ModelFileError(ValueError):
    """A file that is missing, corrupt, truncated, not an lstmtag model, or from a newer version."""


@dataclass
class ModelFile:
    """What a model file holds: its kind, JSON metadata and named tensors."""

    kind: str
    config: dict[str, Any]
    vocabs: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    info: dict[str, Any] = field(default_factory=dict)
    version: int = FORMAT_VERSION  # the format version it was written in
    lexicon: str | None = None  # a tagger's lemma lexicon as JSON text (lexicon.py parses and bounds it)


def save(path: str | Path, model: ModelFile) -> None:
    """Write ``model`` to ``path`` atomically."""
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "kind": model.kind,
        "config": json.dumps(model.config),
        "vocabs": json.dumps(model.vocabs, ensure_ascii=False),
        "info": json.dumps(model.info),
    }
    if model.lexicon is not None:
        metadata[LEXICON] = model.lexicon
    # safetensors refuses tensors that share memory (tied weights): store independent copies.
    tensors = {name: t.detach().cpu().clone().contiguous() for name, t in model.tensors.items()}
    with atomic_writer(path, "wb") as handle:
        handle.write(safetensors_bytes(tensors, metadata=metadata))


def check_format(metadata: dict[str, str], path: str | Path, what: str, expected: str, newest: int) -> None:
    """Refuse a file whose metadata is not lstmtag's ``expected`` format, or is newer than ``newest``."""
    if metadata.get("format") != expected:
        raise ModelFileError(f"{path}: {what}, but not an lstmtag model (no lstmtag metadata)")
    version = int(metadata.get("format_version", "0"))
    if version > newest:
        raise ModelFileError(
            f"{path}: model format version {version} is newer than this lstmtag reads ({newest}); upgrade lstmtag"
        )


def read(path: str | Path) -> ModelFile:
    """Read and check a model file; every failure is a ``ModelFileError`` naming the file."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, not a model file")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            check_format(metadata, path, "a safetensors file", FORMAT, FORMAT_VERSION)
            kind, config, vocabs = metadata["kind"], json.loads(metadata["config"]), json.loads(metadata["vocabs"])
            info = json.loads(metadata.get("info", "{}"))
            version = int(metadata["format_version"])
            problems = [
                f"{name} must be a table"
                for name, value in (("config", config), ("vocabs", vocabs), ("info", info))
                if not isinstance(value, dict)
            ]
            if problems:
                raise ModelFileError(f"{path}: malformed metadata: {'; '.join(problems)}")
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        lexicon = metadata.get(LEXICON)
        return ModelFile(kind, config, vocabs, tensors, info=info, version=version, lexicon=lexicon)
    except ModelFileError:
        raise
    except (SafetensorError, OSError, ValueError, KeyError, RuntimeError, TypeError, RecursionError) as error:
        raise ModelFileError(f"{path}: not a readable lstmtag model file (corrupt or truncated?): {error}") from None


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _sections(path: Path, config: dict[str, Any], names: tuple[str, ...]) -> None:
    if not all(isinstance(config.get(name, {}), dict) for name in names):
        raise ModelFileError(f"{path}: malformed metadata: config must be a table of sections")


def check_tagger_file(path: str | Path, model_file: ModelFile, *, members: bool = False, sized: bool = True) -> None:
    """Refuse a tagger file's metadata of the wrong shape, or sizes its stored tensors do not have.

    Loaders then trust the types (lists of strings, tables), and a doctored config (hidden_size =
    2000 in a file of 256-wide weights) is refused before a module is built from it. ``members``: the
    config lists the members' model settings (an ensemble); ``sized``: the model's settings size its
    modules (not an HMM's, whose tables are sized by its counts).
    """
    path, config, vocabs = Path(path), model_file.config, model_file.vocabs
    _sections(path, config, tuple(name for name in config if name != "members"))
    problems = []
    model, extra = config.get("model"), config.get("members") if members else []
    if not (isinstance(model, dict) and isinstance(extra, list) and all(isinstance(m, dict) for m in extra)):
        problems.append("config must hold a [model] table" + (" and a list of member tables" if members else ""))
    labels = vocabs.get("labels")
    if not (_strings(vocabs.get("words")) and _strings(vocabs.get("chars"))):
        problems.append("vocabs.words and vocabs.chars must be lists of strings")
    if not (isinstance(labels, dict) and labels and all(_strings(v) and v for v in labels.values())):
        problems.append("vocabs.labels must map each column to a list of tag strings")
    if problems:
        raise ModelFileError(f"{path}: malformed metadata: {'; '.join(problems)}")
    sections = [model, *extra] if sized else []
    counts = {"words": vocabs["words"]}
    if any(m.get("char_hidden", 64) for m in sections):
        counts["chars"] = vocabs["chars"]
    _check_sizes(path, model_file, sections, re.compile(r"encoder\.weight_hh_l(\d+)"), SIZES["tagger"], counts)


def check_lm_file(path: str | Path, model_file: ModelFile) -> None:
    """``check_tagger_file`` for a language model."""
    path, config, vocabs = Path(path), model_file.config, model_file.vocabs
    _sections(path, config, tuple(config))
    if not _strings(vocabs.get("tokens")):
        raise ModelFileError(f"{path}: malformed metadata: vocabs.tokens must be a list of strings")
    sections = [config["lm"]] if "lm" in config else []
    _check_sizes(
        path, model_file, sections, re.compile(r"^lstm\.weight_hh_l(\d+)"), SIZES["lm"], {"tokens": vocabs["tokens"]}
    )


def check_strings(path: str | Path, values: Any, what: str) -> None:
    """Refuse ``values`` unless it maps names to lists of strings (a model kind's own string lists)."""
    if not (isinstance(values, dict) and all(_strings(v) for v in values.values())):
        raise ModelFileError(f"{path}: malformed metadata: {what} must map names to lists of strings")


# Settings that size a module, per family of files: each must be a dimension of some stored tensor.
SIZES = {
    "tagger": ("word_dim", "char_dim", "char_hidden", "hidden_size", "proj_size"),
    "lm": ("embed_dim", "hidden_size"),
}


def _check_sizes(
    path: Path,
    model_file: ModelFile,
    sections: list[dict[str, Any]],
    layer: re.Pattern[str],
    keys: tuple[str, ...],
    counts: dict[str, list[str]],
) -> None:
    """Refuse a config or vocabulary that asks for modules larger than the stored tensors."""
    if not sections:
        return
    shapes = [tuple(t.shape) for t in model_file.tensors.values()]
    dims = {d for shape in shapes for d in shape}
    layers = 1 + max((int(m.group(1)) for name in model_file.tensors if (m := layer.search(name))), default=-1)
    for section in sections:
        for key in keys:
            value = section.get(key)
            if key == "char_dim" and section.get("char_hidden") == 0:
                continue  # no character model: its embedding size is never used
            if isinstance(value, int) and value > 0 and value not in dims:
                raise ModelFileError(f"{path}: its config says {key} = {value}, but no stored tensor has that size")
        value = section.get("num_layers")
        if isinstance(value, int) and value > layers:
            raise ModelFileError(f"{path}: its config says num_layers = {value}, but it stores {layers} layer(s)")
    for name, items in counts.items():
        if len(items) + 2 not in dims:  # saved without <pad> and <unk>
            raise ModelFileError(f"{path}: its {name} vocabulary has {len(items)} entries, no stored tensor that many")


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state into named tensors and JSON-safe settings, for a resume file."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def load_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], settings: dict[str, Any]
) -> None:
    """Inverse of ``optimizer_tensors``."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, values in settings.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": settings["param_groups"]})


def state_path(out: str | Path) -> Path:
    """Where the training state for model file ``out`` lives: MODEL.safetensors -> MODEL.ckpt.safetensors."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".safetensors") + ".ckpt.safetensors")


def save_training_state(
    path: str | Path,
    *,
    config: dict[str, Any],
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    info: dict[str, Any],
) -> None:
    """Everything a resumed run needs: module weights by prefix, optimizer state, torch's RNG, ``info``."""
    tensors = {f"{prefix}.{k}": v for prefix, module in modules.items() for k, v in module.state_dict().items()}
    state_tensors, settings = optimizer_tensors(optimizer)
    tensors.update(state_tensors)
    tensors["torch_rng"] = torch.get_rng_state()
    save(path, ModelFile("training-state", config, {}, tensors, {**info, "optimizer": settings}))


def load_training_state(
    path: str | Path, *, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Inverse of ``save_training_state``: fills the modules and optimizer, returns ``info``."""
    saved = read(path)
    for prefix, module in modules.items():
        start = len(prefix) + 1
        module.load_state_dict({k[start:]: v for k, v in saved.tensors.items() if k.startswith(prefix + ".")})
    load_optimizer(optimizer, saved.tensors, saved.info["optimizer"])
    torch.set_rng_state(saved.tensors["torch_rng"])
    return saved.info
