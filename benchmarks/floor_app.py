"""Floors for the collector benchmark, on the same server stack (FastAPI + uvicorn + uvloop).

``/noop`` reads the body and answers 202: the cost of HTTP alone. ``/parse`` also decompresses
and JSON-parses it (with the collector's own decoding code): the cost before any validation or
write. The collector's figures are read against these two, measured in the same run.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from serving.decoding import decompress, parse_events

LIMIT = 8 * 1024 * 1024
app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/noop")
async def noop(request: Request) -> Response:
    await request.body()
    return Response(b'{"accepted":0}', 202, media_type="application/json")


@app.post("/parse")
async def parse(request: Request) -> Response:
    body = await request.body()
    items = parse_events(
        decompress(body, request.headers.get("content-encoding"), LIMIT), request.headers.get("content-type")
    )
    return JSONResponse({"parsed": len(items)}, 202)
