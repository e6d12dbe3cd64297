"""ONNX export of a tagger's network, and an ONNX Runtime backend that tags with it.

The graph computes emissions only (name -> (B, T, num_tags)); heads decode outside it, in torch,
exactly as ``Tagger.decode`` does, so the Predictor works unchanged. The graph is built by hand with
``onnx.helper`` rather than traced: the ONNX ``LSTM`` op takes each sequence's length
(``sequence_lens``) and runs both directions over exactly the real tokens, so padding never changes
a result, as packing guarantees in torch. Data flow (one member; an ensemble repeats it per member
on the same inputs, then averages the members' probabilities)::

    chars.k (U_k, L_k) -> Gather -> BiLSTM(char_lengths.k) -> Y_h (2, U_k, H) -> (U_k, 2H)   k = 0..3
    known_chars (U_known, 2H) + the four groups -> Concat -> (U, 2H) -> Gather(word_types) -> (B, T, 2H)
    words (B, T) -> Gather -> (B, T, D) -> Concat with the above -> (T, B, F)
        -> LSTM(lengths) -> Y (T, dirs, B, H) -> (T, B, dirs*H) -> ... next layer ... -> (B, T, dirs*H)
        -> MatMul + Add per column -> emissions (B, T, num_tags)

Character features are computed once per spelling and cached by ``OnnxTagger`` (as ``runtime.CharCache``
does in torch): the graph reads the features of spellings it has seen (``known_chars``), runs its
character LSTM over the new ones only, in up to four groups of similar length (``length_groups``),
and returns their features (``new_chars``) for the cache.

PyTorch packs an LSTM's gates as i, f, g, o; ONNX wants i, o, f, c: the weights are reordered here.
Config, vocabularies, info and any lemma lexicon are stored as JSON in the model's ``metadata_props`` (the
same JSON as a ``.safetensors`` model file), so an ``.onnx`` file is self-sufficient and loading runs no code.
``int8=True`` quantizes the weights of the float graph with ONNX Runtime's dynamic quantization.
"""

from __future__ import annotations

import itertools
import json
import math
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lstmtag.batch import Batch, Vocabs
from lstmtag.checkpoint import LEXICON, ModelFileError, check_format
from lstmtag.config import Config, saved_config
from lstmtag.contract import Capabilities, TaggingModel, refuse
from lstmtag.crf import CRF
from lstmtag.data import atomic_writer
from lstmtag.lexicon import LemmaLexicon
from lstmtag.metrics import is_bio
from lstmtag.models import TaggerBundle, read_lexicon, tagger_file
from lstmtag.tagger import SoftmaxHead, Tagger

FORMAT = "lstmtag-onnx"
FORMAT_VERSION = 1
OPSET = 17
IR_VERSION = 8
INSTALL_HINT = "ONNX support needs the onnx extra: pip install 'lstmtag[onnx]'"
KNOWN = "known_chars."  # graph input: character features of spellings seen before, per member
NEW = "new_chars."  # graph output: character features of the batch's new spellings, per member
CHAR_GROUPS = 4  # LSTM calls over new spellings, grouped by length (see length_groups)
_GATES = (0, 3, 1, 2)  # torch's blocks (i, f, g, o) taken in ONNX's order (i, o, f, c)


def exportable(model: TaggingModel) -> list[Tagger]:
    """The LSTM taggers whose networks make up ``model``'s graph; a ``ValueError`` says why not."""
    if not model.capabilities.exported:
        raise refuse(model, "exported", f"only LSTM taggers and their ensembles can be exported, not a {model.kind}")
    return [tagger for _, tagger in model.encoders()]


