"""Data-parallel training: 2 gloo workers on CPU, started by torch.multiprocessing or by torchrun."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lstmtag import checkpoint, distributed
from lstmtag.config import load_config
from lstmtag.distributed import Context, share, without_launch_options
from lstmtag.lm_train import train_lm
from lstmtag.train import train_tagger
from tests.conftest import DATA, EWT, TINY, tiny_config

ROOT = Path(__file__).resolve().parents[1]
FEW = ["train.epochs=3", "train.patience=10", "train.batch_size=8"]  # 16 sentences: a few steps an epoch
LM_TINY = [
    "lm.embed_dim=16",
    "lm.hidden_size=24",
    "lm.num_layers=2",
    "lm.dropout=0.0",
    "lm.batch_size=5",  # odd: 3 streams on rank 0, 2 on rank 1
    "lm.seq_len=16",
    "lm.lr=0.01",
    "lm.eval_every=7",  # 10 windows an epoch: the first evaluation (and the kill) comes mid-pass
    "lm.threads=1",
    "lm.epochs=2",
]
TEXT = "the cat sat on the mat. the dog sat on the log. " * 20


def test_shares_cover_every_item_once_and_differ_by_at_most_one():
    for world in (1, 2, 3, 5):
        for count in range(12):
            parts = [range(count)[share(count, Context(rank, world))] for rank in range(world)]
            assert [i for part in parts for i in part] == list(range(count))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
            assert count == 0 or len(parts[0]) > 0  # rank 0 reports the loss: never empty


def test_launch_options_are_not_passed_to_the_workers():
    argv = ["train", "--nproc", "2", "--train", "t", "--port=29500", "--nproc=3", "--out", "m"]
    assert without_launch_options(argv) == ["train", "--train", "t", "--out", "m"]


def _tagger_worker(rank, world, store, out, overrides, kill_after_eval, train_file):
    """One spawned rank: join the group through a file, train, leave."""
    from lstmtag.data import load_labelled

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        sample = load_labelled(train_file, "conllu", ["upos", "xpos"])

        def kill(progress):
            if kill_after_eval and progress.event == "eval":
                raise KeyboardInterrupt

        train_tagger(sample[:16], sample[:6], tiny_config(*overrides), out, on_progress=kill)
    finally:
        distributed.teardown()
    assert _gloo_threads() == []  # left now, not at interpreter exit (where they may abort the worker)


def _gloo_threads() -> list[str]:
    """Names of this process's gloo threads (Linux names threads in /proc; elsewhere none are seen)."""
    names = []
    for task in Path("/proc/self/task").glob("*/comm"):
        try:
            names.append(task.read_text().strip())
        except OSError:  # the thread ended while being listed
            continue
    return sorted(name for name in names if "gloo" in name)


def _raising_worker(rank, world, store):
    """Tear down while an error that holds a DDP model in its frames is being handled."""
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    seen = _gloo_threads()

    def fail():
        model = DistributedDataParallel(torch.nn.Linear(3, 2))
        model(torch.ones(4, 3)).sum().backward()
        raise KeyboardInterrupt

    try:
        fail()
    except KeyboardInterrupt:
        distributed.teardown()
        left = _gloo_threads()  # checked while the error (and the frames holding the model) still exists
    assert not dist.is_initialized()
    assert seen and left == [], (seen, left)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc (Linux)")
def test_teardown_during_an_error_frees_the_process_group(tmp_path):
    _spawn(_raising_worker, tmp_path)


def _spawn(worker, tmp_path, *args, world=2):
    store = tmp_path / f"store-{time.monotonic_ns()}"
    mp.spawn(worker, args=(world, store, *args), nprocs=world, join=True)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    tensors = checkpoint.read(checkpoint.state_path(out)).tensors
    return {name: tensor for name, tensor in tensors.items() if name.startswith("model.")}


def _assert_close(a: dict, b: dict, tolerance: float) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=tolerance, rtol=0), (name, (a[name] - b[name]).abs().max())


def test_two_workers_with_half_batches_give_the_weights_of_one_worker(sample, tmp_path):
    one = tmp_path / "one.safetensors"
    train_tagger(sample[:16], sample[:6], tiny_config(*FEW), one)
    two = tmp_path / "two.safetensors"
    _spawn(_tagger_worker, tmp_path, two, FEW, False, DATA / "ewt_sample.conllu")
    steps = checkpoint.read(checkpoint.state_path(two)).info["run"]["step"]
    assert steps >= 6  # a few steps, each on 2 x half a batch (batches of 1 sentence: one rank weighted 0)
    _assert_close(_weights(one), _weights(two), 1e-5)


