"""The service's inspector routes: a readable sentence view, and a pattern search over a corpus.

``POST /inspect/view`` returns ``views.sentence_view`` (the chosen units per layer and a per-token
summary); ``POST /search`` runs ``unit_search`` over the corpus the server was started with
(``lstmtag serve --corpus FILE``), for units picked on the page. Both run on the service's one
model thread, like every other model call.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from lstmtag.limits import MAX_INSPECT_TOKENS

MAX_SEARCH_SENTENCES = 5_000  # a search traces the whole corpus: bounded so one request stays seconds


class ViewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: list[str] | None = Field(None, description="One pre-tokenized sentence.")
    text: str | None = Field(None, description="One sentence of raw text.")
    model: str | None = None
    order: str = Field(
        "variance",
        max_length=2_000,
        description="variance, tag:LABEL (within the sentence), corpus-tag:LABEL (over the server's corpus) or units:LIST.",
    )
    top: int = Field(32, ge=0, le=4096, description="Units per layer; 0 shows every unit.")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    units: list[str] = Field(..., min_length=1, max_length=64, description="Unit names module:layer:direction:unit.")
    threshold: float = Field(0.5, ge=-1e6, le=1e6)
    min_length: int = Field(1, ge=1, le=10_000)
    show: int = Field(20, ge=1, le=200)
    model: str | None = None


def add_unit_routes(app: FastAPI, predictors: dict, executor: Executor, choose, *, corpus: str | Path | None) -> None:
    """Register the two routes on ``app``; ``choose`` maps a request's model name to a loaded one."""
    from lstmtag.serve import inspect_tokens

    cached: dict[str, dict] = {}

    def corpus_stats(name: str) -> dict:
        """Every unit's Cohen's d for every label over the server's corpus, computed once per model."""
        if name not in cached:
            from lstmtag.corpus_trace import TaggerCorpus
            from lstmtag.units import collect
            from lstmtag.views import stats_from

            cached[name] = stats_from(
                collect(TaggerCorpus(predictors[name], corpus, max_sentences=MAX_SEARCH_SENTENCES))
            )
        return cached[name]

    @app.post("/inspect/view")
    async def view(request: ViewRequest) -> dict[str, Any]:
        """The chosen units of every layer (by variance, tag or list) with a per-token summary."""
        from lstmtag.views import sentence_view

        name = choose(request.model)
        tokens = inspect_tokens(request, predictors[name], MAX_INSPECT_TOKENS)

        def work() -> dict[str, Any]:
            trace = predictors[name].inspect(tokens)
            order, stats = request.order, None
            if order.startswith("corpus-tag:"):
                if corpus is None:
                    raise ValueError("order corpus-tag needs a corpus: start the server with --corpus FILE")
                order, stats = "tag:" + order.removeprefix("corpus-tag:"), corpus_stats(name)
            view = sentence_view(trace, order=order, top=request.top, stats=stats)
            return {**view, "order": request.order, "corpus": corpus is not None}

        try:
            result = await asyncio.get_running_loop().run_in_executor(executor, work)
        except ValueError as error:
            field = "order" if str(error).startswith(("order", "unit")) else "model"
            raise HTTPException(422, {"error": str(error), "field": field}) from None
        return {"model": name, **result}

    @app.post("/search")
    async def search(request: SearchRequest) -> dict[str, Any]:
        """Spans of the server's corpus where every chosen unit's h is above the threshold."""
        from lstmtag.corpus_trace import TaggerCorpus
        from lstmtag.unit_search import parse_units
        from lstmtag.unit_search import search as run_search

        name = choose(request.model)
        if corpus is None:
            raise HTTPException(404, {"error": "no corpus to search: start the server with --corpus FILE"})
        modules = {unit.rsplit(":", 3)[0] for unit in request.units}
        if len(modules) != 1 or any(unit.count(":") < 3 for unit in request.units):
            raise HTTPException(
                422, {"error": "units must be module:layer:direction:unit names of one module", "field": "units"}
            )
        module = modules.pop()
        spec = ",".join(unit.rsplit(":", 3)[1] + ":" + ":".join(unit.rsplit(":", 3)[2:]) for unit in request.units)

        def work() -> dict[str, Any]:
            source = TaggerCorpus(predictors[name], corpus, max_sentences=MAX_SEARCH_SENTENCES)
            refs = parse_units(spec, module, source.modules, source.sizes())
            found = run_search(
                source, refs, threshold=request.threshold, min_length=request.min_length, keep=request.show
            )
            return {
                "matches": found.matches,
                "sentences": source.sentences,
                "spans": [s.to_json() for s in found.best()],
            }

        try:
            result = await asyncio.get_running_loop().run_in_executor(executor, work)
        except ValueError as error:
            raise HTTPException(422, {"error": str(error).removeprefix("--units "), "field": "units"}) from None
        return {"model": name, "units": request.units, "threshold": request.threshold, **result}
