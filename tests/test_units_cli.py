import json

import pytest
from typer.testing import CliRunner

from lstmtag.cli import app
from tests.conftest import DATA
from tests.units_fixtures import TEXT, tiny_lm

runner = CliRunner()
DEV = str(DATA / "ewt_dev_sample.conllu")
SAMPLE = str(DATA / "ewt_sample.conllu")


@pytest.fixture(scope="module")
def lm_file(tmp_path_factory):
    from lstmtag import checkpoint

    folder = tmp_path_factory.mktemp("lm")
    path = folder / "lm.safetensors"
    checkpoint.save(path, tiny_lm().to_file())
    (folder / "text.txt").write_text(TEXT, encoding="utf-8")
    return path


def test_units_json_has_the_documented_shape(tiny_tagger, tmp_path):
    plot = tmp_path / "units.png"
    result = runner.invoke(app, ["units", "--model", str(tiny_tagger), "--corpus", DEV, "--json", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"tokens", "labels", "units"}
    unit = report["units"][0]
    assert set(unit) == {
        "module",
        "layer",
        "direction",
        "unit",
        "h_mean",
        "h_std",
        "c_mean",
        "c_std",
        "saturation",
        "selective_for",
    }
    assert (unit["module"], unit["layer"], unit["direction"], unit["unit"]) == ("encoder", 0, "forward", 0)
    assert set(unit["saturation"]) == {"i", "f", "g", "o"} and len(unit["saturation"]["f"]) == 2
    assert set(unit["selective_for"][0]) == {"label", "effect", "count"}
    assert len(report["units"]) == 4 * 24
    assert plot.stat().st_size > 10_000


def test_units_table_names_the_most_selective_units(tiny_tagger):
    result = runner.invoke(app, ["units", "--model", str(tiny_tagger), "--corpus", DEV])
    assert result.exit_code == 0, result.output
    assert "gate saturation" in result.output and "PUNCT" in result.output and "encoder:" in result.output


def test_units_and_search_on_a_language_model(lm_file):
    text = str(lm_file.parent / "text.txt")
    result = runner.invoke(app, ["units", "--model", str(lm_file), "--corpus", text, "--json"])
    assert result.exit_code == 0, result.output
    labels = json.loads(result.stdout)["labels"]
    assert labels["newline"] == TEXT.count("\n") and labels["inside quotes"] > 0
    found = runner.invoke(
        app,
        ["search", "--model", str(lm_file), "--corpus", text, "--units", "0:forward:1", "--threshold", "0", "--json"],
    )
    assert found.exit_code == 0, found.output
    spans = json.loads(found.stdout)["spans"]
    assert spans and all(span["text"] for span in spans)
    shown = runner.invoke(
        app, ["search", "--model", str(lm_file), "--corpus", text, "--units=-0:forward:1", "--threshold", "0"]
    )
    assert shown.exit_code == 0 and "spans of 1+ tokens" in shown.output


def test_search_and_probe_on_a_tagger(tiny_tagger):
    found = runner.invoke(
        app,
        [
            "search",
            "--model",
            str(tiny_tagger),
            "--corpus",
            DEV,
            "--units",
            "1:forward:0,1:backward:3",
            "--threshold",
            "0",
            "--min-length",
            "2",
        ],
    )
    assert found.exit_code == 0, found.output
    assert "spans of 2+ tokens" in found.output
    probed = runner.invoke(app, ["probe", "--model", str(tiny_tagger), "--train", SAMPLE, "--dev", DEV, "--json"])
    assert probed.exit_code == 0, probed.output
    assert {row["direction"] for row in json.loads(probed.stdout)["probes"]} == {None, "forward", "backward", "both"}
    table = runner.invoke(app, ["probe", "--model", str(tiny_tagger), "--train", SAMPLE, "--dev", DEV])
    assert table.exit_code == 0 and "majority tag" in table.output and "layer 1 both" in table.output


def test_inspect_shows_the_top_units_and_a_summary(tiny_tagger):
    result = runner.invoke(
        app, ["inspect", "--model", str(tiny_tagger), "The cow jumped", "--top", "3", "--show", "h,f"]
    )
    assert result.exit_code == 0, result.output
    assert "top 3 of 24 units, by variance" in result.output
    assert result.output.count("h[") == 3 * 4 and result.output.count("f[") == 3 * 4
    assert "f keeps" in result.output and "|c|" in result.output
    every = runner.invoke(
        app, ["inspect", "--model", str(tiny_tagger), "The cow jumped", "--all-units", "--order", "tag:DET"]
    )
    assert every.exit_code == 0 and every.output.count("h[") == 24 * 4 and "by tag:DET" in every.output
    listed = runner.invoke(
        app, ["inspect", "--model", str(tiny_tagger), "The cow", "--order", "units:encoder:1:forward:7"]
    )
    assert listed.exit_code == 0 and listed.output.count("h[7]") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["units", "--corpus", "missing.conllu"], "missing.conllu"),
        (["search", "--corpus", DEV, "--units", "1:up:2", "--threshold", "0"], "LAYER:DIRECTION:UNIT"),
        (
            ["search", "--corpus", DEV, "--units", "1:forward:2", "--threshold", "0", "--min-length", "0"],
            "--min-length",
        ),
        (["inspect", "a b", "--show", "q"], "--show"),
        (["inspect", "a b", "--order", "units:999"], "units 0 to"),
        (["units", "--corpus", DEV, "--plot", "x.txt"], "--plot"),
    ],
)
def test_bad_input_is_one_clear_line(tiny_tagger, args, message):
    result = runner.invoke(app, [*args, "--model", str(tiny_tagger)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
