"""Where training runs: the device setting, the backend it picks, and inputs that follow the model.

This machine has no GPU, so the GPU path is checked in two honest ways: the resolution of the
setting with torch's CUDA queries replaced (what a machine with GPUs would answer), and a training
step of every objective with the model on PyTorch's ``meta`` device, where a tensor made on the CPU
by mistake shows up beside the model's (as it would beside a GPU's).
"""

import random

import pytest
import torch
import torch.fx.experimental._config as fx_config
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from typer.testing import CliRunner

from lstmtag import devices, distill, distributed, loop
from lstmtag.cli import app
from lstmtag.config import load_config
from lstmtag.data import Sentence
from lstmtag.distributed import Context
from lstmtag.lm import LSTMLanguageModel
from lstmtag.lm_train import LMTask
from lstmtag.models import build_tagger
from lstmtag.segmenter import TrainedSegmenter, char_vocabulary
from lstmtag.segmenter_train import SegmenterTask, labelled
from lstmtag.train import TaggerTask, build_vocabs, train_tagger
from tests.conftest import DATA, tiny_config

META = torch.device("meta")
# Ops that take CPU lengths beside device data by design: packing wants its lengths on the CPU.
HOST_LENGTHS = ("aten._pack_padded_sequence", "aten.lstm.data", "aten._pad_packed_sequence")


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    """What torch answers on a machine with two GPUs (only the queries: nothing runs on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)


def test_auto_is_the_cpu_without_a_gpu_and_cpu_is_always_the_cpu(no_gpu):
    assert devices.resolve("auto") == torch.device("cpu")
    assert devices.resolve("cpu") == torch.device("cpu")


@pytest.mark.parametrize("setting", ["cuda", "cuda:0"])
def test_asking_for_a_gpu_without_one_is_one_clear_error(no_gpu, setting):
    with pytest.raises(ValueError, match="torch sees none here.*--device cpu"):
        devices.resolve(setting)


def test_the_train_command_says_so_in_one_line_and_exits_2(no_gpu, tmp_path):
    sample = str(DATA / "ewt_sample.conllu")
    out = tmp_path / "m.safetensors"
    result = CliRunner().invoke(
        app, ["train", "--train", sample, "--dev", sample, "--out", str(out), "--device", "cuda"]
    )
    assert result.exit_code == 2
    assert "torch sees none here" in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_a_misspelt_device_is_refused_by_name(no_gpu):
    with pytest.raises(ValueError, match="train.device must be auto, cpu, cuda or cuda:N, got 'gpu'"):
        load_config(None, ["train.device=gpu"])
    with pytest.raises(ValueError, match="lm.device must be"):
        load_config(None, ["lm.device=cuda:x"])
    with pytest.raises(ValueError, match="the device must be auto, cpu, cuda or cuda:N"):
        devices.resolve("CUDA")
    assert load_config(None, ["train.device=cuda:1"]).train.device == "cuda:1"


def test_each_worker_of_a_machine_takes_its_own_gpu(two_gpus, monkeypatch):
    assert devices.resolve("auto") == torch.device("cuda", 0)
    assert devices.resolve("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert devices.resolve("cuda") == torch.device("cuda", 1)
    assert devices.resolve("auto") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="names one GPU for 2 workers"):
        devices.resolve("cuda:0")


def test_more_workers_or_a_higher_index_than_gpus_is_refused(two_gpus):
    with pytest.raises(ValueError, match="3 workers on this machine but 2 GPU"):
        devices.resolve("cuda", local_workers=3)
    with pytest.raises(ValueError, match="no GPU cuda:2: this machine has 2"):
        devices.resolve("cuda:2")


def test_nccl_carries_the_gradients_iff_the_workers_train_on_gpus():
    assert distributed.backend(torch.device("cpu")) == "gloo"
    on_gpu = dict(pair.split(":") for pair in distributed.backend(torch.device("cuda", 1)).split(","))
    assert on_gpu == {"cuda": "nccl", "cpu": "gloo"}  # the CPU messages (clock, scores, digests) stay on gloo


def test_workers_on_gpus_join_with_nccl_bound_to_their_own_gpu(monkeypatch):
    """What ``setup`` and ``wrap`` ask of torch.distributed, recorded instead of run (no GPU, no NCCL here)."""
    calls = []
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda name, **options: calls.append((name, options)))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))
    monkeypatch.setattr(distributed, "current", lambda: Context(1, 2))
    assert distributed.setup(torch.device("cuda", 1)) == Context(1, 2)
    assert calls[0] == ("set_device", torch.device("cuda", 1))
    assert calls[1][0] == "cpu:gloo,cuda:nccl" and calls[1][1]["device_id"] == torch.device("cuda", 1)
    calls.clear()
    distributed.setup(torch.device("cpu"))
    assert [name for name, _ in calls] == ["gloo"]

    wrapped = []
    monkeypatch.setattr(distributed, "DistributedDataParallel", lambda module, **options: wrapped.append(options))
    monkeypatch.setattr(devices, "of", lambda module: torch.device("cuda", 1))
    distributed.wrap(torch.nn.Linear(2, 2), Context(1, 2))
    assert wrapped == [{"device_ids": [1], "output_device": 1}]


def test_a_batch_moves_whole_but_for_the_lengths_packing_reads_on_the_cpu(sample):
    config = tiny_config()
    vocabs = build_vocabs(sample[:8], config)
    from lstmtag.batch import make_batch

    batch = make_batch(sample[:4], vocabs)
    moved = devices.move(([batch, {"x": torch.ones(2)}], "text", None), META)
    on_meta = moved[0][0]
    for name in ("words", "mask", "word_types", "chars"):
        assert getattr(on_meta, name).device == META, name
    assert all(tags.device == META for tags in on_meta.labels.values())
    assert on_meta.lengths.device.type == on_meta.char_lengths.device.type == "cpu"
    assert moved[0][1]["x"].device == META and moved[1:] == ("text", None)
    assert on_meta.spellings == batch.spellings


class _Mixing(TorchDispatchMode):
    """Records every op that reads a CPU tensor beside a tensor on ``device`` (the CPU scalar case included)."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device, self.mixed, self.ops = device, [], 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kinds = {t.device.type for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        self.ops += 1
        if self.device.type in kinds and "cpu" in kinds and not str(func).startswith(HOST_LENGTHS):
            self.mixed.append(str(func))
        return func(*args, **kwargs)