def export(bundle: TaggerBundle, path: str | Path, *, int8: bool = False) -> None:
    """Write ``bundle``'s network as an ONNX model to ``path`` (atomically); ``int8`` quantizes its weights."""
    try:
        import onnx
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    members = exportable(bundle.model)
    # ONNX Runtime's quantizer transposes an LSTM's weights once per node that uses them, so for int8
    # every character-LSTM call gets its own copy of the (small) character weights.
    model = _build(members, list(bundle.vocabs.labels), share_char_weights=not int8)
    onnx.checker.check_model(model)
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory() as folder:  # the quantizer reads and writes files
            plain, quantized = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
            onnx.save(model, plain)
            # LSTMs and output layers; not the embedding tables (that would save space, not time).
            quantize_dynamic(plain, quantized, weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM", "MatMul"])
            model = onnx.load(quantized)
    heads = {name: _crf_json(head) for name, head in bundle.model.heads.items() if isinstance(head, CRF)}
    saved = tagger_file(bundle)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "kind": "tagger",
        "config": json.dumps(saved.config),
        "vocabs": json.dumps(saved.vocabs, ensure_ascii=False),
        "info": json.dumps({**saved.info, "onnx": {"precision": "int8" if int8 else "float"}}),
        "heads": json.dumps(heads),
    }
    if saved.lexicon is not None:
        metadata[LEXICON] = saved.lexicon
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, metadata)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path, "wb") as handle:
        handle.write(model.SerializeToString())


class OnnxTagger(TaggingModel):
    """Emissions from an ONNX Runtime session, decoded by the same heads as the torch model.

    An ``nn.Module`` without weights of its own (CRF heads aside), so it stands where a ``Tagger``
    stands: ``forward(batch)`` gives emissions, ``decode(batch)`` tags and probabilities. Character
    features are kept per spelling (up to ``capacity`` spellings), as ``runtime.CharCache`` does: the
    graph reads the known spellings' features and runs its character LSTMs over the new ones only.
    """

    kind = "onnx"

    def __init__(
        self, session: Any, heads: dict[str, nn.Module], *, precision: str = "float", capacity: int = 50_000
    ) -> None:
        super().__init__()
        self.session = session
        self.heads = nn.ModuleDict(heads)
        self.precision = precision  # "float" or "int8": the weights the graph holds
        self.capacity = capacity
        self.lock = threading.Lock()  # the character cache is shared by every call
        inputs = {i.name: i for i in session.get_inputs()}
        self.char_groups = sum(name.startswith("chars.") for name in inputs)
        self.uses_chars = self.char_groups > 0
        self.char_members = [name.removeprefix(KNOWN) for name in inputs if name.startswith(KNOWN)]
        self.fetches = [*heads, *(NEW + member for member in self.char_members)]
        self.declared = Capabilities(tags=True, uses_chars=self.uses_chars)
        self.index: dict[str, int] = {}
        self.tables = {m: np.empty((0, inputs[KNOWN + m].shape[1]), dtype=np.float32) for m in self.char_members}

    @property
    def capabilities(self) -> Capabilities:
        return self.declared

    @property
    def refusals(self) -> dict[str, str]:
        return {"traced": "an ONNX model has no LSTM to inspect here; inspect its .safetensors file"}

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Emissions per column: name -> (B, T, num_tags)."""
        feeds = {"words": batch.words.numpy().astype(np.int64), "lengths": batch.lengths.numpy().astype(np.int64)}
        with self.lock:
            new, rows = self._char_feeds(batch, feeds) if self.uses_chars else ([], [])
            outputs = dict(zip(self.fetches, self.session.run(self.fetches, feeds), strict=True))
            if new:
                self._remember(new, {m: outputs[NEW + m][rows] for m in self.char_members})
        return {name: torch.from_numpy(outputs[name]) for name in self.heads}

    @torch.no_grad()
    def decode(self, batch: Batch) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Name -> (tag ids (B, T), probability of each chosen tag (B, T))."""
        emissions = self(batch)
        return {name: self.heads[name].decode(emissions[name], batch.mask) for name in emissions}

    def _char_feeds(self, batch: Batch, feeds: dict[str, np.ndarray]) -> tuple[list[str], list[int]]:
        """Feed the known spellings' features and the new spellings' characters, by length group.

        ``word_types`` is renumbered to index the graph's rows: known spellings, then the new ones
        group by group. Returns the new spellings and their rows in the graph's ``new_chars`` output.
        A batch without ``spellings`` runs every spelling and caches nothing.
        """
        spellings = batch.spellings
        caching = len(spellings) == batch.chars.shape[0]
        if caching and len(self.index) + len(spellings) > self.capacity:
            self.index = {}  # start over: memory stays bounded
            self.tables = {m: table[:0] for m, table in self.tables.items()}
        if caching:
            known = [u for u, spelling in enumerate(spellings) if spelling in self.index]
            new = [u for u, spelling in enumerate(spellings) if spelling not in self.index]
        else:
            known, new = [], list(range(batch.chars.shape[0]))
        rows = [self.index[spellings[u]] for u in known]
        for member, table in self.tables.items():
            feeds[KNOWN + member] = table[rows]
        position = np.empty(batch.chars.shape[0], dtype=np.int64)
        position[known] = np.arange(len(known))
        lengths = batch.char_lengths.clamp(min=1)
        order, kept, row = [], [], 0
        for k, group in enumerate(length_groups(new, lengths[new].tolist(), self.char_groups)):
            if not group:  # a dummy spelling: an LSTM over no sequences is not portable
                feeds[f"chars.{k}"] = np.zeros((1, 1), dtype=np.int64)
                feeds[f"char_lengths.{k}"] = np.ones(1, dtype=np.int64)
                row += 1
                continue
            width = int(lengths[group].max())
            feeds[f"chars.{k}"] = batch.chars[group, :width].numpy().astype(np.int64)
            feeds[f"char_lengths.{k}"] = lengths[group].numpy().astype(np.int64)
            position[group] = len(known) + row + np.arange(len(group))
            order += group
            kept += range(row, row + len(group))
            row += len(group)
        feeds["word_types"] = position[batch.word_types.numpy()]
        return ([spellings[u] for u in order], kept) if caching else ([], [])

    def _remember(self, spellings: list[str], features: dict[str, np.ndarray]) -> None:
        start = len(self.index)
        for member, values in features.items():
            table = self.tables[member]
            if start + len(values) > table.shape[0]:  # grow by doubling, so appends stay cheap
                grown = np.empty((max(start + len(values), 2 * table.shape[0], 4096), table.shape[1]), np.float32)
                grown[:start] = table[:start]
                table = self.tables[member] = grown
            table[start : start + len(values)] = values
        for offset, spelling in enumerate(spellings):
            self.index[spelling] = start + offset


