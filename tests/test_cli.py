import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import lstmtag
from lstmtag.cli import app
from lstmtag.metrics import PER_CLASS_ROWS
from lstmtag.predict import Predictor
from lstmtag.segment import split_text
from tests.conftest import DATA, TINY

runner = CliRunner()
SAMPLE = str(DATA / "ewt_sample.conllu")
DEV = str(DATA / "ewt_dev_sample.conllu")


def _sets(*extra):
    return [arg for setting in (*TINY, *extra) for arg in ("--set", setting)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "m.safetensors"
    result = runner.invoke(app, ["train", "--train", SAMPLE, "--dev", DEV, "--out", str(out), *_sets("train.epochs=2")])
    assert result.exit_code == 0, result.output
    return out


def test_train_and_resume(model):
    result = runner.invoke(
        app, ["train", "--train", SAMPLE, "--dev", DEV, "--out", str(model), "--resume", *_sets("train.epochs=3")]
    )
    assert result.exit_code == 0, result.output
    assert "best dev accuracy" in result.output


def test_evaluate_json(model):
    result = runner.invoke(app, ["evaluate", str(model), DEV, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) >= {"columns", "sentences", "tokens", "seconds", "tokens_per_second"}
    assert set(report["columns"]["upos"]) >= {"accuracy", "known_accuracy", "unknown_accuracy", "per_tag"}
    assert report["sentences"] == 15


def test_evaluate_table(model):
    result = runner.invoke(app, ["evaluate", str(model), DEV])
    assert result.exit_code == 0 and "top confusions" in result.output


def test_tag_conllu_keeps_everything_else(model, tmp_path):
    out = tmp_path / "tagged.conllu"
    result = runner.invoke(app, ["tag", "--model", str(model), SAMPLE, "--out", str(out)])
    assert result.exit_code == 0, result.output
    original = (DATA / "ewt_sample.conllu").read_text(encoding="utf-8").split("\n")
    tagged = out.read_text(encoding="utf-8").split("\n")
    assert len(original) == len(tagged)
    for a, b in zip(original, tagged, strict=True):
        if a.startswith("#") or not a or not a.split("\t")[0].isdigit():
            assert a == b
        else:
            x, y = a.split("\t"), b.split("\t")
            assert x[:3] == y[:3] and x[5:] == y[5:]


@pytest.mark.parametrize(("fmt", "output"), [("text", "jsonl"), ("text", "tsv"), ("jsonl", "table")])
def test_tag_other_formats(model, tmp_path, fmt, output):
    path = tmp_path / "in"
    path.write_text('{"tokens": ["The", "cow"]}\n' if fmt == "jsonl" else "The cow\n", encoding="utf-8")
    result = runner.invoke(app, ["tag", "--model", str(model), "--input", fmt, "--output", output, str(path)])
    assert result.exit_code == 0, result.output
    expected = Predictor.load(model).tag(["The", "cow"])
    if output == "jsonl":
        record = json.loads(result.stdout)
        assert record["tokens"] == ["The", "cow"] and record["upos"] == [row["upos"] for row in expected]
    elif output == "tsv":
        rows = [line.split("\t") for line in result.stdout.strip().split("\n")]
        assert [(r[0], r[1], r[3]) for r in rows] == [(e["token"], e["upos"], e["xpos"]) for e in expected]
    else:
        lines = [line for line in result.stdout.split("\n") if line.strip().startswith(("The", "cow"))]
        cells = [[cell.strip() for cell in line.split("│")] for line in lines]
        assert [c[:2] + c[3:4] for c in cells] == [[e["token"], e["upos"], e["xpos"]] for e in expected]


def test_tag_raw_text_splits_it_with_the_library_tokenizer(model, tmp_path):
    path = tmp_path / "raw.txt"
    text = "I don't like it. The cow\njumped over the moon!\n\nA new paragraph."
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["tag", "--model", str(model), "--input", "raw", "--output", "jsonl", str(path)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.strip().split("\n")]
    assert [r["tokens"] for r in records] == split_text(text)
    predictor = Predictor.load(model)
    assert [r["upos"] for r in records] == [[row["upos"] for row in predictor.tag(r["tokens"])] for r in records]


@pytest.mark.parametrize("output", ["conllu", "jsonl", "table"])
def test_raw_text_gets_lemmas_and_features_in_every_output(ud_tagger, ud_sample, tmp_path, output):
    gold = ud_sample[5]  # memorised by the fixture
    path = tmp_path / "raw.txt"
    path.write_text("I dont know.\n\n" + " ".join(gold.words[:-1]) + ".", encoding="utf-8")
    result = runner.invoke(app, ["tag", "--model", str(ud_tagger), "--input", "raw", "--output", output, str(path)])
    assert result.exit_code == 0, result.output
    predictor = Predictor.load(ud_tagger)
    expected = [predictor.tag(words) for words in (["I", "dont", "know", "."], gold.words)]
    assert [row["lemma"] for row in expected[1]] == gold.labels["lemma"]
    assert [row["feats"] for row in expected[1]] == gold.labels["feats"]
    if output == "conllu":  # LEMMA is column 3, FEATS column 6
        lines = [line.split("\t") for line in result.stdout.split("\n") if line[:1].isdigit()]
        assert [(c[1], c[2], c[5]) for c in lines] == [
            (row["token"], row["lemma"], row["feats"]) for rows in expected for row in rows
        ]
    elif output == "jsonl":
        records = [json.loads(line) for line in result.stdout.strip().split("\n")]
        assert [(r["lemma"], r["feats"]) for r in records] == [
            ([row["lemma"] for row in rows], [row["feats"] for row in rows]) for rows in expected
        ]
        assert all(0 <= p <= 1 for r in records for p in r["lemma_prob"] + r["feats_prob"])
    else:  # features one per line under the word, so none is cut short; the lemma beside it
        lines = result.stdout.split("\n")
        heading = [cell.strip() for cell in lines[0].split("┃")]
        feats, lemma = heading.index("FEATS"), heading.index("LEMMA")
        shown = []
        for line in lines[1:]:
            cells = [cell.strip() for cell in line.split("│")]
            if len(cells) < len(heading) or line.startswith(" token"):
                continue
            if cells[0]:
                shown.append([cells[0], cells[lemma], cells[feats]])
            else:
                shown[-1][2] += "|" + cells[feats]
        assert shown == [[row["token"], row["lemma"], row["feats"]] for rows in expected for row in rows]


def test_the_table_shows_brackets_in_tokens_literally(model, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("[red]x[/red] [b]\n", encoding="utf-8")
    result = runner.invoke(app, ["tag", "--model", str(model), "--input", "text", "--output", "table", str(path)])
    assert result.exit_code == 0, result.output
    tokens = [line.split("│")[0].strip() for line in result.stdout.split("\n") if "│" in line]
    assert tokens == ["[red]x[/red]", "[b]"]


def test_inspect_json_and_plot(model, tmp_path):
    plot = tmp_path / "trace.png"
    result = runner.invoke(app, ["inspect", "--model", str(model), "The cow jumped", "--json", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    trace = json.loads(result.stdout)
    assert trace["tokens"] == ["The", "cow", "jumped"]
    assert {layer["direction"] for layer in trace["layers"]} == {"forward", "backward"}
    assert plot.stat().st_size > 10_000
    table = runner.invoke(app, ["inspect", "--model", str(model), "The cow jumped"])
    assert table.exit_code == 0 and "f keeps" in table.output  # the per-token summary under the top units


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "missing.safetensors", DEV], "no such model file"),
        (["tag", "--model", "x", "--output", "xml", SAMPLE], "--output"),
        (["train", "--train", "nope.conllu", "--dev", DEV, "--out", "x.safetensors"], "nope.conllu"),
        (
            ["train", "--train", SAMPLE, "--dev", DEV, "--out", "x.safetensors", "--set", "model.bogus=1"],
            "unknown setting",
        ),
    ],
)
def test_errors_exit_2_without_traceback(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_malformed_training_file_names_line(tmp_path):
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tThe\tthe\tDET\n", encoding="utf-8")
    result = runner.invoke(app, ["train", "--train", str(bad), "--dev", DEV, "--out", str(tmp_path / "m.safetensors")])
    assert result.exit_code == 2
    assert f"{bad}:1:" in result.output.replace("\n", "")


def test_lm_commands(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be, that is the question.\n" * 30, encoding="utf-8")
    out = tmp_path / "lm.safetensors"
    args = ["lm", "train", "--text", str(text), "--out", str(out)]
    for setting in (
        "lm.embed_dim=8",
        "lm.hidden_size=16",
        "lm.batch_size=4",
        "lm.seq_len=16",
        "lm.epochs=2",
        "lm.eval_every=10",
    ):
        args += ["--set", setting]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    generated = runner.invoke(
        app, ["lm", "generate", "--model", str(out), "--prompt", "to be", "--length", "20", "--seed", "3"]
    )
    assert generated.exit_code == 0 and generated.stdout.startswith("to be")
    scored = runner.invoke(app, ["lm", "score", "--model", str(out), str(text), "--json", "--chunk-chars", "50"])
    assert scored.exit_code == 0 and json.loads(scored.stdout)["tokens"] == len(text.read_text()) - 1
    inspected = runner.invoke(app, ["inspect", "--model", str(out), "to be", "--json"])
    assert inspected.exit_code == 0 and json.loads(inspected.stdout)["tokens"] == list("to be")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    failed = runner.invoke(app, ["lm", "train", "--text", str(empty), "--out", str(out)])
    assert failed.exit_code == 2 and "no text" in failed.output


def test_distill_trains_a_student_from_a_teacher(model, tmp_path):
    student = tmp_path / "student.safetensors"
    result = runner.invoke(
        app,
        ["distill", str(model), "--train", SAMPLE, "--dev", DEV, "--out", str(student), "--weight", "0.7"]
        + _sets("train.epochs=2", "model.hidden_size=12"),
    )
    assert result.exit_code == 0, result.output
    assert "teacher" in result.output and student.is_file()
    from lstmtag.models import load_tagger

    assert load_tagger(student).config.model.hidden_size == 12
    bad = runner.invoke(
        app, ["distill", str(model), "--train", SAMPLE, "--dev", DEV, "--out", str(student), "--weight", "2"]
    )
    assert bad.exit_code == 2 and "--weight" in bad.output


def test_export_writes_an_onnx_model_that_tags_alike(model, tmp_path):
    pytest.importorskip("onnxruntime")
    onnx_file = tmp_path / "m.onnx"
    result = runner.invoke(app, ["export", str(model), "--out", str(onnx_file)])
    assert result.exit_code == 0, result.output
    tagged = [
        runner.invoke(app, ["tag", "--model", name, DEV, "--output", "jsonl"]) for name in (str(model), str(onnx_file))
    ]
    assert tagged[0].exit_code == 0 and tagged[1].exit_code == 0
    rows = [[json.loads(line) for line in t.stdout.splitlines()] for t in tagged]
    assert [r["upos"] for r in rows[0]] == [r["upos"] for r in rows[1]] and len(rows[0]) == 15


@pytest.mark.parametrize("precision", ["float", "int8", "bf16"])
def test_evaluate_at_each_precision(model, precision):
    result = runner.invoke(app, ["evaluate", str(model), DEV, "--json", "--precision", precision])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["columns"]["upos"]["accuracy"] > 0.0


def test_unknown_precision_is_a_clear_error(model):
    result = runner.invoke(app, ["evaluate", str(model), DEV, "--precision", "fp4"])
    assert result.exit_code == 2 and "precision" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_command_loads_named_models_and_answers(model, tmp_path):
    """``lstmtag serve`` itself: NAME=PATH and bare PATH specs, a real server on a free loopback port."""
    port = _free_port()
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(lstmtag.__file__).parents[1])}
    command = [sys.executable, "-m", "lstmtag", "serve", "-m", f"tiny={model}", "-m", str(model), "--port", str(port)]
    server = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.2)
        assert [m["name"] for m in httpx.get(f"{url}/models").json()["models"]] == ["tiny", "m"]
        answer = httpx.post(f"{url}/tag", json={"sentences": [["The", "cow"]], "model": "m"}).json()
        assert answer["sentences"][0] == Predictor.load(model).tag(["The", "cow"])
    finally:
        server.terminate()
        server.wait(timeout=30)


