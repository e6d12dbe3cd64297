"""The registry of model kinds: from a saved ``kind`` to how a model is built, saved, loaded and run fast.

Every model file names its kind (``KINDS``: ``tagger``, ``hmm``, ``ensemble``, ``lm``, ``segmenter``); a ``.onnx``
file is opened by the ONNX Runtime backend. Adding a kind (a distilled student's architecture, a
lemma or tokenizer model) means one class implementing ``contract.TaggingModel`` and one ``Kind``
entry here; nothing else in the package tests what kind a model is. Wherever a model is named, a
shipped model's short name (``en``) and a file path both work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstmtag import checkpoint
from lstmtag.batch import Vocabs, word_key
from lstmtag.config import Config, saved_config
from lstmtag.contract import Capabilities, TaggingModel
from lstmtag.ensemble import Ensemble
from lstmtag.hmm import HMMTagger
from lstmtag.language_model import LanguageModel
from lstmtag.lexicon import LemmaLexicon
from lstmtag.runtime import InferenceEnsemble, InferenceTagger, check_precision
from lstmtag.segmenter import TrainedSegmenter
from lstmtag.segmenter import check_file as check_segmenter_file
from lstmtag.segmenter import from_file as load_segmenter_file
from lstmtag.tagger import Tagger
from lstmtag.tagger import capabilities as tagger_capabilities

SHIPPED = {"en": "en_ewt.safetensors", "shakespeare": "shakespeare_char.safetensors"}


@dataclass
class TaggerBundle:
    """A tagging model with what it needs to read words and name tags."""

    model: TaggingModel
    vocabs: Vocabs
    config: Config
    info: dict[str, Any] = field(default_factory=dict)
    lexicon: LemmaLexicon | None = None  # lemmas that win over the lemma head's edit scripts (lexicon.py)

    @property
    def capabilities(self) -> Capabilities:
        return self.model.capabilities


def read_lexicon(text: str | None, vocabs: Vocabs, source: str) -> LemmaLexicon | None:
    """A model file's lemma lexicon (JSON text, or None for none); a ``ModelFileError`` says what is wrong."""
    if text is None:
        return None
    try:
        return LemmaLexicon.from_json(text, columns=list(vocabs.labels))
    except (ValueError, TypeError, RecursionError) as error:
        raise checkpoint.ModelFileError(f"{source}: malformed lemma lexicon: {error}") from None


Loaded = TaggerBundle | LanguageModel | TrainedSegmenter


@dataclass(frozen=True)
class Kind:
    """How one kind of model is checked and rebuilt from its file, written back, and run for tagging.

    Attributes:
        name: the ``kind`` its files carry.
        load: rebuild the model from a file whose metadata ``check`` accepted (the file's name for errors).
        check: refuse metadata of the wrong shape, or sizes the stored tensors do not have.
        build: a fresh model from a training config and vocabularies (None: not built from a config).
        saved: what the kind adds to a file's config and vocabularies beyond ``Config`` and ``Vocabs``.
        inference: the fast form of a model of this kind at a precision (``runtime``); itself if none.
        word_key: the form in which training stores words in the vocabulary (and looks them up).
        declared: what a model of this kind built from a training config will be able to do.
    """

    name: str
    load: Callable[[checkpoint.ModelFile, str], Loaded]
    check: Callable[[str, checkpoint.ModelFile], None]
    build: Callable[[Config, Vocabs], TaggingModel] | None = None
    saved: Callable[[Any], tuple[dict[str, Any], dict[str, Any]]] = lambda model: ({}, {})
    inference: Callable[[Any, str], TaggingModel] = lambda model, precision: model
    word_key: Callable[[str], str] = word_key
    declared: Callable[[Config], Capabilities] = lambda config: Capabilities()


def _labels(vocabs: Vocabs) -> dict[str, list[str]]:
    return {name: vocab.itos for name, vocab in vocabs.labels.items()}


def _lstm(config: Config, vocabs: Vocabs) -> Tagger:
    return Tagger(config.model, num_words=len(vocabs.words), num_chars=len(vocabs.chars), labels=_labels(vocabs))


def _hmm(config: Config, vocabs: Vocabs, strings: dict[str, list[str]] | None = None) -> HMMTagger:
    strings = strings or {}
    return HMMTagger(
        config.model,
        words=vocabs.words.itos,
        labels=_labels(vocabs),
        suffixes=strings.get("suffixes", ()),
        joint_tags=strings.get("joint_tags", ()),
    )


def _load_tagger(model_file: checkpoint.ModelFile, source: str) -> TaggerBundle:
    return _rebuilt(model_file, source, _lstm)


