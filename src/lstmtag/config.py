"""Typed settings for every model and training run.

Settings are frozen dataclasses so a resolved configuration can be saved inside each model file and
rebuilt exactly. Presets live in TOML files (``configs/``); ``--set section.key=value`` overrides
one field, parsing the value as a TOML literal (``3``, ``0.5``, ``true``, ``"crf"``, ``["upos"]``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DataConfig:
    """Which columns a tagger predicts and how input files are read."""

    columns: tuple[str, ...] = ("upos", "xpos")
    # "conllu" for Universal Dependencies files; "conll" for whitespace-separated columns with the
    # word first (CoNLL-2000/2003 style), where a column is named by its 1-based index after the
    # word ("2" is the second column after the word: CHUNK in "word POS CHUNK").
    format: str = "conllu"
    min_word_count: int = 1
    # How a "feats" column is learned (feats.py): "whole" (one softmax over whole FEATS strings),
    # "per_feature" (one softmax per feature name, with "_" for absent), or both on one encoder to
    # compare them ("lstmtag evaluate" scores each); the first named fills the FEATS users see.
    feats_heads: tuple[str, ...] = ("whole",)


@dataclass(frozen=True)
class ModelConfig:
    """Model architecture. ``kind`` picks the model family; the rest apply to the LSTM tagger."""

    kind: str = "lstm"  # "lstm" (neural tagger), "hmm" (trigram HMM) or "segmenter" (raw text -> tokens)
    word_dim: int = 100
    char_dim: int = 32
    char_hidden: int = 64  # per direction; 0 turns character features off
    hidden_size: int = 200  # per direction
    num_layers: int = 2
    bidirectional: bool = True
    proj_size: int = 0
    dropout: float = 0.33
    word_dropout: float = 0.25  # alpha in p(unk) = alpha / (alpha + count), Kiperwasser & Goldberg 2016
    head: str = "softmax"  # "softmax" or "crf"
    # HMM settings (kind = "hmm").
    hmm_suffix_length: int = 6
    hmm_rare_count: int = 10
    hmm_candidates: int = 4  # tags considered per token when decoding (8 measured no better on EWT)
    hmm_smoothing: float = 1.0  # weight of the suffix guess in a known word's tag distribution
    hmm_joint: bool = True  # with several columns, one HMM over their tag pairs (see hmm.py)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and stopping."""

    epochs: int = 40
    batch_size: int = 32  # sentences per batch
    lr: float = 2e-3
    weight_decay: float = 1e-5
    beta2: float = 0.9
    clip: float = 5.0
    patience: int = 8  # epochs without dev improvement before stopping
    seed: int = 1
    threads: int = 0  # 0: leave torch's default
    max_minutes: float = 0.0  # 0: no time budget
    ema: float = 0.0  # exponential moving average of weights for evaluation; 0 turns it off
    device: str = "auto"  # auto (a GPU if torch sees one), cpu, cuda or cuda:N; under torchrun cuda:LOCAL_RANK
    # The segmenter's loss weight on multiword-token ends (1: plain cross-entropy). Why: they are rare
    # (IMST: 1,082 of 36,415 token ends) and short runs predicted almost none (docs/turkish.md).
    multiword_weight: float = 1.0


@dataclass(frozen=True)
class LMConfig:
    """LSTM language model and its training."""

    unit: str = "char"  # "char" or "word"
    embed_dim: int = 256
    hidden_size: int = 512
    num_layers: int = 2
    dropout: float = 0.2
    tie_weights: bool = False
    min_word_count: int = 1
    seq_len: int = 128  # truncated BPTT length
    batch_size: int = 64  # parallel streams
    lr: float = 3e-3
    weight_decay: float = 0.01
    clip: float = 1.0
    epochs: int = 50
    seed: int = 1
    threads: int = 0
    max_minutes: float = 0.0
    valid_fraction: float = 0.1
    eval_every: int = 200  # steps between validations
    bf16: bool = False  # bfloat16 autocast for training steps: 1.7x the tokens/s measured here (AVX-512 bf16)
    # Share of streams whose carried state is zeroed before each window. With 0 a stream starts from
    # zeros once per pass, so the model rarely sees the zero state that generation and inspect start from.
    reset_fraction: float = 0.0
    device: str = "auto"  # as train.device


@dataclass(frozen=True)
class Config:
    """The whole configuration of a tagger run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lm: LMConfig = field(default_factory=LMConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists), for JSON metadata."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Rebuild from ``to_dict`` output; unknown keys are an error so typos are caught."""
        sections = {}
        for section in dataclasses.fields(cls):
            section_type = _SECTION_TYPES[section.name]
            given = values.get(section.name, {})
            if not isinstance(given, dict):
                raise ValueError(f"[{section.name}] must be a table of settings, got {given!r}")
            given = dict(given)
            names = {f.name: f for f in dataclasses.fields(section_type)}
            unknown = set(given) - set(names)
            if unknown:
                raise ValueError(f"unknown setting(s) {sorted(unknown)} in [{section.name}]; known: {sorted(names)}")
            for key, value in given.items():
                given[key] = _coerce(f"{section.name}.{key}", names[key], value)
                _check_range(f"{section.name}.{key}", given[key])
            sections[section.name] = section_type(**given)
        unknown_sections = set(values) - set(sections)
        if unknown_sections:
            raise ValueError(f"unknown section(s) {sorted(unknown_sections)}; known: {sorted(sections)}")
        return cls(**sections)


