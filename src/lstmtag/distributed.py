"""Data-parallel training on PyTorch's own engine: torchrun starts the workers, DDP averages gradients.

Every worker runs the same loop (loop.py) on the same global batches; each takes its share of every
batch (``share``), so all workers take the same number of steps and an uneven split never hangs.
Rank 0 alone evaluates, writes files and reports progress; what decides when to stop (the clock,
the dev score) is sent from rank 0 to all, so every rank stops at the same step.

One machine, two workers::

    torchrun --nproc-per-node 2 -m lstmtag train --train T --dev D --out M   # or: lstmtag train ... --nproc 2

Several machines (run the same command on each; HOST is one of them, reachable from all)::

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 -m lstmtag train ...

On the CPU the process group uses gloo. On GPUs (``train.device`` auto or cuda: each worker takes
``cuda:LOCAL_RANK``) it uses NCCL for the gradients DDP averages and keeps gloo for the small
messages on the CPU (the clock, dev scores, digests), so those collectives are the same code on both.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import hashlib
import os
import socket
import subprocess
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lstmtag import devices

with contextlib.suppress(ImportError):  # imported before any process group exists, on purpose: see ``teardown``
    import torch.distributed.nn  # noqa: F401

TIMEOUT = datetime.timedelta(minutes=10)  # a collective waits this long for a silent peer before failing


@dataclass(frozen=True)
class Context:
    """Where this process stands in the job: rank ``rank`` of ``world`` workers."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that evaluates, writes files and reports."""
        return self.rank == 0


def current() -> Context:
    """The running job's context: from the process group if one is set up, else a lone worker."""
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size())
    return Context()


def launched_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or ("WORLD_SIZE" in os.environ and "RANK" in os.environ)


def backend(device: torch.device) -> str:
    """The process group's backend for workers on ``device``: gloo on the CPU; NCCL for CUDA tensors beside it."""
    return "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"


def setup(device: torch.device | None = None) -> Context:
    """Join the process group torchrun describes in the environment; a lone worker without torchrun.

    ``device``: where this worker trains (``devices.resolve``); the CPU when not given.
    """
    if not launched_by_torchrun() or dist.is_initialized():
        return current()
    if device is not None and device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL and the object collectives use the current device
        dist.init_process_group(backend(device), timeout=TIMEOUT, device_id=device)
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)
    return current()


def teardown() -> None:
    """Leave the process group so that its gloo threads end now, not during interpreter shutdown.

    A process group still alive at exit is freed by Python's final garbage collection while gloo's
    threads still run, and the worker may die in C++ ("terminate called without an active
    exception", SIGABRT) after a successful run. Three things can keep it alive: the frames of an
    exception being handled (they hold the DDP wrapper), the DDP wrapper's own reference cycles, and
    the default arguments of ``torch.distributed.nn.functional``, which capture the process group
    itself when that module is first imported after the group exists (hence the import above).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    error = sys.exc_info()[1]
    if error is not None:
        traceback.clear_frames(error.__traceback__)
    gc.collect()
    dist.destroy_process_group()
    gc.collect()


def wrap(objective: nn.Module, context: Context) -> nn.Module:
    """DDP around the objective when there are several workers: its ``forward`` then syncs gradients.

    On a GPU, DDP is told the one device the objective's weights are on, as PyTorch asks for.
    """
    if context.world == 1:
        return objective
    device = devices.of(objective)
    if device.type == "cuda":
        return DistributedDataParallel(objective, device_ids=[device.index], output_device=device.index)
    return DistributedDataParallel(objective)


def share(count: int, context: Context) -> slice:
    """This rank's contiguous part of ``count`` items: sizes differ by at most one, the larger parts first.

    With fewer items than ranks the last ranks get none (rank 0 always gets one).
    """
    size, extra = divmod(count, context.world)
    start = context.rank * size + min(context.rank, extra)
    return slice(start, start + size + (context.rank < extra))


def broadcast_floats(values: Sequence[float], context: Context) -> list[float]:
    """Rank 0's ``values`` on every rank (the clock, a dev score): so all ranks decide alike."""
    if context.world == 1:
        return list(values)
    tensor = torch.tensor(list(values), dtype=torch.float64)
    dist.broadcast(tensor, src=0)
    return tensor.tolist()


def gather_rows(tensor: torch.Tensor, dim: int, context: Context) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along ``dim`` in rank order (sizes along ``dim`` may differ)."""
    if context.world == 1:
        return tensor
    sizes = [None] * context.world
    dist.all_gather_object(sizes, tensor.shape[dim])
    moved = tensor.movedim(dim, 0).contiguous()
    padded = moved.new_zeros((max(sizes), *moved.shape[1:]))  # on the tensor's device: NCCL gathers GPU tensors
    padded[: moved.shape[0]] = moved
    parts = [torch.empty_like(padded) for _ in range(context.world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)]).movedim(0, dim)


def check_agreement(what: dict[str, str], context: Context) -> None:
    """Stop with a clear error when ranks were given different data or settings.

    ``what`` maps a name ("training data", "config") to a digest; rank 0's digests are the reference.
    """
    if context.world == 1:
        return
    every: list[dict[str, str] | None] = [None] * context.world
    dist.all_gather_object(every, what)
    reference = every[0] or {}
    for rank, digests in enumerate(every):
        for name, digest in (digests or {}).items():
            if reference.get(name) != digest:
                raise ValueError(
                    f"rank {rank} has a different {name} from rank 0 ({digest[:12]} against "
                    f"{reference.get(name, '-')[:12]}): give every worker the same files and settings"
                )


def digest(*parts: object) -> str:
    """A short fingerprint of ``parts`` (strings, bytes or anything with a stable ``repr``)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part if isinstance(part, bytes) else repr(part).encode())
        hasher.update(b"\x00")
    return hasher.hexdigest()


def lost_peer(error: BaseException) -> bool:
    """True for an error of the link between workers (a peer died or timed out), not of the model."""
    return isinstance(error, dist.DistError) or (
        isinstance(error, RuntimeError) and any(name in str(error) for name in ("gloo", "NCCL", "nccl"))
    )


def free_port() -> int:
    """A TCP port nobody listens on now (the operating system picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def launch(nproc: int, args: Sequence[str], *, port: int | None = None) -> int:
    """Run ``python -m lstmtag ARGS`` on ``nproc`` workers under torchrun; its exit code.

    One thread per worker unless OMP_NUM_THREADS says otherwise: N workers on N cores, not N x N threads.
    """
    if nproc < 1:
        raise ValueError(f"--nproc must be 1 or more, got {nproc}")
    if port is not None and port_taken(port):
        raise ValueError(f"port {port} is taken on this machine; pick another with --port or leave it out")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(nproc),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port if port is not None else free_port()),
        "-m",
        "lstmtag",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.run(command, env=env, check=False).returncode


def without_launch_options(argv: Sequence[str]) -> list[str]:
    """``argv`` minus ``--nproc N`` / ``--nproc=N`` and ``--port P``: what each worker runs."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--nproc", "--port"):
            skip = True
        elif not arg.startswith(("--nproc=", "--port=")):
            kept.append(arg)
    return kept
