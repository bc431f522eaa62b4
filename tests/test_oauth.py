"""OAuth 2.0 per city realm, driven by authlib's own client over HTTP against the app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from auth.oauth_store import OAuthStore
from tests.conftest import Api, add_city
from tests.oauth_support import REDIRECT_URI, Realm, authorize, make_realm, oauth_client
from tests.oauth_support import store_for

VIEWER = "{ viewer { subject clientId scopes city { slug } person { name } } }"


@pytest.fixture
async def store(api: Api) -> AsyncIterator[OAuthStore]:
    oauth = store_for(api.settings)
    yield oauth
    oauth.close()


@pytest.fixture
async def rotterdam(api: Api, store: OAuthStore) -> Realm:
    await add_city(api.db, "rotterdam", "Rotterdam")
    return await make_realm(api.db, store, api.settings, "rotterdam")


@pytest.fixture
async def lagos(api: Api, store: OAuthStore) -> Realm:
    await add_city(api.db, "lagos", "Lagos", "NG")
    return await make_realm(api.db, store, api.settings, "lagos")


def transport(api: Api):  # noqa: ANN201 - httpx's transport of the app under test
    return api.http._transport  # noqa: SLF001


async def test_client_credentials_token_works_on_graphql(api: Api, rotterdam: Realm) -> None:
    async with oauth_client(transport(api), client_id=rotterdam.portal_id,
                            client_secret=rotterdam.portal_secret) as client:
        token = await client.fetch_token(f"{rotterdam.issuer}/token",
                                         grant_type="client_credentials", scope="read")
    assert token["token_type"].lower() == "bearer"
    assert token["expires_in"] == 900
    assert "refresh_token" not in token
    data = await api.data(VIEWER, token=token["access_token"])
    assert data["viewer"]["city"] == {"slug": "rotterdam"}
    assert data["viewer"]["clientId"] == rotterdam.portal_id
    assert data["viewer"]["scopes"] == ["read"]


async def test_authorization_code_with_pkce_then_refresh_rotation(api: Api, rotterdam: Realm
                                                                  ) -> None:
    async with oauth_client(transport(api), client_id=rotterdam.mobile_id,
                            redirect_uri=REDIRECT_URI, code_challenge_method="S256",
                            token_endpoint_auth_method="none") as client:
        location, verifier = await authorize(client, rotterdam)
        assert location.startswith(REDIRECT_URI + "?")
        token = await client.fetch_token(f"{rotterdam.issuer}/token",
                                         authorization_response=location,
                                         code_verifier=verifier)
        data = await api.data(VIEWER, token=token["access_token"])
        assert data["viewer"]["city"] == {"slug": "rotterdam"}
        assert data["viewer"]["person"] == {"name": "CRO of rotterdam"}
        assert data["viewer"]["scopes"] == ["comment", "read"]

        refreshed = await client.refresh_token(f"{rotterdam.issuer}/token",
                                               refresh_token=token["refresh_token"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert (await api.data(VIEWER, token=refreshed["access_token"]))["viewer"]

        # The second sign-in of the same person to the same app asks no consent again.
        location, verifier = await authorize(client, rotterdam)
        assert "code=" in location


async def test_metadata_validates_and_is_served_at_both_places(api: Api, rotterdam: Realm
                                                               ) -> None:
    first = await api.http.get("/.well-known/oauth-authorization-server/realms/rotterdam")
    second = await api.http.get("/realms/rotterdam/.well-known/oauth-authorization-server")
    assert first.json() == second.json()
    metadata = AuthorizationServerMetadata(first.json())
    metadata.validate()
    assert metadata["issuer"] == rotterdam.issuer
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    jwks = (await api.http.get("/realms/rotterdam/jwks")).json()
    assert all("d" not in key for key in jwks["keys"])
    assert (await api.http.get("/realms/atlantis/jwks")).status_code == 404