def _text_of(conllu: str) -> str:
    """The text a CoNLL-U output spells: tokens joined by their SpaceAfter, paragraphs by blank lines."""
    paragraphs: list[str] = []
    for block in conllu.strip().split("\n\n"):
        lines = block.split("\n")
        last = 0  # the last word ID inside the multiword token being read
        if "# newpar" in lines or not paragraphs:
            paragraphs.append("")
        for line in lines:
            cells = line.split("\t")
            if line.startswith("#") or "." in cells[0]:
                continue
            if "-" in cells[0]:
                last = int(cells[0].split("-")[1])
            elif int(cells[0]) <= last:
                continue
            paragraphs[-1] += cells[1] + ("" if "SpaceAfter=No" in cells[9] else " ")
    return "\n\n".join(p.strip() for p in paragraphs)


@pytest.mark.parametrize("trained", [False, True])
def test_raw_text_to_conllu_keeps_every_character(model, tiny_segmenter, tmp_path, trained):
    text = "Al-Zaman: American forces killed him.They didn't stop!\n(Really?)  Yes\n\n\nA second\tparagraph, here."
    path = tmp_path / "raw.txt"
    path.write_text(text, encoding="utf-8")
    options = ["--segmenter", str(tiny_segmenter[0])] if trained else []
    result = runner.invoke(app, ["tag", "--model", str(model), "--input", "raw", str(path), *options])
    assert result.exit_code == 0, result.output
    assert _text_of(result.stdout) == "\n\n".join(" ".join(p.split()) for p in text.split("\n\n\n"))
    assert result.stdout.count("# newpar") == 2
    ids = [line for line in result.stdout.split("\n") if line.startswith("# sent_id = ")]
    assert ids == [f"# sent_id = {n}" for n in range(1, len(ids) + 1)]
    assert "SpaceAfter=No" in result.stdout
    words = [line.split("\t") for line in result.stdout.split("\n") if line and line[0].isdigit()]
    assert all(len(cells) == 10 and cells[3] != "_" for cells in words if "-" not in cells[0])