def _load_hmm(model_file: checkpoint.ModelFile, source: str) -> TaggerBundle:
    strings = model_file.vocabs.get("extra", {})
    return _rebuilt(model_file, source, lambda config, vocabs: _hmm(config, vocabs, strings))


def _load_ensemble(model_file: checkpoint.ModelFile, source: str) -> TaggerBundle:
    values = {k: v for k, v in model_file.config.items() if k != "members"}

    def build(config: Config, vocabs: Vocabs) -> Ensemble:
        return Ensemble([_lstm(saved_config({**values, "model": m}), vocabs) for m in model_file.config["members"]])

    return _rebuilt(model_file, source, build)


def _rebuilt(
    model_file: checkpoint.ModelFile, source: str, build: Callable[[Config, Vocabs], TaggingModel]
) -> TaggerBundle:
    """Rebuild a tagger from a model file's config and vocabularies, then load its weights."""
    try:
        config = saved_config({k: v for k, v in model_file.config.items() if k != "members"})
        vocabs = Vocabs.from_dict(model_file.vocabs)
        model = build(config, vocabs)
        model.load_state_dict(model_file.tensors, strict=True)
    except (ValueError, KeyError, RuntimeError, TypeError) as error:
        raise checkpoint.ModelFileError(f"{source}: model file does not match its own config: {error}") from None
    model.eval()
    return TaggerBundle(model, vocabs, config, model_file.info, read_lexicon(model_file.lexicon, vocabs, source))


def _check_hmm(source: str, model_file: checkpoint.ModelFile) -> None:
    checkpoint.check_tagger_file(source, model_file, sized=False)
    checkpoint.check_strings(source, model_file.vocabs.get("extra", {}), "vocabs.extra")


def _load_lm(model_file: checkpoint.ModelFile, source: str) -> LanguageModel:
    return LanguageModel.from_file(model_file, source)


def _onnx_only(source: str, model_file: checkpoint.ModelFile) -> Loaded:
    raise checkpoint.ModelFileError(f"{source}: an ONNX model is read from its .onnx file (lstmtag export)")


def _member_settings(model: Ensemble) -> list[dict[str, Any]]:
    """Members may differ in architecture; each one's model settings are kept, in member order."""
    return [Config(model=member.config).to_dict()["model"] for member in model.members]


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "tagger",
            load=_load_tagger,
            check=checkpoint.check_tagger_file,
            build=_lstm,
            inference=lambda model, precision: InferenceTagger(model, precision=precision).eval(),
            declared=lambda config: tagger_capabilities(config.model),
        ),
        Kind(
            "hmm",
            load=_load_hmm,
            check=_check_hmm,
            build=_hmm,
            # The HMM looks words up by their exact form; its own string lists stay beside the vocabularies.
            saved=lambda model: ({}, {"word_form": "exact", "extra": model.saved_strings}),
            word_key=lambda word: word,
            declared=lambda config: HMMTagger.declared,
        ),
        Kind(
            "ensemble",
            load=_load_ensemble,
            check=lambda source, model_file: checkpoint.check_tagger_file(source, model_file, members=True),
            saved=lambda model: ({"members": _member_settings(model)}, {}),
            inference=lambda model, precision: InferenceEnsemble(model, precision=precision).eval(),
        ),
        Kind("lm", load=_load_lm, check=checkpoint.check_lm_file),
        # Raw text -> sentences and tokens; trained by ``segmenter_train``, used beside a tagger.
        Kind(
            "segmenter",
            load=lambda model_file, source: load_segmenter_file(model_file, source),
            check=check_segmenter_file,
            declared=lambda config: TrainedSegmenter.capabilities,
        ),
        # The ONNX Runtime backend: opened by file suffix (``BACKENDS``), already its own inference form.
        Kind("onnx", load=lambda model_file, source: _onnx_only(source, model_file), check=_onnx_only),
    )
}
CONFIG_KINDS = {
    "lstm": "tagger",
    "hmm": "hmm",
    "segmenter": "segmenter",
}  # ``model.kind`` of a training config -> the kind it trains


def for_config(config: Config) -> Kind:
    """The kind a training config builds."""
    if config.model.kind not in CONFIG_KINDS:
        raise ValueError(f"model.kind must be one of {', '.join(CONFIG_KINDS)}, got {config.model.kind!r}")
    return KINDS[CONFIG_KINDS[config.model.kind]]


def build_tagger(config: Config, vocabs: Vocabs) -> TaggingModel:
    """A fresh model of the kind the config names."""
    kind = for_config(config)
    assert kind.build is not None  # every kind a config names is built from one
    return kind.build(config, vocabs)


