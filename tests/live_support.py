"""A live server on loopback and a graphql-transport-ws client, for the live-update tests."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from websockets.asyncio.client import ClientConnection, connect

from cityexchange.app import create_app
from cityexchange.settings import Settings


@asynccontextmanager
async def live_server(settings: Settings) -> AsyncIterator[str]:
    """The app served by uvicorn on a free loopback port; yields host:port."""
    app = create_app(settings)
    async with on_loopback(app, lifespan="on", ws_max_size=64 * 1024) as base:
        yield base.removeprefix("http://")


@asynccontextmanager
async def on_loopback(app: ASGIApp, lifespan: str = "off", **config: Any) -> AsyncIterator[str]:
    """An ASGI app served by uvicorn on a free loopback port; yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    # A bound on stopping: uvicorn otherwise waits without end for every connection's
    # handler, and one that never ends would hang the test's teardown rather than fail it.
    config.setdefault("timeout_graceful_shutdown", 10)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan, **config))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    async with asyncio.timeout(30):
        while not server.started:
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        listener.close()


class Subscriber:
    """One graphql-transport-ws connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = 0

    @classmethod
    @asynccontextmanager
    async def connect(cls, address: str, token: str | None) -> AsyncIterator[Subscriber]:
        async with connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            payload = {"authorization": f"Bearer {token}"} if token else {}
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            yield cls(ws)

    async def acknowledged(self) -> None:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        assert message["type"] == "connection_ack", message

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self.ids += 1
        await self.ws.send(
            json.dumps(
                {
                    "id": str(self.ids),
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        return str(self.ids)

    async def next(self, timeout: float = 10) -> dict[str, Any]:  # noqa: ASYNC109
        """The next data or error message, skipping pings."""
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] in ("ping", "pong"):
                continue
            return message

    async def silent(self, seconds: float = 0.5) -> bool:
        """Whether nothing but pings arrives for `seconds`."""
        try:
            await self.next(timeout=seconds)
        except TimeoutError:
            return True
        return False
