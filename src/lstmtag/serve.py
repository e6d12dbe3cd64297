"""HTTP service: thin FastAPI routes over ``Predictor``, micro-batching, limits, and the web page.

Concurrent ``/tag`` requests for the same model are tagged as one batch on a worker thread: every
request that arrived while the previous batch ran, up to ``max_batch_sentences``, plus those arriving
within ``max_wait_ms`` (default 0: a lone request is not delayed; under load, batches form by
themselves while the model is busy). Since batched predictions equal one-by-one predictions, every
response is exactly what the request would get alone.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware

from lstmtag import memory
from lstmtag.data import Sentence
from lstmtag.limits import MAX_INSPECT_TOKENS, MAX_JSON_DEPTH, TokenError, check_sentence, json_depth
from lstmtag.pipeline import document, segment_document
from lstmtag.predict import Predictor, Tagged, rows
from lstmtag.segment import words


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_sentences: int = 256
    max_tokens: int = 512  # per sentence
    max_batch_sentences: int = 512
    max_wait_ms: float = 0.0  # extra wait for company; batches form anyway while the model is busy


class TagRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sentences: list[list[str]] | None = Field(None, description="Pre-tokenized sentences.")
    text: str | None = Field(
        None,
        description="Raw text: the model's segmenter, then the tagger; answered as sentences of tokens with offsets.",
    )
    model: str | None = Field(None, description="Model name (GET /models); the first loaded by default.")


class InspectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: list[str] | None = Field(None, description="One pre-tokenized sentence.")
    text: str | None = Field(None, description="One sentence of raw text.")
    model: str | None = None


class Batcher:
    """Gathers concurrent requests for one model into batches tagged on a worker thread."""

    def __init__(self, predictor: Predictor, limits: Limits, executor: Executor | None = None) -> None:
        self.predictor = predictor
        self.limits = limits
        self.executor = executor
        self.queue: asyncio.Queue[tuple[list[Sentence], asyncio.Future]] = asyncio.Queue()
        self.worker: asyncio.Task | None = None
        self.released = 0.0  # when freed memory last went back to the system (loop time)

    async def tag(self, sentences: list[Sentence]) -> list[Tagged]:
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((sentences, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            count = len(jobs[0][0])
            deadline = loop.time() + self.limits.max_wait_ms / 1000
            while count < self.limits.max_batch_sentences:
                if self.queue.empty():  # everything that arrived while the last batch ran is taken
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self.queue.get(), remaining)
                    except TimeoutError:
                        break
                else:
                    job = self.queue.get_nowait()
                jobs.append(job)
                count += len(job[0])
            everything = [s for sentences, _ in jobs for s in sentences]
            try:
                tagged = await loop.run_in_executor(self.executor, self.predictor.predict, everything)
            except Exception as error:  # noqa: BLE001 - handed to the requests, never kills the worker
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(error)
                continue
            start = 0
            for sentences, future in jobs:
                if not future.done():
                    future.set_result(tagged[start : start + len(sentences)])
                start += len(sentences)
            if self.queue.empty() and loop.time() - self.released > 1.0:  # idle: a few ms, at most once a second
                memory.release()
                self.released = loop.time()


class BodyLimit(BaseHTTPMiddleware):
    """Refuse bodies over the limit with 413, before parsing them."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return _error(413, f"request body over {self.max_bytes} bytes")
        if request.method == "POST":
            body = await request.body()
            if len(body) > self.max_bytes:
                return _error(413, f"request body over {self.max_bytes} bytes")
            if json_depth(body.decode("utf-8", errors="replace")) > MAX_JSON_DEPTH:  # before the parser recurses
                return _error(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", "body")
        return await call_next(request)


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    content: dict[str, Any] = {"error": message}
    if field is not None:
        content["field"] = field
    return JSONResponse(status_code=status, content=content)


def _check_text(text: str | None, field: str) -> None:
    """A 422 naming ``field`` for text that cannot be answered: a lone surrogate cannot be written as UTF-8."""
    if text is not None and not text.isprintable():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise HTTPException(
                422,
                {
                    "error": f"{field}: lone surrogate at character {error.start} (not valid Unicode text)",
                    "field": field,
                },
            ) from None


def exactly_one(given: list | None, text: str | None, field: str) -> None:
    """A 422 unless the request gives exactly one of ``field`` and ``text``, the text being valid Unicode."""
    if (given is None) == (text is None):
        raise HTTPException(422, {"error": f"give exactly one of '{field}' or 'text'", "field": field})
    _check_text(text, "text")


def given_or_split(given: list | None, text: str | None, field: str, predictor: Predictor) -> list[list[str]]:
    """A request's sentences: ``given`` under ``field``, or ``text`` split by the model's segmenter."""
    exactly_one(given, text, field)
    return given if given is not None else [words(s) for s in predictor.segmenter(text or "")]


def inspect_tokens(request: Any, predictor: Predictor, max_tokens: int) -> list[str]:
    """The one sentence an inspect request names, by ``tokens`` or by ``text`` (split as /tag splits it)."""
    given = [request.tokens] if request.tokens is not None else None
    tokens = [t for s in given_or_split(given, request.text, "tokens", predictor) for t in s]
    _check_tokens(tokens, "tokens", max_tokens, too_large=422)
    return tokens


def _check_tokens(tokens: list[str], where: str, max_tokens: int, *, too_large: int = 413) -> None:
    """A 422 naming the first token that breaks a rule of ``limits`` (empty, too long, a lone surrogate).

    A sentence over ``max_tokens`` gets the status ``too_large``.
    """
    try:
        check_sentence(tokens, where, max_tokens=max_tokens)
    except TokenError as error:
        status = too_large if error.too_large else 422
        raise HTTPException(status, {"error": f"{error.field}: {error.message}", "field": error.field}) from None


def model_spec(spec: str) -> tuple[str, str]:
    """``NAME=PATH`` -> (NAME, PATH); a bare path is named by its file name (``m.safetensors`` -> ``m``)."""
    if "=" in spec:
        name, _, path = spec.rpartition("=")
        return name, path
    return Path(spec).name.removesuffix(".safetensors"), spec


def load_predictors(
    specs: list[str], *, precision: str | None = None, segmenter: str | None = None
) -> dict[str, Predictor]:
    """The models ``lstmtag serve --model`` names (``en``, ``PATH`` or ``NAME=PATH``), in order."""
    return {
        name: Predictor.load(path, precision=precision, segmenter=segmenter) for name, path in map(model_spec, specs)
    }


def create_app(
    predictors: dict[str, Predictor], limits: Limits | None = None, *, corpus: str | Path | None = None
) -> FastAPI:
    """The service for the given named models (the first is the default); ``corpus`` is what /search reads."""
    if not predictors:
        raise ValueError("the service needs at least one model")
    limits = limits or Limits()
    app = FastAPI(title="lstmtag", description="LSTM taggers over HTTP, with a look inside.", version="0.1.0")
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    # One model thread for every model and route: one batch's tensors at a time, so the peak memory is
    # that of the largest batch, not of several heavy requests (tags, inspect, other models) at once.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lstmtag-model")
    batchers = {name: Batcher(predictor, limits, executor) for name, predictor in predictors.items()}
    default = next(iter(predictors))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        if first.get("type") == "json_invalid":
            return _error(400, "malformed JSON body")
        return _error(422, f"{location or 'body'}: {first.get('msg', 'invalid request')}", location or None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, dict) else {"error": str(error.detail)}
        return JSONResponse(status_code=error.status_code, content=detail)

    @app.exception_handler(StarletteHTTPException)
    async def starlette_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))  # 404 and 405 from routing, in the same shape

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return _error(500, "internal error")  # JSON like every other answer; the traceback stays in the log

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, error: RecursionError) -> JSONResponse:
        return _error(400, "JSON nested too deeply", "body")

    def choose(name: str | None) -> str:
        name = name or default
        if name not in predictors:
            raise HTTPException(
                404, {"error": f"unknown model {name!r}; loaded: {sorted(predictors)}", "field": "model"}
            )
        return name

    def checked(sentences: list[list[str]], field: str) -> list[list[str]]:
        if not sentences:
            raise HTTPException(422, {"error": "no tokens to tag", "field": field})
        if len(sentences) > limits.max_sentences:
            raise HTTPException(
                413, {"error": f"over {limits.max_sentences} sentences in one request", "field": "sentences"}
            )
        for index, tokens in enumerate(sentences):
            _check_tokens(tokens, f"sentences.{index}", limits.max_tokens)
        return sentences

    @app.post("/tag")
    async def tag(request: TagRequest) -> dict[str, Any]:
        """Tags and probabilities for each token of each sentence; raw text gets the pipeline's document view."""
        name = choose(request.model)
        exactly_one(request.sentences, request.text, "sentences")
        if request.sentences is not None:
            sentences = checked(request.sentences, "sentences")
            tagged = await batchers[name].tag([Sentence(list(s)) for s in sentences])
            return {"model": name, "sentences": [rows(list(s), t) for s, t in zip(sentences, tagged, strict=True)]}
        text = request.text or ""
        pieces = await asyncio.get_running_loop().run_in_executor(
            executor, segment_document, text, predictors[name].segmenter
        )
        sentences = checked([words(tokens) for _, tokens in pieces], "text")
        tagged = await batchers[name].tag([Sentence(s) for s in sentences])
        return {"model": name, "sentences": document(text, pieces, tagged)}

    @app.post("/inspect")
    async def inspect(request: InspectRequest) -> dict[str, Any]:
        """The inspector's trace (h, c and the gates per layer and direction) for one sentence."""
        name = choose(request.model)
        tokens = inspect_tokens(request, predictors[name], min(limits.max_tokens, MAX_INSPECT_TOKENS))
        try:
            trace = await asyncio.get_running_loop().run_in_executor(executor, predictors[name].inspect, tokens)
        except ValueError as error:
            raise HTTPException(422, {"error": str(error), "field": "model"}) from None
        return {"model": name, **trace.to_json()}

    @app.get("/models")
    async def models() -> dict[str, Any]:
        """The loaded models, their label columns and how they were trained."""
        return {
            "default": default,
            "models": [
                {
                    "name": name,
                    "columns": p.columns,
                    "kind": p.bundle.config.model.kind,
                    "inspectable": p.capabilities.traced,
                    "members": len(p.bundle.info.get("members", [None])),
                    "dev_accuracy": p.bundle.info.get("dev_accuracy"),
                }
                for name, p in predictors.items()
            ],
        }

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    static = resources.files("lstmtag") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return (static / "index.html").read_text(encoding="utf-8")

    from lstmtag.unit_routes import add_unit_routes  # the inspector's sentence view and corpus search

    add_unit_routes(app, predictors, executor, choose, corpus=corpus)
    return app