def length_groups(items: list[int], lengths: list[int], count: int) -> list[list[int]]:
    """``items`` split into ``count`` groups (empty ones last) of similar length, with the least padding.

    Why: an ONNX Runtime LSTM runs every sequence of a call for as many steps as the longest one
    needs, so one long spelling among short ones costs its length for all of them. A group is a run
    of the items sorted by length; the cuts minimise the steps computed, the sum over groups of
    size x longest length, exactly (dynamic programming over the distinct lengths).
    """
    counts = Counter(lengths)
    values = sorted(counts)
    ends = list(itertools.accumulate(counts[v] for v in values))  # items of length <= values[j]
    # cost[j], start[j]: the best split of the items up to values[j] into the groups so far; the last begins at start[j]
    cost = [ends[j] * values[j] for j in range(len(values))]
    starts = [[0] * len(values)]
    for _ in range(1, count):
        previous, cost, start = cost, [], []
        for j, value in enumerate(values):
            best = min((previous[i - 1] + (ends[j] - ends[i - 1]) * value, i) for i in range(1, j + 1)) if j else None
            if best is None or previous[j] <= best[0]:  # one group fewer does as well
                best = (previous[j], None)
            cost.append(best[0])
            start.append(best[1])
        starts.append(start)
    runs, end = [], len(values) - 1
    for start in reversed(starts):
        if end < 0:
            break
        if start[end] is None:
            continue
        runs.append((start[end], end))
        end = start[end] - 1
    ordered = [item for _, item in sorted(zip(lengths, items, strict=True))]
    groups = [ordered[(ends[i - 1] if i else 0) : ends[j]] for i, j in reversed(runs)]
    return groups + [[] for _ in range(count - len(groups))]


