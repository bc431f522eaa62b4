"""Revocation reaches open sockets: a subscription whose token, client or person is revoked
is closed with 4403 "token revoked" within the denylist's refresh, like HTTP requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from cityexchange.auth import admin
from cityexchange.auth.oauth_store import OAuthStore
from tests.conftest import Api
from tests.live_support import Subscriber, live_server
from tests.oauth_support import Realm

EVENTS = "subscription { events { cursor type } }"
REVOCATION_SECONDS = 10  # generous: the denylist is re-read every 2 s


@pytest.fixture
async def address(api: Api, rotterdam: Realm) -> AsyncIterator[str]:
    async with live_server(api.settings) as address:
        yield address


async def _portal_token(address: str, realm: Realm) -> str:
    """A client-credentials token, the client's secret sent in the form (client_secret_post)."""
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        response = await http.post(
            f"/realms/{realm.city}/token",
            data={
                "grant_type": "client_credentials",
                "client_id": realm.portal_id,
                "client_secret": realm.portal_secret,
                "scope": "read",
            },
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _closed_when_revoked(
    address: str, token: str, revoke: Callable[[], Awaitable[None]]
) -> None:
    async with Subscriber.connect(address, token) as client:
        await client.acknowledged()
        await client.subscribe(EVENTS)
        assert await client.silent(0.2)  # open, subscribed, nothing to say yet
        await revoke()
        with pytest.raises(ConnectionClosed) as closed:
            await client.next(timeout=REVOCATION_SECONDS)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "token revoked")


def _admin(
    command: Callable[..., object], store: OAuthStore, **arguments: object
) -> Callable[[], Awaitable[None]]:
    """A revocation through the realm's (synchronous) admin commands, as the CLI makes it."""

    async def revoke() -> None:
        await asyncio.to_thread(command, store, access_ttl=900, **arguments)

    return revoke


async def test_a_revoked_tokens_socket_is_closed(address: str, rotterdam: Realm) -> None:
    token = await _portal_token(address, rotterdam)

    async def revoke() -> None:  # RFC 7009, as the client itself would
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            response = await http.post(
                f"/realms/{rotterdam.city}/revoke",
                data={"token": token},
                auth=(rotterdam.portal_id, rotterdam.portal_secret),
            )
        assert response.status_code == 200

    await _closed_when_revoked(address, token, revoke)


async def test_a_revoked_clients_socket_is_closed(
    address: str, rotterdam: Realm, store: OAuthStore
) -> None:
    token = await _portal_token(address, rotterdam)
    revoke = _admin(admin.revoke_client, store, city=rotterdam.city, client_id=rotterdam.portal_id)
    await _closed_when_revoked(address, token, revoke)


async def test_a_revoked_persons_socket_is_closed(
    api: Api, address: str, rotterdam: Realm, store: OAuthStore
) -> None:
    token = await api.token(rotterdam.city, subject=rotterdam.person_id)
    revoke = _admin(admin.revoke_person, store, city=rotterdam.city, username=rotterdam.username)
    await _closed_when_revoked(address, token, revoke)


async def test_another_tokens_socket_stays_open(
    api: Api, address: str, rotterdam: Realm, store: OAuthStore
) -> None:
    """Only the revoked principal's sockets close: proven by one that does, beside one that
    does not."""
    other = await api.token(rotterdam.city, subject="someone-else")
    async with Subscriber.connect(address, other) as bystander:
        await bystander.acknowledged()
        await bystander.subscribe(EVENTS)
        token = await api.token(rotterdam.city, subject=rotterdam.person_id)

        async def revoke() -> None:
            await asyncio.to_thread(
                admin.revoke_person,
                store,
                city=rotterdam.city,
                username=rotterdam.username,
                access_ttl=900,
            )

        await _closed_when_revoked(address, token, revoke)
        assert await bystander.silent(0.2)  # still open: a closed socket raises here
