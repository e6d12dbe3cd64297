"""The ceiling for bench/serve_load.py: a FastAPI app on uvicorn whose POST /tag parses the body and
answers at once, with the same client, the same machine and one thread.

    python bench/empty_server.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/tag")
async def tag(request: Request) -> dict:
    body = await request.json()
    return {"model": "empty", "sentences": [[] for _ in body.get("sentences", [])]}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