def test_a_killed_two_worker_run_resumes_on_one_worker(sample, tmp_path):
    straight = tmp_path / "straight.safetensors"
    train_tagger(sample[:16], sample[:6], tiny_config(*FEW), straight)
    resumed = tmp_path / "resumed.safetensors"
    with pytest.raises(mp.ProcessRaisedException):  # rank 0's KeyboardInterrupt, or rank 1 losing rank 0
        _spawn(_tagger_worker, tmp_path, resumed, FEW, True, DATA / "ewt_sample.conllu")
    assert checkpoint.read(checkpoint.state_path(resumed)).info["run"]["step"] < _steps(straight)
    result = train_tagger(sample[:16], sample[:6], tiny_config(*FEW), resumed, resume=True)  # world size 1 now
    assert result.epochs_run == 3
    _assert_close(_weights(straight), _weights(resumed), 1e-5)


def _steps(out: Path) -> int:
    return checkpoint.read(checkpoint.state_path(out)).info["run"]["step"]


def _disagreeing_worker(rank, world, store, out, sample_file, dev_file):
    _tagger_worker(rank, world, store, out, FEW, False, sample_file if rank == 0 else dev_file)


def test_ranks_given_different_training_data_stop_with_a_clear_error(tmp_path):
    with pytest.raises(mp.ProcessRaisedException, match="rank 1 has a different training data from rank 0"):
        _spawn(
            _disagreeing_worker,
            tmp_path,
            tmp_path / "m.safetensors",
            DATA / "ewt_sample.conllu",
            DATA / "ewt_dev_sample.conllu",
        )
    assert not (tmp_path / "m.safetensors").exists()


def _distill_worker(rank, world, store, out, teacher_file):
    from lstmtag.data import load_labelled
    from lstmtag.predict import Predictor

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        sample = load_labelled(DATA / "ewt_sample.conllu", "conllu", ["upos", "xpos"])
        teacher = Predictor.load(teacher_file)
        train_tagger(sample[:16], sample[:6], tiny_config(*FEW), out, teacher=teacher, distill_weight=0.7)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # about 20 s
def test_distillation_on_two_workers_gives_the_weights_of_one(sample, tmp_path):
    from lstmtag.predict import Predictor

    teacher = tmp_path / "teacher.safetensors"
    train_tagger(sample[16:40], sample[:6], tiny_config("train.epochs=2", "train.seed=7"), teacher)
    one = tmp_path / "one.safetensors"
    train_tagger(sample[:16], sample[:6], tiny_config(*FEW), one, teacher=Predictor.load(teacher), distill_weight=0.7)
    two = tmp_path / "two.safetensors"
    _spawn(_distill_worker, tmp_path, two, teacher)
    _assert_close(_weights(one), _weights(two), 1e-5)


def _lm_worker(rank, world, store, out, kill_after_eval):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:

        def kill(progress):
            if kill_after_eval and progress.event == "eval":
                raise KeyboardInterrupt

        train_lm(TEXT, load_config(None, LM_TINY), out, on_progress=kill)
    finally:
        distributed.teardown()
    assert _gloo_threads() == []


@pytest.mark.slow  # about 25 s: two jobs of 2 spawned workers
def test_language_model_on_two_workers_matches_one_and_resumes_on_one(tmp_path):
    one = tmp_path / "one.safetensors"
    train_lm(TEXT, load_config(None, LM_TINY), one)
    two = tmp_path / "two.safetensors"
    _spawn(_lm_worker, tmp_path, two, False)
    # 20 Adam steps at lr 0.01 amplify the rounding of split batches a little more than the tagger's.
    _assert_close(_weights(one), _weights(two), 1e-4)
    # Killed mid-pass on 2 workers (each carrying its own streams), resumed on 1: the carried (h, c)
    # of all 5 streams was gathered into the resume state and is handed out again.
    resumed = tmp_path / "resumed.safetensors"
    with pytest.raises(mp.ProcessRaisedException):
        _spawn(_lm_worker, tmp_path, resumed, True)
    state = checkpoint.read(checkpoint.state_path(resumed)).tensors
    assert state["carried.h"].shape[1] == 5 and state["carried.h"].abs().sum() > 0
    assert _steps(resumed) == 7
    train_lm(TEXT, load_config(None, LM_TINY), resumed, resume=True)
    _assert_close(_weights(one), _weights(resumed), 1e-4)


def _lstmtag(*args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "lstmtag", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen
    )


def _descendants(pid: int) -> list[int]:
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        found += [int(child), *_descendants(int(child))]
    return found


