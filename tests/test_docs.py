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
