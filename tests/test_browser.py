"""The web page in a real browser: Debian's Chromium driven by Playwright, against a live server."""

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from lstmtag.models import SHIPPED, shipped_dirs
from lstmtag.predict import Predictor
from lstmtag.serve import create_app
from lstmtag.train import train_tagger
from tests.conftest import tiny_config

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


@pytest.fixture(scope="module")
def server(sample, tmp_path_factory):
    uvicorn = pytest.importorskip("uvicorn")
    if any((d / SHIPPED["en"]).is_file() for d in shipped_dirs()):
        predictor = Predictor.load("en")
    else:
        out = tmp_path_factory.mktemp("web") / "tiny.safetensors"
        train_tagger(sample[:12], sample[:4], tiny_config("train.epochs=2"), out)
        predictor = Predictor.load(out)
    port = _free_port()
    config = uvicorn.Config(create_app({"en": predictor}), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    for _ in range(100):
        if instance.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", predictor
    instance.should_exit = True
    thread.join(timeout=5)


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
        layers = len(predictor.inspect(tokens).layers)
        assert page.locator("#heatmaps canvas").count() == 6 * layers
        canvas = page.locator("#heatmaps canvas").first
        canvas.hover(position={"x": 5, "y": 2})
        tip = page.locator("#tooltip")
        assert tip.is_visible() and re.fullmatch(r"h\[The, unit [01]\] = -?\d+\.\d{4}", tip.inner_text())
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        if os.environ.get("LSTMTAG_SCREENSHOT"):  # e.g. docs/web-page.png, to refresh the README picture
            shutil.copy(tmp_path / "page.png", os.environ["LSTMTAG_SCREENSHOT"])
        browser.close()
    assert (tmp_path / "page.png").stat().st_size > 20_000