@pytest.mark.slow  # about 30 s: two torchrun jobs
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the workers through /proc (Linux)")
def test_a_worker_killed_mid_run_is_a_clear_error_and_the_run_resumes(tmp_path):
    out = tmp_path / "m.safetensors"
    args = ["train", "--train", str(DATA / "ewt_sample.conllu"), "--dev", str(DATA / "ewt_dev_sample.conllu")]
    args += ["--out", str(out), *[f"--set={s}" for s in TINY], "--set=train.epochs=400", "--set=train.patience=400"]
    job = _lstmtag(*args, "--nproc", "2")
    state = checkpoint.state_path(out)
    deadline = time.monotonic() + 120
    while not state.is_file() and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.2)
    assert state.is_file(), job.communicate()[0].decode()
    workers = [pid for pid in _descendants(job.pid) if b"lstmtag" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    os.kill(workers[-1], signal.SIGKILL)
    output = job.communicate(timeout=90)[0].decode()  # no hang: the other worker is stopped too
    assert job.returncode != 0
    assert "workers stopped with exit code" in output, output
    saved = checkpoint.read(state).info["run"]
    reached, minutes = saved["step"], saved["elapsed"] / 60 + 0.1  # a few more seconds of training
    job = _lstmtag(*args, "--resume", "--max-minutes", str(minutes), "--nproc", "2")
    output = job.communicate(timeout=120)[0].decode()
    assert job.returncode == 0, output
    assert _steps(out) > reached and "2 workers" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt.safetensors", "m.safetensors"]


def test_a_taken_port_is_a_clear_error(tmp_path):
    import socket

    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        job = _lstmtag(
            "lm", "train", "--text", str(tmp_path / "t.txt"), "--out", "m", "--nproc", "2", "--port", str(port)
        )
        output = job.communicate(timeout=60)[0].decode()
    assert job.returncode == 2
    assert f"port {port} is taken" in output


def test_bad_input_with_nproc_is_one_error_line_before_any_worker_starts(tmp_path):
    (tmp_path / "bad.conllu").write_text("1\tThe\n", encoding="utf-8")
    bad = str(tmp_path / "bad.conllu")
    job = _lstmtag("train", "--train", bad, "--dev", bad, "--out", str(tmp_path / "m.safetensors"), "--nproc", "2")
    output = job.communicate(timeout=60)[0].decode()
    assert job.returncode == 2
    assert output.strip() == f"error: {bad}:1: expected 10 tab-separated columns, found 2"


@pytest.mark.slow  # about 20 s
def test_language_model_under_torchrun_with_c10d_rendezvous(tmp_path):
    """The multi-machine form of the command (rendezvous through c10d), on one machine."""
    from lstmtag.distributed import free_port

    (tmp_path / "text.txt").write_text(TEXT, encoding="utf-8")
    out = tmp_path / "lm.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2"]
    command += ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "-m", "lstmtag"]
    command += ["lm", "train", "--text", str(tmp_path / "text.txt"), "--out", str(out)]
    command += [f"--set={s}" for s in LM_TINY]
    job = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert job.returncode == 0, job.stderr
    assert job.stderr.count("best valid loss") == 1  # rank 0 alone reports
    assert checkpoint.read(out).info["workers"] == 2
    assert checkpoint.read(checkpoint.state_path(out)).tensors["carried.h"].shape[1] == 5


@pytest.mark.slow
def test_two_workers_train_on_an_ewt_slice_write_one_model_and_evaluate(tmp_path):
    if not EWT.is_dir():
        pytest.skip(f"{EWT} is not there")
    blocks = (EWT / "en_ewt-ud-train.conllu").read_text(encoding="utf-8").split("\n\n")
    (tmp_path / "train.conllu").write_text("\n\n".join(blocks[:800]) + "\n\n", encoding="utf-8")
    dev_blocks = (EWT / "en_ewt-ud-dev.conllu").read_text(encoding="utf-8").split("\n\n")
    (tmp_path / "dev.conllu").write_text("\n\n".join(dev_blocks[:200]) + "\n\n", encoding="utf-8")
    out = tmp_path / "runs" / "ewt.safetensors"
    out.parent.mkdir()
    settings = ["data.columns=upos", "model.hidden_size=64", "model.char_hidden=32", "train.epochs=3"]
    job = _lstmtag(
        "train",
        "--train",
        str(tmp_path / "train.conllu"),
        "--dev",
        str(tmp_path / "dev.conllu"),
        "--out",
        str(out),
        *[f"--set={s}" for s in settings],
        "--nproc",
        "2",
    )
    output = job.communicate(timeout=300)[0].decode()
    assert job.returncode == 0, output
    assert sorted(p.name for p in out.parent.iterdir()) == ["ewt.ckpt.safetensors", "ewt.safetensors"]
    assert output.count("best dev accuracy") == 1  # rank 0 alone reports
    assert checkpoint.read(out).info["workers"] == 2
    job = _lstmtag("evaluate", str(out), str(tmp_path / "dev.conllu"), "--json")
    report, _ = job.communicate(timeout=120)
    import json

    accuracy = json.loads(report.decode().splitlines()[-1])["columns"]["upos"]["accuracy"]
    assert accuracy > 0.7
    assert accuracy == pytest.approx(checkpoint.read(out).info["dev_accuracy"])
