"""An answer that arrives slowly: a CRM, or the network before it, sending a few bytes at a time."""

from __future__ import annotations

import asyncio

from aiohttp import web


async def trickled(
    request: web.Request, answer: web.Response, seconds: float, pieces: int = 10
) -> web.StreamResponse:
    """Send `answer` in `pieces` parts spread over `seconds`. Each read of the client's socket
    waits only `seconds / pieces`, so a client whose timeout bounds each read (urllib3,
    requests) never times out, however long the whole answer takes."""
    body = answer.body if isinstance(answer.body, bytes) else b""
    slow = web.StreamResponse(status=answer.status, headers=answer.headers)
    slow.content_length = len(body)
    await slow.prepare(request)
    size = max(1, -(-len(body) // pieces))
    for start in range(0, max(len(body), 1), size):
        await asyncio.sleep(seconds / pieces)
        await slow.write(body[start : start + size])
    await slow.write_eof()
    return slow