def test_evaluate_raw_prints_the_shared_task_scores(model, tiny_segmenter):
    gold = str(DATA / "ewt_dev_sample.conllu")
    result = runner.invoke(app, ["evaluate", str(model), gold, "--raw", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["segmenter"] == "rule tokenizer"
    assert set(report["scores"]) >= {"Tokens", "Sentences", "Words", "UPOS", "XPOS", "UFeats", "AllTags", "Lemmas"}
    result = runner.invoke(app, ["evaluate", str(model), gold, "--raw", "--segmenter", str(tiny_segmenter[0])])
    assert result.exit_code == 0, result.output
    assert "Sentences" in result.stdout and "seg.safetensors" in result.stdout


def test_a_tagger_given_as_segmenter_is_refused(model):
    result = runner.invoke(
        app, ["tag", "--model", str(model), "--input", "raw", "--segmenter", str(model), "-"], input="Hi."
    )
    assert result.exit_code == 2
    assert "not a segmenter" in result.output


@pytest.mark.parametrize("text", ["", "   \n\t\n\n  "])
def test_raw_input_without_text_is_one_clear_error(model, text):
    result = runner.invoke(app, ["tag", "--model", str(model), "--input", "raw", "-"], input=text)
    assert result.exit_code == 2
    assert "error: <stdin>: no sentences to tag; nothing written" in result.output


def test_a_megabyte_line_without_sentence_end_or_spaces_is_cut_at_the_documented_limits(model, tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("word " * 199_000 + "\n\n" + "a" * 5_500, encoding="utf-8")  # 995,000 + 5,500 bytes
    result = runner.invoke(app, ["tag", "--model", str(model), "--input", "raw", "--output", "jsonl", str(path)])
    assert result.exit_code == 0, result.output[-500:]
    records = [json.loads(line) for line in result.stdout.strip().split("\n")]
    assert [len(r["tokens"]) for r in records] == [1000] * 199 + [6]  # 199,000 words in sentences of 1,000
    assert [len(t) for t in records[-1]["tokens"]] == [1000] * 5 + [500]  # a run of letters in 1,000-character pieces


def test_train_a_segmenter_with_the_same_command(tmp_path):
    out = tmp_path / "seg.safetensors"
    config = Path(__file__).resolve().parents[1] / "configs" / "segmenter.toml"
    command = ["train", "--config", str(config), "--train", str(DATA / "ewt_sample.conllu")]
    command += ["--dev", str(DATA / "ewt_dev_sample.conllu"), "--out", str(out)]
    command += ["--set", "train.epochs=1", "--set", "model.hidden_size=8", "--set", "model.num_layers=1"]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "best dev accuracy" in result.output and out.is_file()
    again = [*command[:-6], "--set", "train.epochs=2", *command[-4:], "--resume"]  # one epoch more, resumed
    result = runner.invoke(app, again)
    assert result.exit_code == 0, result.output
    assert "at epoch 2" in result.output or "at epoch 1" in result.output


def test_evaluate_keeps_long_per_class_tables_short_and_json_complete(tmp_path):
    out = tmp_path / "lemma.safetensors"
    columns = "data.columns=upos,xpos,feats,lemma"
    trained = runner.invoke(
        app, ["train", "--train", SAMPLE, "--dev", DEV, "--out", str(out), *_sets(columns, "train.epochs=1")]
    )
    assert trained.exit_code == 0, trained.output
    table = runner.invoke(app, ["evaluate", str(out), DEV])
    assert table.exit_code == 0, table.output
    report = json.loads(runner.invoke(app, ["evaluate", str(out), DEV, "--json"]).stdout)
    lemmas, limit = len(report["columns"]["lemma"]["per_tag"]), PER_CLASS_ROWS
    assert (
        lemmas > limit and f"lemma: the {limit} most frequent of {lemmas:,} classes; --json lists all" in table.output
    )
    assert table.output.count("most frequent of") == sum(len(c["per_tag"]) > limit for c in report["columns"].values())
    summary = table.output[table.output.index("accuracy per column") :]
    for name, column in report["columns"].items():  # every column's all / known / unknown, in one table
        assert f"{column['unknown_accuracy']:.2%}" in summary and name in summary
