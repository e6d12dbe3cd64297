"""The web page in a real browser: Debian's Chromium driven by Playwright, against a live server."""

import contextlib
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from lstmtag.corpus_trace import TaggerCorpus
from lstmtag.models import SHIPPED, load_tagger, shipped_dirs
from lstmtag.predict import Predictor
from lstmtag.serve import create_app
from lstmtag.train import train_tagger
from lstmtag.units import collect
from lstmtag.views import sentence_view, stats_from
from tests.conftest import multiword_segment, tiny_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serving(app):
    """``app`` on uvicorn on a free loopback port, in a thread; yields its URL."""
    uvicorn = pytest.importorskip("uvicorn")
    port = _free_port()
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    for _ in range(100):
        if instance.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def server(sample, tmp_path_factory):
    if any((d / SHIPPED["en"]).is_file() for d in shipped_dirs()):
        predictor = Predictor.load("en")
    else:
        out = tmp_path_factory.mktemp("web") / "tiny.safetensors"
        train_tagger(sample[:12], sample[:4], tiny_config("train.epochs=2"), out)
        predictor = Predictor.load(out)
    app = create_app({"en": predictor}, corpus=Path(__file__).parent / "data" / "ewt_dev_sample.conllu")
    with _serving(app) as url:
        yield url, predictor


def _rows(page) -> list[str]:
    """The headings of the tag table's rows, top to bottom."""
    return page.evaluate("[...document.querySelectorAll('#tags tr')].map(r => r.cells[0].textContent)")


def test_page_tags_and_draws_heatmaps(server, tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, predictor = server
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/")
        page.fill("#sentence", "The cow jumped over the moon .")
        page.click("#go")
        page.wait_for_selector("#heatmaps canvas", timeout=20_000)
        tokens = page.locator("#tags th.token").all_inner_texts()
        assert tokens == ["The", "cow", "jumped", "over", "the", "moon", "."]
        shown = page.locator("#tags td.tag[data-column=upos]").all_inner_texts()
        expected = [row["upos"] for row in predictor.tag(tokens)]
        assert [cell.split("\n")[0] for cell in shown] == expected
        columns = [c for c in predictor.columns if c != "feats"] + [c for c in predictor.columns if c == "feats"]
        assert _rows(page) == ["word"] + [c.upper() for c in columns]  # a row per column the model has
        trace = predictor.inspect(tokens)
        view = sentence_view(trace)  # what the page draws: the top 32 units by variance, per layer
        layers = len(trace.layers)
        assert page.locator("#heatmaps canvas").count() == 7 * layers  # h, c, i, f, g, o and the summary
        labels = page.locator(".layer").first.locator(".unit-label").all_inner_texts()
        assert labels[:32] == [str(u) for u in view["layers"][0]["units"]]
        canvas = page.locator("#heatmaps canvas").first
        canvas.hover(position={"x": 5, "y": 2})
        tip = page.locator("#tooltip")
        first_unit = view["layers"][0]["units"][0]
        assert tip.is_visible() and re.fullmatch(rf"h\[The, unit {first_unit}\] = -?\d+\.\d{{4}}", tip.inner_text())
        page.locator("canvas.summary").first.hover(position={"x": 40, "y": 3 * 12 + 4})  # 'mean f' row, 2nd token
        expected_f = view["layers"][0]["summary"][1]["f"]
        assert tip.inner_text() == f"mean f[cow] = {expected_f:.4f}"
        # Order by a tag over the server's corpus: the units the corpus statistics rank first.
        page.select_option("#order", "corpus-tag:NOUN")
        page.wait_for_function(
            "document.querySelector('#heatmaps h3').textContent.includes('corpus-tag:NOUN')", timeout=60_000
        )
        corpus = TaggerCorpus(predictor, Path(__file__).parent / "data" / "ewt_dev_sample.conllu")
        ordered = sentence_view(trace, order="tag:NOUN", stats=stats_from(collect(corpus)))
        labels = page.locator(".layer").first.locator(".unit-label").all_inner_texts()
        assert labels[:32] == [str(u) for u in ordered["layers"][0]["units"]]
        page.select_option("#order", "variance")
        page.wait_for_function("document.querySelector('#heatmaps h3').textContent.includes('by variance')")
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        if os.environ.get("LSTMTAG_SCREENSHOT"):  # e.g. docs/web-page.png, to refresh the README picture
            shutil.copy(tmp_path / "page.png", os.environ["LSTMTAG_SCREENSHOT"])
        browser.close()
    assert (tmp_path / "page.png").stat().st_size > 20_000


def test_page_fits_a_long_sentence_shows_all_units_and_searches(server, tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, predictor = server
    words = ("the old man saw a small dog near the river and it ran away quickly , " * 5).split()[:60]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url + "/")
        page.fill("#sentence", " ".join(words))
        page.click("#go")
        page.wait_for_selector("#heatmaps canvas", timeout=30_000)
        assert page.locator("#tags th.token").count() == 60
        # Nothing runs past the right edge: every panel fits the window's width.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        widths = page.evaluate(
            "[...document.querySelectorAll('#heatmaps .map')].map(m => m.getBoundingClientRect().right)"
        )
        assert max(widths) <= 1280
        size = predictor.inspect(words[:2]).layers[0].h.shape[-1]
        page.check("#all-units")
        page.wait_for_function(f"document.querySelector('#heatmaps h3').textContent.includes('all {size} units')")
        heights = page.evaluate("[...document.querySelectorAll('#heatmaps canvas[data-name=h]')].map(c => c.height)")
        assert all(h >= size * 2 for h in heights)
        page.uncheck("#all-units")
        page.wait_for_function("document.querySelector('#heatmaps h3').textContent.includes('top 32')")
        first = page.locator(".layer").first.locator(".unit-label").first
        unit = first.get_attribute("data-unit")
        first.click()
        assert page.locator("#selected").inner_text() == unit
        page.fill("#threshold", "0")
        page.click("#search")
        page.wait_for_function("document.querySelector('#search-status').textContent.includes('spans')", timeout=30_000)
        status = page.locator("#search-status").inner_text()
        assert unit in status and "in 15 sentences" in status
        assert page.locator("#results li mark").count() >= 1
        page.screenshot(path=str(tmp_path / "long.png"), full_page=True)
        if os.environ.get("LSTMTAG_SCREENSHOT_LONG"):
            shutil.copy(tmp_path / "long.png", os.environ["LSTMTAG_SCREENSHOT_LONG"])
        browser.close()


