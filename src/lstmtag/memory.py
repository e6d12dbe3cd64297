"""Keep a long-running process's memory at what it uses: hand freed memory back to the system.

Why: glibc's allocator keeps freed blocks for reuse. Tagging allocates tensors of a different size
for every batch, so a stream of millions of sentences, or a service under a storm of requests,
leaves the process holding hundreds of MB it no longer uses (EWT train ten times over: 642 MiB peak
against 423 MiB for EWT test, before this module). Large blocks (tensors) now come straight from the
system and go straight back, the rest is trimmed now and then, and the kernel caches of oneDNN and
ideep, which keep compiled kernels per batch shape, are bounded (bench/memory.py has the figures).
Elsewhere (not glibc) the allocator settings are no-ops. ``freeze_loaded`` is the same kind of
process-wide setting for the same commands, for time rather than memory: it keeps the garbage
collector's full passes off what was loaded before tagging.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os

_M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)
_LARGE = 64 * 1024  # blocks from this size up are mapped and unmapped directly (glibc's default is 128 kB, growing)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
            return None
    except OSError:
        return None
    return libc


# oneDNN (PyTorch's CPU kernels) keeps up to 1024 compiled LSTM kernels, one per batch shape, each
# with its own buffers; mixed-length batches have many shapes, so the cache alone grew a stream by
# ~100 MB. 16 measured as fast on EWT test (the shapes of neighbouring batches repeat).
KERNEL_CACHE = "16"


# ideep (PyTorch's layer over oneDNN) keeps its own cache of compiled matrix products, 1,024 by default
# (``LRU_CACHE_CAPACITY``), one per shape: in bfloat16 the output layers' products are cached per batch
# size in tokens, each holding about 250 kB, so one copy of EWT train left 170 of them (+43 MB) behind.
MATMUL_CACHE = "16"


def bound_heap() -> bool:
    """Have large allocations bypass the heap and bound oneDNN's and ideep's kernel caches, for the whole process.

    Call once, early (before the first batch is tagged), from a command that runs long (``tag`` on a
    big file, ``serve``). A user's own ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` and ``LRU_CACHE_CAPACITY``
    are kept. True where the allocator setting took effect.
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", KERNEL_CACHE)  # read by oneDNN at its first kernel
    os.environ.setdefault("LRU_CACHE_CAPACITY", MATMUL_CACHE)  # read by ideep at its first cached product
    libc = _libc()
    return bool(libc and libc.mallopt(_M_MMAP_THRESHOLD, _LARGE))


def release() -> bool:
    """Return the heap's free pages to the system (a few ms); True where memory was released."""
    libc = _libc()
    return bool(libc and libc.malloc_trim(0))


def freeze_loaded() -> None:
    """Leave everything alive now (torch, the loaded models) out of the garbage collector's passes.

    Why: a process holding torch and a model has ~175,000 objects the cyclic collector tracks, and
    each full collection walks them all (0.10-0.15 s on the AMD EPYC). Tagging raw text makes a token
    object per token, enough to set one off about every 125,000 characters of EWT text: a fifth of
    the time of tagging that text. Those objects live as long as the process anyway, so freezing them
    (``gc.freeze``, which Python's documentation suggests for long-lived state) costs no memory;
    garbage made later is collected as before. Call once, after loading, from ``tag`` or ``serve``.
    """
    gc.collect()  # what is already garbage goes now, not frozen with the rest
    gc.freeze()
