"""Limits over WebSocket: refused documents and subscriptions past the socket's limit come
back as `error` messages with a code, and the socket keeps serving the others."""

from __future__ import annotations

import contextlib
import json

import pytest
from websockets.exceptions import ConnectionClosed

from cityexchange.sockets import (
    MAX_SOCKETS_PER_TOKEN,
    MAX_SUBSCRIPTIONS_PER_SOCKET,
    MESSAGE_BURST,
    TOO_MANY,
)
from tests.conftest import Api
from tests.live_support import Subscriber, live_server

pytestmark = pytest.mark.usefixtures("two_cities")

DEEP = (
    "subscription { events { subject { ... on Problem { comments { edges { node { replies { "
    "edges { node { replies { edges { node { id } } } } } } } } } } } } }"
)


async def test_refused_subscriptions_get_coded_errors(api: Api) -> None:
    token = await api.token("rotterdam")
    async with live_server(api.settings) as address, Subscriber.connect(address, token) as ws:
        await ws.acknowledged()
        deep = await ws.subscribe(DEEP)
        message = await ws.next()
        assert (message["id"], message["type"]) == (deep, "error"), message
        assert message["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", message

        for _ in range(MAX_SUBSCRIPTIONS_PER_SOCKET):
            await ws.subscribe("subscription { events { cursor } }")
        over = await ws.subscribe("subscription { events { cursor } }")
        message = await ws.next()
        assert (message["id"], message["type"]) == (over, "error")
        (error,) = message["payload"]
        assert error["extensions"] == {
            "code": "TOO_MANY_SUBSCRIPTIONS",
            "limit": MAX_SUBSCRIPTIONS_PER_SOCKET,
        }


async def test_a_token_opens_a_bounded_number_of_sockets(api: Api) -> None:
    token = await api.token("rotterdam")
    async with live_server(api.settings) as address, contextlib.AsyncExitStack() as stack:
        for _ in range(MAX_SOCKETS_PER_TOKEN):
            ws = await stack.enter_async_context(Subscriber.connect(address, token))
            await ws.acknowledged()
        async with Subscriber.connect(address, token) as refused:
            with pytest.raises(ConnectionClosed) as closed:
                await refused.next()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == TOO_MANY
        # Another token of the same city is not held up.
        async with Subscriber.connect(address, await api.token("rotterdam")) as other:
            await other.acknowledged()


async def test_a_socket_that_floods_messages_is_closed(api: Api) -> None:
    token = await api.token("rotterdam")
    async with live_server(api.settings) as address, Subscriber.connect(address, token) as ws:
        await ws.acknowledged()
        for _ in range(MESSAGE_BURST + 20):
            await ws.ws.send(json.dumps({"type": "ping"}))
        with pytest.raises(ConnectionClosed) as closed:
            await read_until_closed(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == TOO_MANY


async def read_until_closed(ws: Subscriber) -> None:
    while True:
        await ws.next()


async def test_a_subscription_over_the_token_limit_is_refused_unparsed(api: Api) -> None:
    """The parser's token limit holds on sockets too (also where subscriptions are planned
    for sharing), and the socket serves on."""
    token = await api.token("rotterdam")
    long = "subscription { events { " + "cursor " * 2_100 + "} }"
    async with live_server(api.settings) as address, Subscriber.connect(address, token) as ws:
        await ws.acknowledged()
        refused = await ws.subscribe(long)
        message = await ws.next()
        assert (message["id"], message["type"]) == (refused, "error")
        assert message["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert "2000 tokens" in message["payload"][0]["message"]
        fine = await ws.subscribe("{ viewer { subject } }")
        message = await ws.next()
        assert (message["id"], message["type"]) == (fine, "next")


@pytest.mark.parametrize(
    "text",
    ["1", "[]", '"x"', "[" * 5000 + "]" * 5000],
    ids=["number", "list", "string", "nested"],
)
async def test_messages_that_are_not_objects_close_the_socket(api: Api, text: str) -> None:
    token = await api.token("rotterdam")
    async with live_server(api.settings) as address, Subscriber.connect(address, token) as ws:
        await ws.acknowledged()
        await ws.ws.send(text)
        with pytest.raises(ConnectionClosed) as closed:
            await read_until_closed(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4400


async def test_a_subscribe_with_malformed_variables_is_refused_with_a_code(api: Api) -> None:
    token = await api.token("rotterdam")
    async with live_server(api.settings) as address, Subscriber.connect(address, token) as ws:
        await ws.acknowledged()
        for variables in ([1], "x"):
            payload = {"query": "subscription { events { cursor } }", "variables": variables}
            await ws.ws.send(json.dumps({"id": "bad", "type": "subscribe", "payload": payload}))
            message = await ws.next()
            assert (message["id"], message["type"]) == ("bad", "error")
            assert message["payload"][0]["extensions"]["code"] == "BAD_REQUEST"
        ok = await ws.subscribe("{ viewer { subject } }")
        message = await ws.next()
        assert (message["id"], message["type"]) == (ok, "next")


async def test_a_document_that_does_not_parse_gets_a_coded_error(api: Api) -> None:
    token = await api.token("rotterdam")
    async with live_server(api.settings) as address, Subscriber.connect(address, token) as ws:
        await ws.acknowledged()
        broken = await ws.subscribe("subscription { events { ")
        message = await ws.next()
        assert (message["id"], message["type"]) == (broken, "error")
        assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