def load_onnx(
    path: str | Path, *, threads: int | None = None
) -> tuple[OnnxTagger, Vocabs, Config, dict[str, Any], LemmaLexicon | None]:
    """Open an exported model: the runtime tagger, its vocabularies, config, info and lemma lexicon (or None).

    ``threads`` (default: ``torch.get_num_threads()``) is ONNX Runtime's intra-op thread count.
    """
    try:
        import onnxruntime
    except ImportError:
        raise ModelFileError(f"{path}: {INSTALL_HINT}") from None
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for unreadable files
        raise ModelFileError(f"{path}: not a readable ONNX model (corrupt or truncated?): {error}") from None
    metadata = session.get_modelmeta().custom_metadata_map
    check_format(metadata, path, "an ONNX model", FORMAT, FORMAT_VERSION)
    try:
        values = json.loads(metadata["config"])
        values.pop("members", None)
        config = saved_config(values)
        vocabs = Vocabs.from_dict(json.loads(metadata["vocabs"]))
        info = json.loads(metadata.get("info", "{}"))
        crf = json.loads(metadata.get("heads", "{}"))
        heads = {name: _head(vocab.itos, crf.get(name)) for name, vocab in vocabs.labels.items()}
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise ModelFileError(f"{path}: ONNX model metadata does not match its config: {error}") from None
    outputs = [o.name for o in session.get_outputs() if not o.name.startswith(NEW)]
    if outputs != list(heads):
        raise ModelFileError(f"{path}: the graph's outputs {outputs} are not the label columns {list(heads)}")
    lexicon = read_lexicon(metadata.get(LEXICON), vocabs, str(path))
    tagger = OnnxTagger(session, heads, precision=info.get("onnx", {}).get("precision", "float"))
    tagger.eval()
    return tagger, vocabs, config, info, lexicon


def _crf_json(head: CRF) -> dict[str, list]:
    return {name: getattr(head, name).detach().float().tolist() for name in ("transitions", "start", "end")}


def _head(labels: list[str], crf: dict[str, list] | None) -> nn.Module:
    if crf is None:
        return SoftmaxHead()
    head = CRF(len(labels), labels=labels, constrain_bio=is_bio(labels))
    head.load_state_dict({name: torch.tensor(values, dtype=torch.float32) for name, values in crf.items()})
    return head


class _Graph:
    """Nodes and weights of one ONNX graph; every value gets a fresh, readable name."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.weights: list = []
        self.names: set[str] = set()
        self.count = 0

    def weight(self, name: str, array: np.ndarray | torch.Tensor) -> str:
        """A named constant (one copy, however often it is asked for)."""
        from onnx import numpy_helper

        if name in self.names:
            return name
        self.names.add(name)
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().float().numpy()
        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], *, outputs: int = 1, name: str = "", **attributes: Any) -> Any:
        """Add a node; returns its output's name (a list of names for several)."""
        from onnx import helper

        self.count += 1
        names = [f"{op_type.lower()}_{self.count}" + (f".{k}" if outputs > 1 else "") for k in range(outputs)]
        name = name or f"{op_type}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, names, name=name, **attributes))
        return names[0] if outputs == 1 else names