_SECTION_TYPES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "lm": LMConfig}

# Settings added after model files were first written, with the value that reproduces how those
# older files behave (their defaults may differ for new runs).
SAVED_BEFORE = {"model": {"hmm_joint": False}}


def saved_config(values: dict[str, Any]) -> Config:
    """The config stored in a model file; a setting the file predates takes its ``SAVED_BEFORE`` value."""
    return Config.from_dict({name: {**SAVED_BEFORE.get(name, {}), **given} for name, given in values.items()})


# Bounds on settings, so a typo or a doctored model file fails here with the setting's name rather
# than deep inside training or torch (``range() arg 3 must not be zero``). Integers not listed must be
# >= 0 (``seed`` is free); every number must be finite.
_AT_LEAST_ONE = {
    "train.epochs",
    "train.batch_size",
    "model.word_dim",
    "model.char_dim",
    "model.hidden_size",
    "model.num_layers",
    "model.hmm_candidates",
    "lm.embed_dim",
    "lm.hidden_size",
    "lm.num_layers",
    "lm.seq_len",
    "lm.batch_size",
    "lm.epochs",
    "lm.eval_every",
}
_BELOW_ONE = {"model.dropout", "lm.dropout", "train.ema", "train.beta2", "lm.valid_fraction"}  # in [0, 1)
_CHOICES = {
    "data.format": ("conllu", "conll"),
    "model.kind": ("lstm", "hmm", "segmenter"),
    "model.head": ("softmax", "crf"),
    "lm.unit": ("char", "word"),
}
_MAX_INT = 2**31 - 1
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")  # the device settings' form; devices.resolve checks it exists
FEATS_HEADS = ("whole", "per_feature")  # the choices of data.feats_heads


def _check_range(name: str, value: Any) -> None:
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ValueError(f"{name} must be one of {list(_CHOICES[name])}, got {value!r}")
    if name in ("train.device", "lm.device") and DEVICE.fullmatch(value) is None:
        raise ValueError(f"{name} must be auto, cpu, cuda or cuda:N, got {value!r}")
    if name == "data.columns" and (not value or any(not column.strip() for column in value)):
        raise ValueError(f"{name} needs at least one column name, e.g. upos,xpos (got {list(value)!r})")
    if name == "data.feats_heads" and (
        not value or any(head not in FEATS_HEADS for head in value) or len(set(value)) != len(value)
    ):
        raise ValueError(
            f"{name} must name {' or '.join(map(repr, FEATS_HEADS))} or both (the first fills FEATS), got {list(value)!r}"
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if name == "train.seed" or name == "lm.seed":
        if not -_MAX_INT <= value <= 2**63 - 1:
            raise ValueError(f"{name} is out of range: {value!r}")
        return
    low = 1 if name in _AT_LEAST_ONE else 0
    if value < low or (isinstance(value, int) and value > _MAX_INT):
        raise ValueError(
            f"{name} must be at least {low}{'' if isinstance(value, float) else f' and at most {_MAX_INT}'}, got {value!r}"
        )
    if name in _BELOW_ONE and value >= 1:
        raise ValueError(f"{name} must be below 1, got {value!r}")
    if name in ("train.lr", "lm.lr") and value <= 0:
        raise ValueError(f"{name} must be above 0, got {value!r}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _coerce(name: str, spec: dataclasses.Field, value: Any) -> Any:
    default = spec.default if spec.default is not dataclasses.MISSING else None
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        elif isinstance(value, int) and not isinstance(value, bool):
            value = [value]  # --set data.columns=2 (a column index)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list, got {value!r}")
        return tuple(str(v) for v in value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``section.key=value`` and parse the value as a TOML literal (bare words are strings)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ValueError(f"--set expects section.key=value, got {text!r}")
    dotted, raw = text.split("=", 1)
    section, key = (part.strip() for part in dotted.strip().split(".", 1))
    if not section or not key:
        raise ValueError(f"--set expects section.key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    except RecursionError:
        raise ValueError(f"--set {dotted}: value nested too deeply") from None
    return section, key, value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a TOML preset (or defaults) and apply ``section.key=value`` overrides."""
    values: dict[str, dict[str, Any]] = {}
    if path is not None:
        if Path(path).is_dir():
            raise ValueError(f"{path}: is a directory, not a TOML file")
        try:
            with open(path, "rb") as handle:
                values = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path}: not valid TOML: {error}") from None
        except RecursionError:
            raise ValueError(f"{path}: not valid TOML: nested too deeply") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: cannot read: {getattr(error, 'strerror', None) or error}") from None
    for text in overrides or []:
        section, key, value = parse_override(text)
        if not isinstance(values.setdefault(section, {}), dict):
            raise ValueError(f"[{section}] must be a table of settings, got {values[section]!r}")
        values[section][key] = value
    return Config.from_dict(values)
