import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient

from lstmtag import models
from lstmtag.predict import Predictor
from lstmtag.serve import Limits, create_app
from lstmtag.train import train_tagger
from tests.conftest import multiword_segment, tiny_config


@pytest.fixture(scope="module")
def predictors(sample, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    train_tagger(sample[:12], sample[:4], tiny_config("train.epochs=2"), folder / "lstm.safetensors")
    train_tagger(sample, sample[:4], tiny_config("model.kind=hmm"), folder / "hmm.safetensors")
    return {"tiny": Predictor.load(folder / "lstm.safetensors"), "hmm": Predictor.load(folder / "hmm.safetensors")}


@pytest.fixture(scope="module")
def client(predictors):
    limits = Limits(max_body_bytes=20_000, max_sentences=5, max_tokens=50, max_wait_ms=20)
    with TestClient(create_app(predictors, limits)) as test_client:
        yield test_client


def test_tag_sentences_and_text(client, predictors):
    response = client.post("/tag", json={"sentences": [["The", "cow", "jumped"], ["Hi", "!"]]})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "tiny"
    assert [r["token"] for r in body["sentences"][0]] == ["The", "cow", "jumped"]
    assert [r["upos"] for r in body["sentences"][0]] == [
        r["upos"] for r in predictors["tiny"].tag(["The", "cow", "jumped"])
    ]
    text = client.post("/tag", json={"text": "The cow jumped. It rained!", "model": "hmm"}).json()
    assert text["model"] == "hmm" and [s["text"] for s in text["sentences"]] == ["The cow jumped.", "It rained!"]


def test_inspect_models_health_docs_page(client):
    trace = client.post("/inspect", json={"tokens": ["The", "cow"]}).json()
    assert trace["tokens"] == ["The", "cow"] and trace["layers"][0]["direction"] == "forward"
    assert len(trace["layers"][0]["f"]) == 2
    assert client.post("/inspect", json={"tokens": ["a"], "model": "hmm"}).status_code == 422
    models = client.get("/models").json()
    assert {m["name"] for m in models["models"]} == {"tiny", "hmm"}
    assert {m["name"]: (m["inspectable"], m["members"]) for m in models["models"]} == {
        "tiny": (True, 1),
        "hmm": (False, 1),
    }
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    assert "/tag" in client.get("/openapi.json").json()["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, None),
        ({"json": {"sentences": "The cow"}}, 422, "sentences"),
        ({"json": {"sentences": [["ok"]], "model": "nope"}}, 404, "model"),
        ({"json": {"sentences": [["a"]] * 6}}, 413, "sentences"),
        ({"json": {"sentences": [["a"] * 51]}}, 413, "sentences.0"),
        ({"json": {"sentences": [["a", ""]]}}, 422, "sentences.0.1"),
        ({"json": {"sentences": [[]]}}, 422, "sentences.0"),
        ({"json": {}}, 422, "sentences"),
        ({"json": {"text": "x" * 30_000}}, 413, None),
        ({"json": {"text": " \n\n "}}, 422, "text"),
        ({"json": {"text": "A. B. C. D. E. F."}}, 413, "sentences"),
        ({"json": {"text": "a " * 51}}, 413, "sentences.0"),
        ({"json": {"text": "Hi.", "sentences": [["Hi"]]}}, 422, "sentences"),
        ({"json": {"sentences": [["a"]], "extra": 1}}, 422, "extra"),
    ],
)
def test_bad_requests_get_clear_json_errors(client, kwargs, status, field):
    response = client.post("/tag", **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert "error" in body
    if field is not None:
        assert body.get("field") == field
    assert client.get("/health").status_code == 200  # still up


def test_concurrent_requests_are_batched_and_answer_as_alone(predictors):
    app = create_app(predictors, Limits(max_wait_ms=50))
    sentences = [["The", "cow", "jumped"], ["A", "dog", "barked", "loudly"], ["Hi"], ["It", "is", "raining", "."]] * 4
    calls = []
    original = predictors["tiny"].predict

    def counting(batch):
        calls.append(len(batch))
        return original(batch)

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await asyncio.gather(*(http.post("/tag", json={"sentences": [s]}) for s in sentences))

    predictors["tiny"].predict = counting
    try:
        responses = asyncio.run(main())
    finally:
        predictors["tiny"].predict = original
    for sentence, response in zip(sentences, responses, strict=True):
        got, alone = response.json()["sentences"][0], predictors["tiny"].tag(sentence)
        # Tags exactly; probabilities to float rounding (GEMM blocking differs with batch size).
        assert [{k: v for k, v in r.items() if not k.endswith("_prob")} for r in got] == [
            {k: v for k, v in r.items() if not k.endswith("_prob")} for r in alone
        ]
        for a, b in zip(got, alone, strict=True):
            assert a["upos_prob"] == pytest.approx(b["upos_prob"], abs=1e-6)
    assert len(calls) < len(sentences)  # several requests shared a batch
    assert sum(calls) == len(sentences)


def test_raw_text_is_split_by_the_models_segmenter(predictors, tiny_segmenter):
    from lstmtag.models import load_segmenter
    from lstmtag.segment import words

    segmenter = load_segmenter(tiny_segmenter[0])
    text = "I don't know.It's fine, isn't it?"
    predictor = Predictor(predictors["tiny"].bundle, segmenter=segmenter)
    with TestClient(create_app({"tiny": predictor})) as test_client:
        body = test_client.post("/tag", json={"text": text}).json()
    assert [[w["word"] for t in s["tokens"] for w in t["words"]] for s in body["sentences"]] == [
        words(sentence) for sentence in segmenter(text)
    ]


@pytest.fixture(scope="module")
def ud_client(ud_tagger):
    predictor = Predictor(models.load_tagger(ud_tagger), segmenter=multiword_segment)
    with TestClient(create_app({"ud": predictor})) as test_client:
        yield test_client, predictor


def _without_probs(value):
    """``value`` with every ``*_prob`` entry dropped (tags must match exactly, probabilities to rounding)."""
    if isinstance(value, dict):
        return {k: _without_probs(v) for k, v in value.items() if not k.endswith("_prob")}
    return [_without_probs(v) for v in value] if isinstance(value, list) else value


def test_raw_text_gets_the_pipelines_document_with_lemmas_and_features(ud_client, ud_sample):
    client, predictor = ud_client
    gold = ud_sample[5]  # memorised by the fixture
    text = "I dont know.\n\n" + " ".join(gold.words[:-1]) + "."
    body = client.post("/tag", json={"text": text}).json()
    assert _without_probs(body["sentences"]) == _without_probs(predictor(text))  # the Python API's view
    first, second = body["sentences"]
    assert (first["paragraph"], second["paragraph"]) == (0, 1)
    dont = first["tokens"][1]
    assert (dont["text"], text[dont["start"] : dont["end"]]) == ("dont", "dont")
    assert [w["word"] for w in dont["words"]] == ["do", "n't"]
    found = [w for t in second["tokens"] for w in t["words"]]
    assert [w["lemma"] for w in found] == gold.labels["lemma"]
    assert [w["feats"] for w in found] == gold.labels["feats"]
    assert all(0 <= w["lemma_prob"] <= 1 and 0 <= w["feats_prob"] <= 1 for w in found)


def test_pre_tokenized_sentences_keep_their_rows_with_lemmas_and_features(ud_client, ud_sample):
    client, predictor = ud_client
    gold = ud_sample[5]
    body = client.post("/tag", json={"sentences": [gold.words]}).json()
    (got,) = body["sentences"]
    assert [set(row) for row in got] == [
        {"token"} | {f"{c}{p}" for c in ("upos", "xpos", "feats", "lemma") for p in ("", "_prob")}
    ] * len(gold.words)
    assert _without_probs(got) == _without_probs(predictor.tag(gold.words))
    assert [row["lemma"] for row in got] == gold.labels["lemma"]


def test_requests_waiting_while_a_batch_runs_form_the_next_batch_without_any_wait(predictors):
    """With no added wait, whatever is queued when the model frees up is tagged together, not one by one."""
    from lstmtag.predict import Sentence
    from lstmtag.serve import Batcher

    calls = []
    original = predictors["tiny"].predict

    def counting(batch):
        calls.append(len(batch))
        return original(batch)

    predictors["tiny"].predict = counting
    batcher = Batcher(predictors["tiny"], Limits(max_wait_ms=0))

    async def main():
        return await asyncio.gather(*(batcher.tag([Sentence(["The", "cow", str(i)])]) for i in range(12)))

    try:
        tagged = asyncio.run(main())
    finally:
        predictors["tiny"].predict = original
    assert len(tagged) == 12 and sum(calls) == 12
    assert len(calls) <= 2, calls  # the first request alone at most, then everything queued behind it
