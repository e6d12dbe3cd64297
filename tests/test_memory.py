"""memory.py: the allocator settings take effect on this (glibc) machine and never fail elsewhere."""

import gc
import os
import platform

import pytest

from lstmtag import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt/malloc_trim")
def test_settings_take_effect_on_glibc(monkeypatch):
    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
        monkeypatch.setenv(name, "")  # so that the test's end restores what was there before
        monkeypatch.delenv(name)
    assert memory.bound_heap() is True
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == memory.KERNEL_CACHE
    assert os.environ["LRU_CACHE_CAPACITY"] == memory.MATMUL_CACHE
    assert isinstance(memory.release(), bool)


def test_a_users_kernel_cache_setting_is_kept(monkeypatch):
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "256")
    memory.bound_heap()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "256"


def test_a_users_matmul_cache_setting_is_kept(monkeypatch):
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "64")
    memory.bound_heap()
    assert os.environ["LRU_CACHE_CAPACITY"] == "64"


# bfloat16 products of many shapes (as the output layers see: one per batch size in tokens); prints the
# bytes of large blocks still allocated afterwards.
SHAPES = """
import ctypes, sys, torch
from lstmtag import memory
if sys.argv[1] == "bounded":
    memory.bound_heap()
else:
    ctypes.CDLL("libc.so.6").mallopt(-3, 65536)  # the same allocator setting, no cache bound
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uord ford keep".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
linear = torch.nn.Linear(256, 325).to(torch.bfloat16)
with torch.no_grad():
    for rows in range(100, 2100, 10):
        linear(torch.randn(rows, 256).to(torch.bfloat16))
print(libc.mallinfo2().hblkhd)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallinfo2")
def test_bounded_kernel_caches_keep_bfloat16_products_of_many_shapes_from_piling_up():
    import subprocess
    import sys

    import torch

    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("no native bfloat16 here: the cached oneDNN products are not used")
    src = os.path.dirname(os.path.dirname(memory.__file__))
    env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1")
    for name in ("LRU_CACHE_CAPACITY", "ONEDNN_PRIMITIVE_CACHE_CAPACITY"):
        env.pop(name, None)
    held = {
        mode: int(
            subprocess.run(
                [sys.executable, "-c", SHAPES, mode], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for mode in ("bounded", "default")
    }
    assert held["bounded"] < held["default"] / 3, held


def test_freeze_loaded_keeps_what_is_alive_out_of_the_collectors_passes_and_later_garbage_in():
    gc.unfreeze()
    try:
        kept = [[] for _ in range(100)]  # tracked objects alive before the freeze
        memory.freeze_loaded()
        assert gc.get_freeze_count() >= len(kept)
        scanned = {id(item) for item in gc.get_objects()}  # what the collector's passes still walk
        assert not any(id(item) in scanned for item in kept)
        cycle: list = []
        cycle.append(cycle)  # garbage made after the freeze is still collected
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
