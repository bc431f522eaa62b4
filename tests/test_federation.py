"""Federation: a city accepts tokens of its own identity provider, and only as that city."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from asgi_lifespan import LifespanManager
from joserfc import jwt
from joserfc.jwk import RSAKey

from auth import admin
from cityexchange.app import create_app
from services.errors import InvalidInput
from tests.conftest import Api, add_city
from tests.oauth_support import store_for

ISSUER = "https://idp.rotterdam.example/realms/staff"
JWKS_URI = "https://idp.rotterdam.example/realms/staff/keys"
DOWN_ISSUER = "https://idp.down.example"
DOWN_JWKS = "https://idp.down.example/keys"
AUDIENCE = "api://cityexchange"
VIEWER = "{ viewer { subject scopes clientId city { slug } } }"


@dataclass
class IdentityProvider:
    """A test identity provider: its own key, its JWKS served to the app over fake HTTP."""

    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "idp-1"}, private=True)
    )
    fetches: int = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == JWKS_URI:
            self.fetches += 1
            return httpx.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        return httpx.Response(503)  # DOWN_JWKS and anything else: the provider is down

    def token(
        self,
        *,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        kid: str = "idp-1",
        **claims: object,
    ) -> str:
        now = int(time.time())
        body = {
            "iss": issuer,
            "aud": audience,
            "sub": "staff-42",
            "exp": now + 300,
            "iat": now,
            "scp": "read publish",
            "azp": "rotterdam-intranet",
            **claims,
        }
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": kid}, body, self.key)


@pytest.fixture
async def idp(api: Api) -> AsyncIterator[tuple[IdentityProvider, Api]]:
    await add_city(api.db, "rotterdam", "Rotterdam")
    await add_city(api.db, "lagos", "Lagos", "NG")
    store = store_for(api.settings)
    await asyncio.to_thread(
        admin.trust_issuer,
        store,
        city="rotterdam",
        issuer=ISSUER,
        jwks_uri=JWKS_URI,
        audience=AUDIENCE,
        scope_claim="scp",
    )
    await asyncio.to_thread(
        admin.trust_issuer,
        store,
        city="lagos",
        issuer=DOWN_ISSUER,
        jwks_uri=DOWN_JWKS,
        audience=AUDIENCE,
    )
    store.close()
    provider = IdentityProvider()
    app = create_app(api.settings, http_transport=httpx.MockTransport(provider.handler))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as http,
    ):
        federated = Api(http=http, db=api.db, settings=api.settings)
        # The app fetches trusted providers' keys in the background at start; requests never
        # wait for them. Wait until they are there.
        async with asyncio.timeout(10):
            while (await federated.gql(VIEWER, token=provider.token())).get("errors"):
                await asyncio.sleep(0.05)
        yield provider, federated


async def test_a_trusted_providers_token_is_accepted_as_its_city(
    idp: tuple[IdentityProvider, Api],
) -> None:
    provider, api = idp
    data = await api.data(VIEWER, token=provider.token())
    assert data["viewer"] == {
        "subject": "staff-42",
        "scopes": ["publish", "read"],
        "clientId": "rotterdam-intranet",
        "city": {"slug": "rotterdam"},
    }
    await api.data(VIEWER, token=provider.token())
    assert provider.fetches == 1  # fetched once, at start, then cached


@pytest.mark.parametrize(
    "changes",
    [
        {"audience": "api://lagos"},  # another audience
        {"issuer": "https://idp.rotterdam.example/realms/other"},  # an issuer nobody trusts
        {"issuer": "https://evil.example", "audience": AUDIENCE},
        {"exp": 1},  # expired
    ],
)
async def test_tokens_that_do_not_match_the_trust_are_refused(
    idp: tuple[IdentityProvider, Api], changes: dict[str, object]
) -> None:
    provider, api = idp
    body = await api.gql(VIEWER, token=provider.token(**changes))  # type: ignore[arg-type]
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_token_signed_by_another_key_is_refused(idp: tuple[IdentityProvider, Api]) -> None:
    provider, api = idp
    impostor = IdentityProvider()
    body = await api.gql(VIEWER, token=impostor.token())  # same kid, other key
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await api.data(VIEWER, token=provider.token())


async def test_unknown_kids_refetch_at_most_once_a_minute(
    idp: tuple[IdentityProvider, Api],
) -> None:
    provider, api = idp
    await api.data(VIEWER, token=provider.token())
    for _ in range(5):
        body = await api.gql(VIEWER, token=provider.token(kid="rotated-away"))
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert provider.fetches <= 2


async def test_an_unreachable_jwks_fails_closed_for_that_issuer_only(
    idp: tuple[IdentityProvider, Api], caplog: pytest.LogCaptureFixture
) -> None:
    provider, api = idp
    with caplog.at_level(logging.WARNING, logger="cityexchange.federation"):
        body = await api.gql(VIEWER, token=provider.token(issuer=DOWN_ISSUER))
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # The provider's keys were fetched (and failed) in the background at start.
    records = caplog.get_records("setup") + caplog.records
    assert any(DOWN_ISSUER in r.getMessage() and "refused" in r.getMessage() for r in records)
    # Other realms keep working: the trusted provider and the city's own tokens.
    await api.data(VIEWER, token=provider.token())
    own = await api.token("lagos")
    assert (await api.data(VIEWER, token=own))["viewer"]["city"] == {"slug": "lagos"}


async def test_an_id_token_is_not_an_access_token(idp: tuple[IdentityProvider, Api]) -> None:
    provider, api = idp
    body = await api.gql(VIEWER, token=provider.token(nonce="n-123"))
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_issuer_is_not_moved_to_another_city_by_accident(api: Api) -> None:
    await add_city(api.db, "rotterdam", "Rotterdam")
    await add_city(api.db, "lagos", "Lagos", "NG")
    store = store_for(api.settings)
    try:
        await asyncio.to_thread(
            admin.trust_issuer,
            store,
            city="rotterdam",
            issuer=ISSUER,
            jwks_uri=JWKS_URI,
            audience=AUDIENCE,
        )
        with pytest.raises(InvalidInput):
            await asyncio.to_thread(
                admin.trust_issuer,
                store,
                city="lagos",
                issuer=ISSUER,
                jwks_uri=JWKS_URI,
                audience=AUDIENCE,
            )
        assert await asyncio.to_thread(store.trusted_issuer_city, ISSUER) == "rotterdam"
    finally:
        store.close()
