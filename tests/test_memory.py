"""memory.py: the allocator settings take effect on this (glibc) machine and never fail elsewhere."""

import os
import platform

import pytest

from lstmtag import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt/malloc_trim")
def test_settings_take_effect_on_glibc(monkeypatch):
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    assert memory.bound_heap() is True
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == memory.KERNEL_CACHE
    assert isinstance(memory.release(), bool)


def test_a_users_kernel_cache_setting_is_kept(monkeypatch):
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "256")
    memory.bound_heap()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "256"