@pytest.fixture(scope="module")
def ud_server(ud_tagger):
    predictor = Predictor(load_tagger(ud_tagger), segmenter=multiword_segment)
    with _serving(create_app({"ud": predictor})) as url:
        yield url, predictor


def test_page_shows_lemmas_features_and_the_words_of_multiword_tokens(ud_server, ud_sample, tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, predictor = ud_server
    gold = ud_sample[5]  # memorised by the fixture
    text = "I dont know. " + " ".join(gold.words[:-1]) + "."
    expected = [w for s in predictor(text) for t in s["tokens"] for w in t["words"]]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/")
        page.fill("#sentence", text)
        page.click("#go")
        page.wait_for_selector("#heatmaps canvas", timeout=30_000)
        assert _rows(page) == ["token", "word", "UPOS", "XPOS", "LEMMA", "FEATS"]
        assert page.locator("#tags th.surface").all_inner_texts() == ["I", "dont", "know", ".", *gold.words]
        mwt = page.locator("#tags th.mwt")
        assert mwt.count() == 1 and mwt.inner_text() == "dont" and mwt.get_attribute("colspan") == "2"
        assert mwt.get_attribute("title") == "multiword token: do + n't"
        assert page.locator("#tags th.token").all_inner_texts() == ["I", "do", "n't", "know", ".", *gold.words]
        assert page.locator("#tags th.token.sentence-start").all_inner_texts() == [gold.words[0]]
        lemmas = page.locator("#tags td.tag[data-column=lemma]").all_inner_texts()
        assert lemmas == [f"{w['lemma']}\n{w['lemma_prob']:.3f}" for w in expected]
        assert [cell.split("\n")[0] for cell in lemmas[5:]] == gold.labels["lemma"]
        chips = page.evaluate(
            "[...document.querySelectorAll('#tags td.tag[data-column=feats]')]"
            ".map(td => [...td.querySelectorAll('.feat')].map(c => c.textContent).join('|'))"
        )
        assert chips == [w["feats"] for w in expected]
        assert chips[5:] == gold.labels["feats"]
        probs = page.locator("#tags td.tag[data-column=feats] .prob").all_inner_texts()
        assert probs == [f"{w['feats_prob']:.3f}" for w in expected]
        page.locator("#tags").screenshot(path=str(tmp_path / "tags.png"))
        browser.close()
    assert (tmp_path / "tags.png").stat().st_size > 5_000