def _step_on_meta(task: loop.Task, batch) -> _Mixing:
    """One training step of ``task`` as the loop takes it, with the model on the meta device."""
    task.model.to(META)
    inputs, _ = task.piece(batch, Context(), random.Random(0))
    inputs = devices.move(inputs, META)
    task.objective.train()
    # Boolean-mask indexing (the heads' ``emissions[mask]``) has a data-dependent shape; on meta, take every cell.
    with fx_config.patch(meta_nonzero_assume_all_nonzero=True), _Mixing(META) as mixing:
        loss = task.objective(*inputs)
        loss.backward()
    assert loss.device == META
    assert all(p.grad is not None and p.grad.device == META for p in task.model.parameters() if p.requires_grad)
    return mixing


def _shortest(task: TaggerTask) -> list:
    """A training batch (sentences of one length) of the shortest sentences: few ops on meta."""
    return min(task.batches(1), key=lambda batch: len(batch[0].words))


def _clipped(sentence: Sentence, size: int) -> Sentence:
    """The first ``size`` words of ``sentence`` with their labels: meta runs every op in Python, slowly."""
    return Sentence(sentence.words[:size], {name: tags[:size] for name, tags in sentence.labels.items()})


def _tagger_task(sample, *overrides, targets=False):
    config = tiny_config("model.word_dropout=0.25", "model.dropout=0.1", "model.num_layers=1", *overrides)
    train = [_clipped(sentence, 3 + index % 2) for index, sentence in enumerate(sample[:12])]
    vocabs = build_vocabs(train, config)
    model = build_tagger(config, vocabs)
    soft = {}
    if targets:  # a teacher's distributions, as teacher_targets makes them: float16 on the CPU
        soft = {
            id(s): {name: torch.rand(len(s.words), len(vocabs.labels[name])).half() for name in ("upos",)}
            for s in train
        }
    return TaggerTask(train, train, config, vocabs, model, "unused", info={}, targets=soft, weight=0.5), train


