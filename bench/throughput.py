"""A lean HTTP/1.1 load generator: keep-alive connections sending one prepared request.

The client shares the machine's cores with the server, so it must cost far less per request
than the server does: the request bytes are built once, and a response is read by its
Content-Length without parsing anything else.
"""

from __future__ import annotations

import asyncio
import json
import time


def _request(port: int, query: str, token: str) -> bytes:
    body = json.dumps({"query": query}).encode()
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _connection(port: int, request: bytes, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected response: {head[:200]!r}")
            lower = head.lower()
            start = lower.index(b"content-length:") + len(b"content-length:")
            await reader.readexactly(int(lower[start : lower.index(b"\r\n", start)]))
            counts[0] += 1
    finally:
        writer.close()
        await writer.wait_closed()


async def requests_per_second(
    port: int, query: str, token: str, *, seconds: float, connections: int
) -> float:
    """Completed requests per second of `query`, over `connections` concurrent sockets."""
    request = _request(port, query, token)
    counts = [0]
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(
        *(_connection(port, request, deadline, counts) for _ in range(connections))
    )
    return counts[0] / (time.monotonic() - started)
