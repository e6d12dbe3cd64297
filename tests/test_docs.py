"""Run every python block of docs/lstm-state.md in order, so the page cannot go stale."""

import re
from pathlib import Path

import pytest

from lstmtag.models import SHIPPED, shipped_dirs

DOC = Path(__file__).resolve().parents[1] / "docs" / "lstm-state.md"


@pytest.mark.skipif(
    not any((d / SHIPPED["en"]).is_file() for d in shipped_dirs()), reason="the shipped English model is not installed"
)
def test_lstm_state_page_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    assert (tmp_path / "lstm-state-en.png").stat().st_size > 10_000


UNITS_DOC = DOC.with_name("units.md")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.slow
@pytest.mark.skipif(
    not all(
        any((d / name).is_file() for d in shipped_dirs())
        for name in ("en_ewt.safetensors", "shakespeare_char.safetensors")
    ),
    reason="the shipped models are not installed",
)
@pytest.mark.skipif(not (SHARED / "ud" / "en_ewt").is_dir(), reason="the shared data is not beside the checkout")
def test_units_walk_through_runs(tmp_path, monkeypatch):
    """docs/units.md: its blocks assert what the text says the tools found on the shipped models."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LSTMTAG_DATA", str(SHARED))
    blocks = re.findall(r"```python\n(.*?)```", UNITS_DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 8
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(UNITS_DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    for picture in ("units-lm-line.png", "units-lm.png", "units-en.png"):
        assert (tmp_path / picture).stat().st_size > 10_000
