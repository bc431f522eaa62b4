"""Every request is authenticated once; the city comes from the token's issuer."""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from cityexchange.auth.signing_keys import current_signing_key
from cityexchange.auth.tokens import MAX_ACCESS_TOKEN_TTL_SECONDS
from tests.conftest import Api

pytestmark = pytest.mark.usefixtures("two_cities")

VIEWER = "{ viewer { subject scopes clientId city { slug } } }"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def _claims(api: Api, city: str = "rotterdam", **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": f"{api.settings.public_url}/realms/{city}",
        "sub": "someone",
        "aud": api.settings.audience,
        "exp": now + 600,
        "iat": now,
        "jti": "j1",
        "client_id": "tests",
        "scope": "read publish",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


async def _signed(
    api: Api, claims: dict[str, object], *, typ: str = "at+jwt", city: str = "rotterdam"
) -> str:
    key = await current_signing_key(api.db, city)
    header = {"alg": "ES256", "typ": typ, "kid": key.kid}
    return jwt.encode(header, claims, key.key)


async def test_viewer_tells_the_caller_who_it_is(api: Api) -> None:
    token = await api.token("lagos", scopes=("read", "comment"), subject="portal-1")
    data = await api.data(VIEWER, token=token)
    assert data["viewer"] == {
        "subject": "portal-1",
        "scopes": ["comment", "read"],
        "clientId": "tests",
        "city": {"slug": "lagos"},
    }


async def test_the_city_comes_from_the_issuer_not_from_claims(api: Api) -> None:
    # A Lagos-signed token cannot claim to be Rotterdam's, whatever else it says.
    claims = await _claims(api, city="rotterdam", city_slug="lagos")
    token = await _signed(api, claims, city="lagos")
    body = await api.gql(VIEWER, token=token)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_valid_hand_made_token_is_accepted(api: Api) -> None:
    token = await _signed(api, await _claims(api))
    data = await api.data(VIEWER, token=token)
    assert data["viewer"]["city"] == {"slug": "rotterdam"}


async def _wrong_issuer(api: Api) -> str:
    foreign = ECKey.generate_key("P-256", parameters={"kid": "x"}, private=True)
    claims = await _claims(api, iss="https://idp.example.org/realms/rotterdam")
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "x"}, claims, foreign)


async def _forged_kid(api: Api) -> str:
    foreign = ECKey.generate_key("P-256", parameters={"kid": "forged"}, private=True)
    return jwt.encode(
        {"alg": "ES256", "typ": "at+jwt", "kid": "forged"}, await _claims(api), foreign
    )


async def _alg_none(api: Api) -> str:
    key = await current_signing_key(api.db, "rotterdam")
    return f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': key.kid})}.{_b64(await _claims(api))}."


async def _hmac_with_public_key(api: Api) -> str:
    key = await current_signing_key(api.db, "rotterdam")
    secret = OctKey.import_key(json.dumps(key.key.as_dict(private=False)))
    return jwt.encode({"alg": "HS256", "typ": "at+jwt", "kid": key.kid}, await _claims(api), secret)


async def _expired(api: Api) -> str:
    return await _signed(api, await _claims(api, exp=int(time.time()) - 120))


async def _not_yet_valid(api: Api) -> str:
    return await _signed(api, await _claims(api, nbf=int(time.time()) + 600))


async def _wrong_audience(api: Api) -> str:
    return await _signed(api, await _claims(api, aud="another-api"))


async def _typ_jwt(api: Api) -> str:
    return await _signed(api, await _claims(api), typ="JWT")


async def _no_exp(api: Api) -> str:
    return await _signed(api, await _claims(api, exp=None))


async def _tampered(api: Api) -> str:
    header, _, signature = (await _signed(api, await _claims(api))).split(".")
    return f"{header}.{_b64(await _claims(api, scope='read publish admin'))}.{signature}"


async def _garbage(_: Api) -> str:
    return "not-a-jwt"


@pytest.mark.parametrize(
    "make",
    [
        _wrong_issuer,
        _forged_kid,
        _alg_none,
        _hmac_with_public_key,
        _expired,
        _not_yet_valid,
        _wrong_audience,
        _typ_jwt,
        _no_exp,
        _tampered,
        _garbage,
    ],
)
async def test_bad_tokens_are_unauthenticated(api: Api, make: object) -> None:
    token = await make(api)  # type: ignore[operator]
    body = await api.gql(VIEWER, token=token)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_no_token_is_unauthenticated_everywhere(api: Api) -> None:
    for query in (VIEWER, "{ problems { totalCount } }", "{ cities { totalCount } }"):
        body = await api.gql(query)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    response = await api.http.post(
        "/graphql", json={"query": VIEWER}, headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_unknown_city_realm_is_unauthenticated(api: Api) -> None:
    # Keys exist only for registered cities, so a realm path that names none cannot verify.
    token = await _signed(api, await _claims(api, iss=f"{api.settings.public_url}/realms/atlantis"))
    body = await api.gql(VIEWER, token=token)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("lifetime", [10 * 365 * 86_400, MAX_ACCESS_TOKEN_TTL_SECONDS + 3600])
async def test_a_token_living_longer_than_the_realm_issues_is_refused(
    api: Api, lifetime: int
) -> None:
    start = int(time.time())
    token = await _signed(api, await _claims(api, iat=start, exp=start + lifetime))
    body = await api.gql(VIEWER, token=token)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "lifetime" in body["errors"][0]["message"]
    # The longest lifetime issued here (an operator's `token issue --ttl`) still passes.
    longest = await api.token("rotterdam", ttl=MAX_ACCESS_TOKEN_TTL_SECONDS)
    await api.data(VIEWER, token=longest)