@pytest.mark.parametrize(
    "overrides",
    [(), ("model.head=crf",), ("model.bidirectional=false", "model.char_hidden=0")],
    ids=["softmax", "crf", "no-chars"],
)
def test_every_tensor_of_a_tagger_step_is_made_on_the_models_device(sample, overrides):
    task, _ = _tagger_task(sample, *overrides)
    mixing = _step_on_meta(task, _shortest(task))
    assert mixing.ops > 100 and mixing.mixed == []


def test_every_tensor_of_a_distillation_step_is_made_on_the_models_device(sample):
    task, _ = _tagger_task(sample, targets=True)
    assert isinstance(task.objective, distill.DistillLoss)
    mixing = _step_on_meta(task, _shortest(task))
    assert mixing.ops > 100 and mixing.mixed == []


def _lm_task(*overrides):
    config = load_config(
        None, ["lm.embed_dim=8", "lm.hidden_size=8", "lm.batch_size=3", "lm.seq_len=5", "lm.dropout=0.1", *overrides]
    )
    data = torch.randint(0, 11, (3, 40))
    model = LSTMLanguageModel(config.lm, 11)
    return LMTask(data, data, None, config, model, "unused", info={})


def test_every_tensor_of_a_language_model_step_is_made_on_the_models_device():
    task = _lm_task()
    first = _step_on_meta(task, 0)
    second = _step_on_meta(task, 5)  # starts from the (h, c) the first step carried
    assert task.objective.state[0].device == META
    assert first.mixed == second.mixed == [] and second.ops > 50


def test_a_resumed_language_models_state_goes_to_the_models_device():
    task = _lm_task()
    task.model.to(META)
    saved = {"h": torch.zeros(1, 3, 8), "c": torch.zeros(1, 3, 8)}  # as read from a resume file: CPU
    task.restore_carried(saved, Context())
    assert [t.device for t in task.objective.state] == [META, META]
    assert {t.device for t in task.carried(Context()).values()} == {META}


def test_every_tensor_of_a_segmenter_step_is_made_on_the_models_device(sample):
    config = load_config(None, ["model.kind=segmenter", "model.char_dim=8", "model.hidden_size=8", "model.dropout=0.1"])
    data, _ = labelled(sample[:20])
    segmenter = TrainedSegmenter(config, char_vocabulary(text for text, _ in data), None)
    task = SegmenterTask(segmenter, [(text[:40], labels[:40]) for text, labels in data], [], "unused")
    mixing = _step_on_meta(task, task.batches(1)[0])
    assert mixing.ops > 50 and mixing.mixed == []


def test_on_the_cpu_the_loop_moves_and_copies_nothing(sample, tmp_path, monkeypatch):
    """A CPU run takes the steps it took before devices were a setting: no move, no copy for scoring."""

    def refuse(*args):
        raise AssertionError("moved inputs on the CPU")

    monkeypatch.setattr(devices, "move", refuse)
    scored = []  # whether scoring got the model itself, not a copy
    monkeypatch.setattr(
        TaggerTask, "evaluate", lambda self, model: scored.append(devices.on_cpu(model) is model) or 0.5
    )
    train_tagger(sample[:8], sample[:2], tiny_config("train.epochs=1", "train.device=cpu"), tmp_path / "m.safetensors")
    assert scored == [True]
