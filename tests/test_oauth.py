"""OAuth 2.0 per city realm, driven by authlib's own client over HTTP against the app."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc import jws

from cityexchange.app import create_app
from cityexchange.auth import admin, grants
from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.records import ClientType
from tests.conftest import Api, add_city
from tests.oauth_support import (
    PASSWORD,
    REDIRECT_URI,
    Realm,
    authorize,
    hidden_fields,
    make_realm,
    oauth_client,
    store_for,
)

REVOCATION_SECONDS = 5  # the bound for revocation to reach the API
VIEWER = "{ viewer { subject clientId scopes city { slug } person { name } } }"


@pytest.fixture
async def lagos(api: Api, store: OAuthStore) -> Realm:
    await add_city(api.db, "lagos", "Lagos", "NG")
    return await make_realm(api.db, store, api.settings, "lagos")


def transport(api: Api):
    return api.http._transport


async def test_client_credentials_token_works_on_graphql(api: Api, rotterdam: Realm) -> None:
    async with oauth_client(
        transport(api), client_id=rotterdam.portal_id, client_secret=rotterdam.portal_secret
    ) as client:
        token = await client.fetch_token(
            f"{rotterdam.issuer}/token", grant_type="client_credentials", scope="read"
        )
    assert token["token_type"].lower() == "bearer"
    assert token["expires_in"] == 900
    assert "refresh_token" not in token
    data = await api.data(VIEWER, token=token["access_token"])
    assert data["viewer"]["city"] == {"slug": "rotterdam"}
    assert data["viewer"]["clientId"] == rotterdam.portal_id
    assert data["viewer"]["scopes"] == ["read"]


async def test_authorization_code_with_pkce_then_refresh_rotation(
    api: Api, rotterdam: Realm
) -> None:
    async with oauth_client(
        transport(api),
        client_id=rotterdam.mobile_id,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        location, verifier = await authorize(client, rotterdam)
        assert location.startswith(REDIRECT_URI + "?")
        assert parse_qs(urlsplit(location).query)["iss"] == [rotterdam.issuer]  # RFC 9207 §2
        token = await client.fetch_token(
            f"{rotterdam.issuer}/token", authorization_response=location, code_verifier=verifier
        )
        data = await api.data(VIEWER, token=token["access_token"])
        assert data["viewer"]["city"] == {"slug": "rotterdam"}
        assert data["viewer"]["person"] == {"name": "CRO of rotterdam"}
        assert data["viewer"]["scopes"] == ["comment", "read"]

        refreshed = await client.refresh_token(
            f"{rotterdam.issuer}/token", refresh_token=token["refresh_token"]
        )
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert (await api.data(VIEWER, token=refreshed["access_token"]))["viewer"]

        # The second sign-in of the same person to the same app asks no consent again.
        location, verifier = await authorize(client, rotterdam)
        assert "code=" in location


async def test_metadata_validates_and_is_served_at_both_places(api: Api, rotterdam: Realm) -> None:
    first = await api.http.get("/.well-known/oauth-authorization-server/realms/rotterdam")
    second = await api.http.get("/realms/rotterdam/.well-known/oauth-authorization-server")
    assert first.json() == second.json()
    metadata = AuthorizationServerMetadata(first.json())
    metadata.validate()
    assert metadata["issuer"] == rotterdam.issuer
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    # RFC 9207: every realm lives on this one host, so clients must be able to tell them apart.
    assert metadata["authorization_response_iss_parameter_supported"] is True
    jwks = (await api.http.get("/realms/rotterdam/jwks")).json()
    assert all("d" not in key for key in jwks["keys"])
    assert (await api.http.get("/realms/atlantis/jwks")).status_code == 404


def _mobile(api: Api, realm: Realm):
    return oauth_client(
        transport(api),
        client_id=realm.mobile_id,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )


async def _authorize_error(api: Api, realm: Realm, **params: str) -> dict[str, list[str]]:
    query = {
        "response_type": "code",
        "client_id": realm.mobile_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "read",
        "state": "s1",
        **params,
    }
    response = await api.http.get(f"{realm.issuer}/authorize", params=query)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return parse_qs(urlsplit(location).query)


async def test_a_redirect_uri_not_registered_exactly_is_refused_without_redirecting(
    api: Api, rotterdam: Realm
) -> None:
    for uri in ("https://evil.example/cb", REDIRECT_URI + "/", REDIRECT_URI + "?x=1"):
        response = await api.http.get(
            f"{rotterdam.issuer}/authorize",
            params={
                "response_type": "code",
                "client_id": rotterdam.mobile_id,
                "redirect_uri": uri,
                "code_challenge": "a" * 43,
                "code_challenge_method": "S256",
            },
        )
        assert response.status_code == 400
        assert "location" not in response.headers


async def test_public_clients_must_use_pkce_s256_at_the_authorization_endpoint(
    api: Api, rotterdam: Realm
) -> None:
    missing = await _authorize_error(api, rotterdam)
    assert missing["error"] == ["invalid_request"]
    assert missing["state"] == ["s1"]
    plain = await _authorize_error(
        api, rotterdam, code_challenge="a" * 43, code_challenge_method="plain"
    )
    assert plain["error"] == ["invalid_request"]
    beyond = await _authorize_error(
        api, rotterdam, code_challenge="a" * 43, code_challenge_method="S256", scope="read admin"
    )
    assert beyond["error"] == ["invalid_scope"]


async def test_a_wrong_verifier_is_invalid_grant(api: Api, rotterdam: Realm) -> None:
    async with _mobile(api, rotterdam) as client:
        location, _ = await authorize(client, rotterdam)
        with pytest.raises(OAuthError) as raised:
            await client.fetch_token(
                f"{rotterdam.issuer}/token",
                authorization_response=location,
                code_verifier="wrong-" + "v" * 50,
            )
    assert raised.value.error == "invalid_grant"


async def test_a_replayed_code_is_refused_and_its_tokens_revoked(
    api: Api, rotterdam: Realm
) -> None:
    async with _mobile(api, rotterdam) as client:
        location, verifier = await authorize(client, rotterdam)
        url = f"{rotterdam.issuer}/token"
        token = await client.fetch_token(
            url, authorization_response=location, code_verifier=verifier
        )
        with pytest.raises(OAuthError) as raised:
            await client.fetch_token(url, authorization_response=location, code_verifier=verifier)
        assert raised.value.error == "invalid_grant"
        with pytest.raises(OAuthError):
            await client.refresh_token(url, refresh_token=token["refresh_token"])
    body = await _eventually_refused(api, token["access_token"])
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_expired_code_is_invalid_grant(api: Api, rotterdam: Realm) -> None:
    async with _mobile(api, rotterdam) as client:
        location, verifier = await authorize(client, rotterdam)
        await api.db.db["oauth_codes"].update_many(
            {}, {"$set": {"expiresAt": datetime.now(UTC) - timedelta(seconds=1)}}
        )
        with pytest.raises(OAuthError) as raised:
            await client.fetch_token(
                f"{rotterdam.issuer}/token", authorization_response=location, code_verifier=verifier
            )
    assert raised.value.error == "invalid_grant"


async def test_client_authentication_and_grant_errors(api: Api, rotterdam: Realm) -> None:
    url = f"{rotterdam.issuer}/token"
    async with oauth_client(
        transport(api), client_id=rotterdam.portal_id, client_secret="not-the-secret"
    ) as client:
        with pytest.raises(OAuthError) as raised:
            await client.fetch_token(url, grant_type="client_credentials")
    assert raised.value.error == "invalid_client"
    async with _mobile(api, rotterdam) as client:
        with pytest.raises(OAuthError) as raised:
            await client.fetch_token(url, grant_type="client_credentials")
    assert raised.value.error in {"invalid_client", "unauthorized_client"}
    async with oauth_client(
        transport(api), client_id=rotterdam.portal_id, client_secret=rotterdam.portal_secret
    ) as client:
        with pytest.raises(OAuthError) as raised:
            await client.fetch_token(url, grant_type="client_credentials", scope="read admin")
        assert raised.value.error == "invalid_scope"
        with pytest.raises(OAuthError) as raised:
            await client.fetch_token(url, grant_type="password", username="u", password="p")
        assert raised.value.error == "unsupported_grant_type"


async def test_refresh_token_reuse_revokes_the_whole_family(api: Api, rotterdam: Realm) -> None:
    url = f"{rotterdam.issuer}/token"
    async with _mobile(api, rotterdam) as client:
        location, verifier = await authorize(client, rotterdam)
        first = await client.fetch_token(
            url, authorization_response=location, code_verifier=verifier
        )
        second = await client.refresh_token(url, refresh_token=first["refresh_token"])
        with pytest.raises(OAuthError) as raised:  # an attacker replays the rotated token
            await client.refresh_token(url, refresh_token=first["refresh_token"])
        assert raised.value.error == "invalid_grant"
        with pytest.raises(OAuthError):  # ... and the legitimate holder is cut off too
            await client.refresh_token(url, refresh_token=second["refresh_token"])
    body = await _eventually_refused(api, second["access_token"])
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_brute_force_sign_in_is_throttled_with_a_generic_message(
    api: Api, rotterdam: Realm
) -> None:
    async with _mobile(api, rotterdam) as client:
        url, _ = client.create_authorization_url(
            f"{rotterdam.issuer}/authorize", code_verifier=generate_token(48)
        )
    async with httpx.AsyncClient(transport=transport(api)) as browser:
        statuses = []
        for attempt in range(7):
            page = await browser.get(url)
            response = await browser.post(
                url,
                data={
                    **hidden_fields(page.text),
                    "username": rotterdam.username,
                    "password": f"guess-{attempt}",
                },
            )
            statuses.append(response.status_code)
            assert "Wrong username or password" in response.text or response.status_code == 429
        assert statuses[:5] == [401] * 5
        assert statuses[5:] == [429, 429]
        # Even the right password is refused from this address while it must wait (from
        # elsewhere it works: tests/test_sign_in.py).
        page = await browser.get(url)
        response = await browser.post(
            url,
            data={**hidden_fields(page.text), "username": rotterdam.username, "password": PASSWORD},
        )
        assert response.status_code == 429
        # An unknown account gets the same message as a wrong password.
        page = await browser.get(url)
        response = await browser.post(
            url, data={**hidden_fields(page.text), "username": "nobody", "password": "x" * 12}
        )
        assert "Wrong username or password" in response.text


async def test_the_sign_in_form_needs_its_csrf_token(api: Api, rotterdam: Realm) -> None:
    async with _mobile(api, rotterdam) as client:
        url, _ = client.create_authorization_url(
            f"{rotterdam.issuer}/authorize", code_verifier=generate_token(48)
        )
    async with httpx.AsyncClient(transport=transport(api)) as browser:
        await browser.get(url)
        response = await browser.post(
            url, data={"csrf_token": "forged", "username": rotterdam.username, "password": PASSWORD}
        )
        assert response.status_code == 400
        page = await browser.get(url)
        assert "Rotterdam" in page.text
        assert 'name="username"' in page.text
        assert 'name="password"' in page.text


async def _eventually_refused(api: Api, access_token: str) -> dict[str, Any]:
    """Revocation reaches the API within seconds (the denylist cache), not at expiry."""
    async with asyncio.timeout(REVOCATION_SECONDS):
        while True:
            body = await api.gql(VIEWER, token=access_token)
            if body.get("errors"):
                return body
            await asyncio.sleep(0.25)


async def test_revoking_a_client_stops_its_live_tokens_within_seconds(
    api: Api, store: OAuthStore, rotterdam: Realm
) -> None:
    async with oauth_client(
        transport(api), client_id=rotterdam.portal_id, client_secret=rotterdam.portal_secret
    ) as client:
        token = await client.fetch_token(
            f"{rotterdam.issuer}/token", grant_type="client_credentials"
        )
    assert (await api.data(VIEWER, token=token["access_token"]))["viewer"]
    await asyncio.to_thread(
        admin.revoke_client, store, city="rotterdam", client_id=rotterdam.portal_id, access_ttl=900
    )
    body = await _eventually_refused(api, token["access_token"])
    assert body["errors"][0]["message"] == "token revoked"
    async with oauth_client(
        transport(api), client_id=rotterdam.portal_id, client_secret=rotterdam.portal_secret
    ) as client:
        with pytest.raises(OAuthError) as raised:
            await client.fetch_token(f"{rotterdam.issuer}/token", grant_type="client_credentials")
    assert raised.value.error == "invalid_client"


async def test_introspection_and_revocation_stay_inside_the_realm(
    api: Api, rotterdam: Realm, lagos: Realm
) -> None:
    async with oauth_client(
        transport(api), client_id=rotterdam.portal_id, client_secret=rotterdam.portal_secret
    ) as client:
        token = (
            await client.fetch_token(f"{rotterdam.issuer}/token", grant_type="client_credentials")
        )["access_token"]
    async with httpx.AsyncClient(transport=transport(api)) as http:
        active = await http.post(
            f"{rotterdam.issuer}/introspect",
            data={"token": token},
            auth=(rotterdam.portal_id, rotterdam.portal_secret),
        )
        assert active.json()["active"] is True
        assert active.json()["iss"] == rotterdam.issuer
        # Lagos's client asking Lagos's realm about a Rotterdam token: never active there.
        other = await http.post(
            f"{lagos.issuer}/introspect",
            data={"token": token},
            auth=(lagos.portal_id, lagos.portal_secret),
        )
        assert other.json() == {"active": False}
        # ... and Lagos's client cannot use Rotterdam's introspection at all.
        foreign = await http.post(
            f"{rotterdam.issuer}/introspect",
            data={"token": token},
            auth=(lagos.portal_id, lagos.portal_secret),
        )
        assert foreign.status_code == 401
        revoked = await http.post(
            f"{rotterdam.issuer}/revoke",
            data={"token": token},
            auth=(rotterdam.portal_id, rotterdam.portal_secret),
        )
        assert revoked.status_code == 200
        after = await http.post(
            f"{rotterdam.issuer}/introspect",
            data={"token": token},
            auth=(rotterdam.portal_id, rotterdam.portal_secret),
        )
        assert after.json() == {"active": False}
    body = await _eventually_refused(api, token)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_key_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(
    api: Api, store: OAuthStore, rotterdam: Realm
) -> None:
    async def fetch() -> str:
        async with oauth_client(
            transport(api), client_id=rotterdam.portal_id, client_secret=rotterdam.portal_secret
        ) as client:
            token = await client.fetch_token(
                f"{rotterdam.issuer}/token", grant_type="client_credentials"
            )
            return str(token["access_token"])

    def kid(token: str) -> str:
        return str(jws.extract_compact(token.encode()).protected["kid"])

    before = await fetch()
    new_kid = await asyncio.to_thread(admin.rotate_key, store, city="rotterdam")
    after = await fetch()
    assert kid(after) == new_kid != kid(before)
    jwks = (await api.http.get("/realms/rotterdam/jwks")).json()
    assert {kid(before), new_kid} <= {key["kid"] for key in jwks["keys"]}
    for token in (before, after):
        await api.data(VIEWER, token=token)


async def test_a_persons_role_bounds_the_scopes_they_can_grant(
    api: Api, store: OAuthStore, rotterdam: Realm
) -> None:
    wide = await asyncio.to_thread(
        admin.register_client,
        store,
        city="rotterdam",
        name="Admin console",
        client_type=ClientType.PUBLIC,
        grants=["authorization_code"],
        redirect_uris=[REDIRECT_URI],
        scopes=["read", "admin"],
    )
    realm = replace(rotterdam, mobile_id=wide.client.client_id)
    async with oauth_client(
        transport(api),
        client_id=realm.mobile_id,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        # rotterdam.username is a CRO, not an admin: "admin" is dropped from what is granted.
        location, verifier = await authorize(client, realm, scope="read admin")
        token = await client.fetch_token(
            f"{realm.issuer}/token", authorization_response=location, code_verifier=verifier
        )
    assert token["scope"] == "read"
    data = await api.data(VIEWER, token=token["access_token"])
    assert data["viewer"]["scopes"] == ["read"]


async def test_racing_a_code_leaves_no_usable_token(api: Api, rotterdam: Realm) -> None:
    url = f"{rotterdam.issuer}/token"
    async with _mobile(api, rotterdam) as client:
        location, verifier = await authorize(client, rotterdam)
        results = await asyncio.gather(
            *(
                client.fetch_token(url, authorization_response=location, code_verifier=verifier)
                for _ in range(3)
            ),
            return_exceptions=True,
        )
    tokens = [r for r in results if isinstance(r, dict)]
    assert len(tokens) <= 1
    # Every other exchange reached the code and saw it used (not some other failure), so the
    # family is revoked; say what they got if the token survives anyway.
    losers = [repr(r) for r in results if not isinstance(r, dict)]
    for token in tokens:
        try:
            await _eventually_refused(api, token["access_token"])
        except TimeoutError:
            raise AssertionError(f"the winner's token survived; the others got {losers}") from None


async def test_racing_a_refresh_token_revokes_the_family(api: Api, rotterdam: Realm) -> None:
    url = f"{rotterdam.issuer}/token"
    async with _mobile(api, rotterdam) as client:
        location, verifier = await authorize(client, rotterdam)
        first = await client.fetch_token(
            url, authorization_response=location, code_verifier=verifier
        )
        results = await asyncio.gather(
            *(client.refresh_token(url, refresh_token=first["refresh_token"]) for _ in range(4)),
            return_exceptions=True,
        )
        refreshed = [r for r in results if isinstance(r, dict)]
        assert len(refreshed) < 4  # the reuse was seen
        for token in refreshed:  # ... and nothing from the family stays usable
            with pytest.raises(OAuthError):
                await client.refresh_token(url, refresh_token=token["refresh_token"])
            await _eventually_refused(api, token["access_token"])
    await _eventually_refused(api, first["access_token"])


async def test_parallel_guesses_cannot_slip_under_the_limit(api: Api, rotterdam: Realm) -> None:
    async with _mobile(api, rotterdam) as client:
        url, _ = client.create_authorization_url(
            f"{rotterdam.issuer}/authorize", code_verifier=generate_token(48)
        )

    async def guess(attempt: int) -> int:
        async with httpx.AsyncClient(transport=transport(api)) as browser:
            page = await browser.get(url)
            response = await browser.post(
                url,
                data={
                    **hidden_fields(page.text),
                    "username": rotterdam.username,
                    "password": f"guess-{attempt}",
                },
            )
            return response.status_code

    statuses = await asyncio.gather(*(guess(i) for i in range(12)))
    assert statuses.count(401) <= 5
    assert statuses.count(429) >= 7


async def test_client_credentials_with_the_secret_in_the_form(api: Api, rotterdam: Realm) -> None:
    """client_secret_post (RFC 6749 §2.3.1), as the metadata advertises."""
    metadata = (
        await api.http.get("/realms/rotterdam/.well-known/oauth-authorization-server")
    ).json()
    assert "client_secret_post" in metadata["token_endpoint_auth_methods_supported"]
    form = {"grant_type": "client_credentials", "client_id": rotterdam.portal_id, "scope": "read"}
    response = await api.http.post(
        "/realms/rotterdam/token", data={**form, "client_secret": rotterdam.portal_secret}
    )
    assert response.status_code == 200, response.text
    data = await api.data(VIEWER, token=response.json()["access_token"])
    assert data["viewer"]["clientId"] == rotterdam.portal_id
    wrong = await api.http.post(
        "/realms/rotterdam/token", data={**form, "client_secret": "not-the-secret"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


async def test_error_redirects_carry_the_issuer_too(api: Api, rotterdam: Realm) -> None:
    async with _mobile(api, rotterdam) as client:
        location, _ = await authorize(client, rotterdam, decision="deny")
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["access_denied"]
    assert query["iss"] == [rotterdam.issuer]
    error = await _authorize_error(api, rotterdam, scope="read nonsense")
    assert error["iss"] == [rotterdam.issuer]


async def test_realm_pages_in_production_send_hsts_and_a_host_cookie(api: Api) -> None:
    settings = replace(api.settings, env="prod", public_url="https://exchange.example")
    await add_city(api.db, "rotterdam", "Rotterdam")
    store = store_for(settings)
    try:
        realm = await make_realm(api.db, store, settings, "rotterdam")
    finally:
        store.close()
    async with LifespanManager(create_app(settings)) as manager:
        prod = httpx.ASGITransport(app=manager.app)
        async with oauth_client(
            prod,
            client_id=realm.mobile_id,
            redirect_uri=REDIRECT_URI,
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
        ) as client:
            url, _ = client.create_authorization_url(
                f"{realm.issuer}/authorize", code_verifier=generate_token(48)
            )
            async with httpx.AsyncClient(transport=prod) as browser:
                page = await browser.get(url)
            assert page.headers["strict-transport-security"].startswith("max-age=")
            cookie = SimpleCookie(page.headers["set-cookie"])
            morsel = cookie["__Host-cx_csrf"]  # RFC 6265bis: Secure, Path=/, no Domain
            assert (morsel["secure"], morsel["path"], morsel["domain"]) == (True, "/", "")
            location, _ = await authorize(client, realm)  # and the whole sign-in works with it
            assert "code=" in location
    # In development (plain http) no HSTS: a browser would remember it for the whole host.
    dev_page = await api.http.get("/realms/rotterdam/authorize")
    assert "strict-transport-security" not in dev_page.headers


async def test_a_familys_record_keeps_only_its_unexpired_access_tokens(api: Api) -> None:
    """Every refresh records the new access token for a later revocation; the expired ones go,
    so a family refreshed all day does not grow without bound (found by an outside attack)."""
    store = store_for(api.settings)
    try:
        moment = datetime.now(UTC)
        for n in range(5):
            added = await asyncio.to_thread(
                store.add_family_token, "fam-1", "rotterdam", f"old-{n}", moment - timedelta(1)
            )
            assert added
        await asyncio.to_thread(
            store.add_family_token, "fam-1", "rotterdam", "live", moment + timedelta(hours=1)
        )
        doc = await asyncio.to_thread(store.db.token_families.find_one, {"_id": "fam-1"})
        assert doc is not None
        assert [issued["jti"] for issued in doc["jtis"]] == ["live"]
    finally:
        store.close()


async def test_a_family_refreshed_in_a_loop_is_told_to_slow_down(
    api: Api, rotterdam: Realm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each refresh stores a refresh token for 30 days: past the budget of refreshes within one
    access-token lifetime the answer is 429 slow_down, and the token presented stays good."""
    monkeypatch.setattr(grants, "MAX_REFRESHES_PER_LIFETIME", 3)
    async with oauth_client(
        transport(api),
        client_id=rotterdam.mobile_id,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        location, verifier = await authorize(client, rotterdam)
        token = await client.fetch_token(
            f"{rotterdam.issuer}/token", authorization_response=location, code_verifier=verifier
        )
        refresh = token["refresh_token"]
        for _ in range(2):  # the code's access token and two refreshes: three live
            refresh = (await client.refresh_token(f"{rotterdam.issuer}/token", refresh))[
                "refresh_token"
            ]

    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "client_id": rotterdam.mobile_id,
    }
    refused = await api.http.post("/realms/rotterdam/token", data=form)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "slow_down"
    # Not spent: once the family's access tokens have expired, the same token refreshes.
    store = store_for(api.settings)
    try:
        await asyncio.to_thread(
            store.db.token_families.update_many,
            {},
            {"$set": {"jtis.$[].exp": datetime.now(UTC) - timedelta(seconds=1)}},
        )
    finally:
        store.close()
    later = await api.http.post("/realms/rotterdam/token", data=form)
    assert later.status_code == 200, later.text
