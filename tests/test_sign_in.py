"""Signing in with a password: throttled per (account, address) and per address, never
locking the owner out from elsewhere; hashes bounded in number, argon2id, old ones migrated."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading

import httpx
import pytest
from authlib.common.security import generate_token

from cityexchange.app import create_app
from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.passwords import (
    HASHES,
    HASHING_QUEUE,
    HASHING_SLOTS,
    HashingBusy,
    HashingGate,
)
from cityexchange.auth.sign_in import ADDRESS_FAILURES, PAIR_FREE_ATTEMPTS
from cityexchange.cli import proxy_options
from cityexchange.services.store import people
from cityexchange.settings import Settings
from tests.conftest import Api
from tests.live_support import on_loopback
from tests.oauth_support import (
    PASSWORD,
    REDIRECT_URI,
    Realm,
    authorize,
    hidden_fields,
    oauth_client,
)


def _app_of(api: Api) -> object:
    return api.http._transport.app  # type: ignore[attr-defined]


def _mobile(transport: httpx.AsyncBaseTransport, realm: Realm):
    return oauth_client(
        transport,
        client_id=realm.mobile_id,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )


async def _authorize_url(api: Api, realm: Realm) -> str:
    async with _mobile(api.http._transport, realm) as client:  # type: ignore[attr-defined]
        url, _ = client.create_authorization_url(
            f"{realm.issuer}/authorize", code_verifier=generate_token(48)
        )
    return str(url)


async def _try(
    browser: httpx.AsyncClient,
    url: str,
    username: str,
    password: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    page = await browser.get(url, headers=headers)
    assert page.status_code == 200, page.text
    return await browser.post(
        url,
        data={**hidden_fields(page.text), "username": username, "password": password},
        headers=headers,
    )


def _connected_from(api: Api, address: str) -> httpx.ASGITransport:
    """The app under test, reached from `address`."""
    return httpx.ASGITransport(app=_app_of(api), client=(address, 40_000))  # type: ignore[arg-type]


def _from(api: Api, address: str) -> httpx.AsyncClient:
    """A browser whose connections come from `address`."""
    return httpx.AsyncClient(transport=_connected_from(api, address))


async def test_an_attackers_guesses_slow_only_their_own_tries(api: Api, rotterdam: Realm) -> None:
    url = await _authorize_url(api, rotterdam)
    async with _from(api, "198.51.100.66") as attacker:
        statuses = [
            (await _try(attacker, url, rotterdam.username, f"guess-{i}")).status_code
            for i in range(PAIR_FREE_ATTEMPTS)
        ]
        assert statuses == [401] * PAIR_FREE_ATTEMPTS
        waits: list[int] = []
        for i in range(3):  # too soon: refused, and each try makes the wait longer
            response = await _try(attacker, url, rotterdam.username, f"more-{i}")
            assert response.status_code == 429
            assert "Too many failed attempts" in response.text
            waits.append(int(response.headers["retry-after"]))
        assert waits[0] > 0
        assert waits == sorted(set(waits))
        # The attacker's own right guess is refused too, while they must wait.
        assert (await _try(attacker, url, rotterdam.username, PASSWORD)).status_code == 429
    # The owner, from her own address, signs in at once.
    async with _mobile(_connected_from(api, "203.0.113.7"), rotterdam) as client:
        location, _ = await authorize(client, rotterdam)
    assert "code=" in location


async def test_one_address_is_limited_over_all_accounts(api: Api, rotterdam: Realm) -> None:
    url = await _authorize_url(api, rotterdam)
    async with _from(api, "198.51.100.99") as spray:
        for i in range(ADDRESS_FAILURES):
            response = await _try(spray, url, f"user-{i}", "password-1234")
            assert response.status_code == 401
        response = await _try(spray, url, rotterdam.username, PASSWORD)
        assert response.status_code == 429  # even a right password, from there
    async with _from(api, "203.0.113.8") as elsewhere:
        assert (await _try(elsewhere, url, "user-0", "password-1234")).status_code == 401


@pytest.mark.parametrize("trusted", [(), ("127.0.0.1",)])
async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    api: Api, rotterdam: Realm, trusted: tuple[str, ...]
) -> None:
    """`serve`'s uvicorn options: from an untrusted peer, a rotating X-Forwarded-For is
    ignored and the address limit holds; from a trusted proxy it names the client (so this
    test would see a bypass)."""
    url = await _authorize_url(api, rotterdam)
    app = create_app(api.settings)
    async with (
        on_loopback(app, lifespan="on", **proxy_options(trusted)) as base,
        httpx.AsyncClient(base_url=base) as browser,
    ):
        path = url.removeprefix(api.settings.public_url)
        statuses = [
            (
                await _try(
                    browser, path, f"user-{i}", "password-1234", {"X-Forwarded-For": f"10.9.0.{i}"}
                )
            ).status_code
            for i in range(ADDRESS_FAILURES + 2)
        ]
    if trusted:
        assert 429 not in statuses  # every try came "from" another client
    else:
        assert statuses[:ADDRESS_FAILURES] == [401] * ADDRESS_FAILURES
        assert statuses[ADDRESS_FAILURES:] == [429, 429]


def test_serve_trusts_no_proxy_unless_told() -> None:
    assert proxy_options(()) == {"proxy_headers": False}
    assert proxy_options("") == {"proxy_headers": False}
    told = Settings.from_env({"CITYEXCHANGE_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16"})
    assert proxy_options(told.trusted_proxies) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.5", "10.1.0.0/16"],
    }
    assert Settings.from_env({}).trusted_proxies == ()


async def test_parallel_sign_ins_never_hash_more_than_the_slots_at_once(
    api: Api, rotterdam: Realm
) -> None:
    url = await _authorize_url(api, rotterdam)
    browsers = [_from(api, f"192.0.2.{i}") for i in range(40)]
    try:
        forms: list[dict[str, str]] = []
        for browser in browsers:
            page = await browser.get(url)
            forms.append(hidden_fields(page.text))
        HASHES.reset_peak()
        responses = await asyncio.gather(
            *(
                browser.post(
                    url, data={**form, "username": rotterdam.username, "password": PASSWORD}
                )
                for browser, form in zip(browsers, forms, strict=True)
            )
        )
    finally:
        for browser in browsers:
            await browser.aclose()
    assert HASHES.peak <= HASHING_SLOTS
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 429}, statuses  # signed in (to the consent page), or busy
    for response in responses:
        if response.status_code == 429:
            assert response.headers["retry-after"] == "1"
            assert "busy" in response.text


async def test_the_gate_queues_a_few_and_refuses_the_rest() -> None:
    """Deterministic: hashes held until released fill the slots and the queue."""
    gate = HashingGate()
    release = threading.Event()

    async def sign_in() -> bool:
        async with gate.place():
            return await gate.run(lambda: HASHES.measure(lambda: release.wait(10)))

    HASHES.reset_peak()
    admitted = [asyncio.create_task(sign_in()) for _ in range(HASHING_SLOTS + HASHING_QUEUE)]
    async with asyncio.timeout(10):
        while HASHES.running < HASHING_SLOTS:
            await asyncio.sleep(0.01)
    with pytest.raises(HashingBusy) as busy:
        await sign_in()
    assert busy.value.retry_after_seconds >= 1
    release.set()
    assert await asyncio.gather(*admitted) == [True] * (HASHING_SLOTS + HASHING_QUEUE)
    assert HASHES.peak == HASHING_SLOTS


def _scrypt(password: str) -> str:
    """A hash of the former scheme (scrypt$N$r$p$salt$hash), as older databases hold."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=2**15, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32
    )

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    return f"scrypt${2**15}$8$1${b64(salt)}${b64(digest)}"


async def test_a_scrypt_hash_still_signs_in_and_becomes_argon2id(
    api: Api, rotterdam: Realm, store: OAuthStore
) -> None:
    old = _scrypt(PASSWORD)
    assert await asyncio.to_thread(
        people.set_password, store.db, "rotterdam", rotterdam.username, old
    )
    async with _mobile(api.http._transport, rotterdam) as client:  # type: ignore[attr-defined]
        location, _ = await authorize(client, rotterdam)
        assert "code=" in location
        credentials = await asyncio.to_thread(
            people.credentials, store.db, "rotterdam", rotterdam.username
        )
        assert credentials is not None
        assert credentials.password_hash is not None
        assert credentials.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        location, _ = await authorize(client, rotterdam)  # and the new hash verifies
        assert "code=" in location
    url = await _authorize_url(api, rotterdam)
    wrong = await _try(api.http, url, rotterdam.username, "not the password")
    assert wrong.status_code == 401
