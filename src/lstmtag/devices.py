"""Where training runs: the ``device`` setting resolved for this worker, and inputs moved there.

``auto`` takes a GPU when torch sees one, else the CPU. Under torchrun every worker of a machine
takes its own GPU, ``cuda:LOCAL_RANK``, as PyTorch's DDP examples do. On the CPU nothing is moved
or copied: a CPU run takes exactly the steps it took before the device was a setting.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from torch import nn

from lstmtag.config import DEVICE

CHOICES = "auto, cpu, cuda or cuda:N"


def resolve(setting: str, *, local_workers: int | None = None) -> torch.device:
    """The device ``setting`` names for this worker; a ``ValueError`` says what to give instead.

    torchrun's LOCAL_RANK says which of this machine's GPUs is this worker's; ``local_workers`` is how
    many workers share the machine (default: torchrun's LOCAL_WORLD_SIZE, else 1).
    """
    if DEVICE.fullmatch(setting) is None:
        raise ValueError(f"the device must be {CHOICES}, got {setting!r}")
    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise ValueError(
            f"the device {setting!r} is a GPU, but torch sees none here (torch {torch.__version__}, {built}); "
            "train with --device cpu (or auto)"
        )
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_workers = local_workers or int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    count = torch.cuda.device_count()
    if setting.startswith("cuda:"):
        index = int(setting.removeprefix("cuda:"))
        if local_workers > 1:
            raise ValueError(
                f"the device {setting!r} names one GPU for {local_workers} workers on this machine; give --device "
                "cuda (or auto) and each worker takes its own, cuda:LOCAL_RANK"
            )
        if index >= count:
            raise ValueError(f"there is no GPU cuda:{index}: this machine has {count} (cuda:0 to cuda:{count - 1})")
        return torch.device("cuda", index)
    if local_workers > count:
        raise ValueError(
            f"{local_workers} workers on this machine but {count} GPU(s): start at most {count} workers per "
            "machine, or train on the CPU with --device cpu"
        )
    return torch.device("cuda", local_rank)


def of(module: nn.Module) -> torch.device:
    """The device of ``module``'s weights (the CPU for a module without any)."""
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def move(value: Any, device: torch.device) -> Any:
    """``value`` with every tensor in it on ``device``: tensors, lists, tuples, dicts, and batches.

    A batch (``batch.Batch``) moves itself, as it knows which of its tensors belong on the CPU.
    Anything else (strings, numbers, None) is returned as it is.
    """
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(move(item, device) for item in value)
    if isinstance(value, dict):
        return {key: move(item, device) for key, item in value.items()}
    if callable(getattr(value, "to_device", None)):
        return value.to_device(device)
    return value


def on_cpu(module: nn.Module) -> nn.Module:
    """``module`` itself when it is on the CPU, else a CPU copy (the inference runtime is CPU code)."""
    if of(module).type == "cpu":
        return module
    return copy.deepcopy(module).cpu()
