"""Reading a request body the way an attacker cannot exploit: bounded in bytes and in time.

uvicorn gives no body-read deadline, so a client that trickles one byte a second would hold a
connection (and its buffer) for as long as it likes; and a declared or streamed body larger
than the route accepts must stop being read the moment it passes the limit.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request


class BodyRejected(Exception):
    """The body was not read whole: ``status`` is 408 (too slow) or 413 (too large)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def too_large(limit: int) -> BodyRejected:
    return BodyRejected(413, f"body is larger than {limit} bytes")


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, or ``BodyRejected`` once it passes ``limit`` bytes or ``timeout_s``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise too_large(limit)
    except TimeoutError:
        raise BodyRejected(408, f"the body did not arrive within {timeout_s:g} s") from None
    return bytes(body)