def for_inference(model: TaggingModel, *, precision: str = "float") -> TaggingModel:
    """The fast inference form of ``model`` at ``precision`` (see ``runtime``); a model without one as it is."""
    check_precision(precision)
    return KINDS[model.kind].inference(model, precision)


def saved_kind(model_file: checkpoint.ModelFile) -> str:
    """The registry kind of a file; format 1 wrote "tagger" for every tagger, told apart by its config."""
    if model_file.version >= 2 or model_file.kind != "tagger":
        return model_file.kind
    if "members" in model_file.config:
        return "ensemble"
    model = model_file.config.get("model")
    return "hmm" if isinstance(model, dict) and model.get("kind") == "hmm" else "tagger"


def tagger_file(bundle: TaggerBundle, *, half: bool = False) -> checkpoint.ModelFile:
    """The file form of ``bundle``.

    ``half`` stores float weights as float16: half the size, and loading turns them back into
    float32, so only the rounding of the stored weights changes.
    """
    kind = KINDS[bundle.model.kind]
    config, vocabs = kind.saved(bundle.model)
    tensors = dict(bundle.model.state_dict())
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    return checkpoint.ModelFile(
        kind=kind.name,
        config={**bundle.config.to_dict(), **config},
        vocabs={**bundle.vocabs.to_dict(), **vocabs},
        tensors=tensors,
        info=bundle.info,
        lexicon=None if bundle.lexicon is None else bundle.lexicon.to_json(),
    )


def save_tagger(path: str | Path, bundle: TaggerBundle, *, half: bool = False) -> None:
    checkpoint.save(path, tagger_file(bundle, half=half))


def round_to_half(model: TaggingModel) -> None:
    """Round float weights to float16 precision in place (they stay float32 tensors)."""
    state = model.state_dict()
    model.load_state_dict({k: v.half() if v.is_floating_point() else v for k, v in state.items()})


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


def _load_onnx(path: Path) -> TaggerBundle:
    from lstmtag.onnx_backend import load_onnx  # optional extra: onnxruntime is imported only here

    return TaggerBundle(*load_onnx(path))


BACKENDS: dict[str, Callable[[Path], Loaded]] = {".onnx": _load_onnx}  # file suffix -> what opens it


def load(name: str | Path) -> Loaded:
    """Any model by shipped short name or path: a ``TaggerBundle`` or a ``LanguageModel``."""
    path = resolve(name)
    if path.suffix in BACKENDS:
        return BACKENDS[path.suffix](path)
    model_file = checkpoint.read(path)
    name = saved_kind(model_file)
    if name not in KINDS:
        raise checkpoint.ModelFileError(
            f"{path}: a {name!r} file (format version {model_file.version}), not a model of a kind lstmtag loads "
            f"({', '.join(KINDS)}); for a training state, use the model file written beside it"
        )
    kind = KINDS[name]
    try:
        kind.check(str(path), model_file)
    except checkpoint.ModelFileError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise checkpoint.ModelFileError(f"{path}: malformed metadata: {error}") from None
    return kind.load(model_file, str(path))


def load_tagger(name: str | Path) -> TaggerBundle:
    """A tagging model by shipped short name or path (a ``ModelFileError`` for a language model)."""
    loaded = load(name)
    if not isinstance(loaded, TaggerBundle):
        what = "a segmenter" if isinstance(loaded, TrainedSegmenter) else "a language model"
        raise checkpoint.ModelFileError(f"{resolve(name)}: {what}, not a tagger")
    return loaded


def load_segmenter(name: str | Path) -> TrainedSegmenter:
    """A trained segmenter by path (or a shipped short name, whose segmenter sits beside its tagger)."""
    path = segmenter_path(name) if str(name) in SHIPPED else Path(name)
    if path is None:
        raise checkpoint.ModelFileError(f"shipped model {name!r} has no segmenter installed")
    loaded = load(path)
    if not isinstance(loaded, TrainedSegmenter):
        raise checkpoint.ModelFileError(f"{path}: not a segmenter (train one with configs/segmenter.toml)")
    loaded.info["source"] = str(path)
    return loaded


def segmenter_path(name: str | Path) -> Path | None:
    """The segmenter beside a tagger file (``en_ewt.safetensors`` -> ``en_ewt.segmenter.safetensors``), if any.

    For a shipped short name, beside the shipped file; for a path, beside that path: so a copy of a
    shipped model with its segmenter, or a trained pair named so, reads raw text like ``en``.
    """
    path = Path(name)
    if str(name) not in SHIPPED and path.suffix not in (".safetensors", ".onnx"):
        return None
    candidate = (resolve(name) if str(name) in SHIPPED else path).with_suffix(".segmenter.safetensors")
    return candidate if candidate.is_file() else None


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