def _lstm_weights(lstm: nn.LSTM, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W (dirs, 4H, I), R (dirs, 4H, H), B (dirs, 8H) of one layer, gates in ONNX's order."""
    hidden = lstm.hidden_size
    order = torch.cat([torch.arange(g * hidden, (g + 1) * hidden) for g in _GATES])
    suffixes = ["", "_reverse"] if lstm.bidirectional else [""]
    weights = {name: [] for name in ("W", "R", "B")}
    for suffix in suffixes:
        weights["W"].append(getattr(lstm, f"weight_ih_l{layer}{suffix}").detach().float()[order])
        weights["R"].append(getattr(lstm, f"weight_hh_l{layer}{suffix}").detach().float()[order])
        biases = [getattr(lstm, f"{kind}_l{layer}{suffix}", None) for kind in ("bias_ih", "bias_hh")]
        biases = [torch.zeros(4 * hidden) if b is None else b.detach().float() for b in biases]
        weights["B"].append(torch.cat([b[order] for b in biases]))
    return tuple(torch.stack(weights[name]).numpy() for name in ("W", "R", "B"))


def _lstm(graph: _Graph, lstm: nn.LSTM, layer: int, inputs: str, lengths: str, *, weights: str, name: str) -> list[str]:
    """One LSTM layer over (T, B, I) inputs: outputs Y (T, dirs, B, H) and Y_h (dirs, B, H).

    Its weights are named ``{weights}.l{layer}.W`` (R, B): calls with the same ``weights`` share them.
    """
    w, r, b = _lstm_weights(lstm, layer)
    names = [graph.weight(f"{weights}.l{layer}.{kind}", value) for kind, value in (("W", w), ("R", r), ("B", b))]
    return graph.op(
        "LSTM",
        [inputs, *names, lengths],
        outputs=2,
        name=name,
        hidden_size=lstm.hidden_size,
        direction="bidirectional" if lstm.bidirectional else "forward",
    )


def _member(graph: _Graph, prefix: str, tagger: Tagger, shared: dict[str, str], *, share: bool) -> dict[str, str]:
    """Emissions (B, T, num_tags) per column of one tagger, as graph value names."""
    from onnx import helper

    embedder = tagger.embedder
    features = graph.op("Gather", [graph.weight(f"{prefix}.words", embedder.words.weight), "words"])  # (B, T, D)
    if embedder.chars is not None:
        table = graph.weight(f"{prefix}.chars", embedder.chars.embedding.weight)
        lstm, node = embedder.chars.lstm, f"{prefix}.char_lstm"
        groups = []
        for k in range(CHAR_GROUPS):  # one LSTM call per group of new spellings of similar length
            chars = graph.op("Transpose", [graph.op("Gather", [table, f"chars.{k}"])], perm=[1, 0, 2])  # (L, U, C)
            weights, lengths = node if share else f"{node}.{k}", shared[f"char_lengths.{k}"]
            _, last = _lstm(graph, lstm, 0, chars, lengths, weights=weights, name=f"{node}.{k}")  # (2, U, H)
            groups.append(graph.op("Reshape", [graph.op("Transpose", [last], perm=[1, 0, 2]), shared["flat2"]]))
        new = graph.op("Concat", groups, axis=0)  # (U_new, 2H)
        graph.nodes.append(helper.make_node("Identity", [new], [NEW + prefix], name=f"output.{NEW}{prefix}"))
        per_type = graph.op("Concat", [KNOWN + prefix, new], axis=0)  # (U_known + U_new, 2H)
        typed = graph.op("Gather", [per_type, "word_types"])  # (B, T, 2H)
        features = graph.op("Concat", [features, typed], axis=-1)
    hidden = graph.op("Transpose", [features], perm=[1, 0, 2])  # (T, B, F)
    for layer in range(tagger.encoder.num_layers):
        name = f"{prefix}.encoder.{layer}"
        outputs, _ = _lstm(
            graph, tagger.encoder, layer, hidden, shared["lengths"], weights=f"{prefix}.encoder", name=name
        )
        hidden = graph.op("Reshape", [graph.op("Transpose", [outputs], perm=[0, 2, 1, 3]), shared["flat3"]])
    encoded = graph.op("Transpose", [hidden], perm=[1, 0, 2])  # (B, T, dirs * H)
    emissions = {}
    for name, linear in tagger.outputs.items():
        weight = graph.weight(f"{prefix}.outputs.{name}.weight", linear.weight.detach().float().T)
        bias = graph.weight(f"{prefix}.outputs.{name}.bias", linear.bias)
        emissions[name] = graph.op("Add", [graph.op("MatMul", [encoded, weight]), bias])
    return emissions


def _build(members: list[Tagger], columns: list[str], *, share_char_weights: bool) -> Any:
    """The ONNX model computing ``members``' emissions (log of their mean probabilities for several)."""
    from onnx import TensorProto, helper

    graph = _Graph()
    uses_chars = any(m.embedder.chars is not None for m in members)
    shared = {
        "lengths": graph.op("Cast", ["lengths"], to=TensorProto.INT32),
        "flat2": graph.weight("shape.flat2", np.array([0, -1], dtype=np.int64)),
        "flat3": graph.weight("shape.flat3", np.array([0, 0, -1], dtype=np.int64)),
    }
    if uses_chars:  # an empty spelling still gets one step, as in CharEncoder (lengths.clamp(min=1))
        one = graph.weight("one", np.array(1, dtype=np.int64))
        for k in range(CHAR_GROUPS):
            lengths = graph.op("Max", [f"char_lengths.{k}", one])
            shared[f"char_lengths.{k}"] = graph.op("Cast", [lengths], to=TensorProto.INT32)
    prefixes = [f"m{k}" for k in range(len(members))] if len(members) > 1 else ["tagger"]
    outputs = [
        _member(graph, prefix, m, shared, share=share_char_weights) for prefix, m in zip(prefixes, members, strict=True)
    ]
    if len(members) > 1:
        zero = graph.weight("axis0", np.array([0], dtype=np.int64))
        log_n = graph.weight("log_members", np.array(math.log(len(members)), dtype=np.float32))
        combined = {}
        for name in columns:
            stacked = [graph.op("Unsqueeze", [graph.op("LogSoftmax", [o[name]], axis=-1), zero]) for o in outputs]
            total = graph.op("ReduceLogSumExp", [graph.op("Concat", stacked, axis=0)], axes=[0], keepdims=0)
            combined[name] = graph.op("Sub", [total, log_n])
        emissions = combined
    else:
        emissions = outputs[0]
    for name in columns:  # graph outputs carry the column names
        graph.nodes.append(helper.make_node("Identity", [emissions[name]], [name], name=f"output.{name}"))
    inputs = [
        helper.make_tensor_value_info("words", TensorProto.INT64, ["batch", "tokens"]),
        helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
    ]
    sizes = {name: members[0].outputs[name].out_features for name in columns}
    results = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", "tokens", sizes[n]]) for n in columns]
    if uses_chars:
        inputs.append(helper.make_tensor_value_info("word_types", TensorProto.INT64, ["batch", "tokens"]))
        for k in range(CHAR_GROUPS):
            spellings, characters = f"spellings_{k}", f"characters_{k}"
            inputs.append(helper.make_tensor_value_info(f"chars.{k}", TensorProto.INT64, [spellings, characters]))
            inputs.append(helper.make_tensor_value_info(f"char_lengths.{k}", TensorProto.INT64, [spellings]))
    for prefix, member in zip(prefixes, members, strict=True):
        if member.embedder.chars is not None:
            width = member.embedder.chars.output_size
            inputs.append(helper.make_tensor_value_info(KNOWN + prefix, TensorProto.FLOAT, ["known", width]))
            results.append(helper.make_tensor_value_info(NEW + prefix, TensorProto.FLOAT, ["new", width]))
    body = helper.make_graph(graph.nodes, "lstmtag", inputs, results, initializer=graph.weights)
    model = helper.make_model(body, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lstmtag")
    model.ir_version = IR_VERSION  # what ONNX Runtime 1.17, the oldest supported, reads
    return model
