import json

import pytest
import torch
from safetensors.torch import save_file

from lstmtag import checkpoint
from lstmtag.checkpoint import ModelFile, ModelFileError


def _model(tmp_path):
    path = tmp_path / "m.safetensors"
    checkpoint.save(path, ModelFile("example", {"a": 1}, {"words": ["x"]}, {"w": torch.arange(6.0)}, {"note": "hi"}))
    return path


def test_round_trip(tmp_path):
    loaded = checkpoint.read(_model(tmp_path))
    assert loaded.kind == "example" and loaded.config == {"a": 1} and loaded.info == {"note": "hi"}
    assert torch.equal(loaded.tensors["w"], torch.arange(6.0))


def test_truncated_file(tmp_path):
    path = _model(tmp_path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        checkpoint.read(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x00\x01not a model at all")
    with pytest.raises(ModelFileError, match=str(path)):
        checkpoint.read(path)


def test_plain_safetensors_is_not_a_model(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ModelFileError, match="not an lstmtag model"):
        checkpoint.read(path)


def test_newer_format_version(tmp_path):
    path = tmp_path / "new.safetensors"
    metadata = {"format": "lstmtag", "format_version": "99", "kind": "tagger", "config": "{}", "vocabs": "{}"}
    save_file({"w": torch.zeros(2)}, str(path), metadata=metadata)
    with pytest.raises(ModelFileError, match="newer"):
        checkpoint.read(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        checkpoint.read(tmp_path / "nope.safetensors")


def test_optimizer_state_round_trip():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    tensors, settings = checkpoint.optimizer_tensors(optimizer)
    json.dumps(settings)
    fresh = torch.optim.AdamW(model.parameters(), lr=0.1)
    checkpoint.load_optimizer(fresh, tensors, settings)
    for key, value in optimizer.state_dict()["state"][0].items():
        assert torch.equal(torch.as_tensor(value), torch.as_tensor(fresh.state_dict()["state"][0][key]))
