import pytest
from fastapi.testclient import TestClient

from lstmtag.predict import Predictor
from lstmtag.serve import create_app
from lstmtag.views import sentence_view
from tests.conftest import DATA


@pytest.fixture(scope="module")
def predictor(tiny_tagger):
    return Predictor.load(tiny_tagger)


@pytest.fixture(scope="module")
def client(predictor):
    with TestClient(create_app({"tiny": predictor}, corpus=DATA / "ewt_dev_sample.conllu")) as test_client:
        yield test_client


def test_view_is_the_sentence_view_of_the_trace(client, predictor):
    tokens = ["The", "cow", "jumped", "over", "the", "moon", "."]
    answer = client.post("/inspect/view", json={"tokens": tokens, "top": 5})
    assert answer.status_code == 200, answer.text
    view = answer.json()
    expected = sentence_view(predictor.inspect(tokens), top=5)
    assert view["model"] == "tiny" and view["tokens"] == tokens
    assert [layer["units"] for layer in view["layers"]] == [layer["units"] for layer in expected["layers"]]
    flat = [value for row in view["layers"][0]["h"] for value in row]
    assert flat == pytest.approx([value for row in expected["layers"][0]["h"] for value in row])
    every = client.post("/inspect/view", json={"text": "The cow jumped.", "top": 0, "order": "tag:NOUN"}).json()
    assert all(len(layer["units"]) == layer["size"] == 24 for layer in every["layers"])


def test_corpus_tag_order_uses_the_statistics_of_the_server_corpus(client, predictor):
    from lstmtag.corpus_trace import TaggerCorpus
    from lstmtag.units import collect
    from lstmtag.views import order_units, stats_from

    tokens = ["The", "cow", "jumped", "."]
    view = client.post("/inspect/view", json={"tokens": tokens, "top": 4, "order": "corpus-tag:PUNCT"}).json()
    stats = stats_from(collect(TaggerCorpus(predictor, DATA / "ewt_dev_sample.conllu")))
    trace = predictor.inspect(tokens)
    expected = [order_units(layer, order="tag:PUNCT", stats=stats, top=4) for layer in trace.layers]
    assert [layer["units"] for layer in view["layers"]] == expected
    assert view["order"] == "corpus-tag:PUNCT" and view["corpus"] is True


def test_search_reads_the_server_corpus(client):
    answer = client.post("/search", json={"units": ["encoder:1:forward:0", "encoder:1:backward:2"], "threshold": -0.2})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["sentences"] == 15 and found["matches"] >= len(found["spans"]) > 0
    lengths = [span["length"] for span in found["spans"]]
    assert lengths == sorted(lengths, reverse=True)


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/inspect/view", {"tokens": ["a"], "order": "loud"}, 422, "order"),
        ("/inspect/view", {"tokens": ["a"], "top": -1}, 422, "top"),
        ("/inspect/view", {}, 422, "tokens"),
        ("/search", {"units": ["encoder:1:up:0"], "threshold": 0}, 422, "units"),
        ("/search", {"units": ["encoder:1:forward:0", "other:1:forward:0"]}, 422, "units"),
        ("/search", {"units": []}, 422, "units"),
        ("/search", {"units": ["encoder:1:forward:0"], "model": "nope"}, 404, "model"),
    ],
)
def test_bad_requests_get_json_errors_naming_the_field(client, path, body, status, field):
    answer = client.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field and answer.json()["error"]


def test_search_without_a_corpus_says_how_to_give_one(predictor):
    with TestClient(create_app({"tiny": predictor})) as client:
        answer = client.post("/search", json={"units": ["encoder:1:forward:0"]})
        ordered = client.post("/inspect/view", json={"tokens": ["a"], "order": "corpus-tag:DET"})
    assert answer.status_code == 404 and "--corpus" in answer.json()["error"]
    assert ordered.status_code == 422 and "--corpus" in ordered.json()["error"]
