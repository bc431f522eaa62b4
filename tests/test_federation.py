"""Federation: a city accepts tokens of its own identity provider, and only as that city."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from asgi_lifespan import LifespanManager
from joserfc import jwt
from joserfc.jwk import RSAKey

from cityexchange.app import create_app
from cityexchange.auth import admin, revocations, trusted_issuers
from cityexchange.auth.federation import LINK_CACHE_SECONDS, MAX_LIFETIME_SECONDS
from cityexchange.services import cities
from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.ids import global_id
from cityexchange.services.models import Affiliation, Person
from cityexchange.services.taxonomy import OrganisationKind, Role
from tests.conftest import Api, add_city, on_configured_database
from tests.oauth_support import store_for
from tests.queries import ADD_COMMENT, PUBLISH_PROBLEM, problem_input

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
        body: dict[str, object] = {
            "iss": issuer,
            "aud": audience,
            "sub": "staff-42",
            "exp": now + 300,
            "iat": now,
            "scp": "read publish",
            "azp": "rotterdam-intranet",
            **claims,
        }
        body = {name: value for name, value in body.items() if value is not None}
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
        "subject": f"{ISSUER}#staff-42",  # (issuer, subject): nobody's until an admin links it
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
        assert (
            await asyncio.to_thread(trusted_issuers.trusting_city, store.db, ISSUER) == "rotterdam"
        )
    finally:
        store.close()


EDIT_COMMENT = """mutation($id: ID!, $body: String!) { editComment(input: {id: $id, body: $body}) {
    comment { body } } }"""
WHO = "{ viewer { subject person { id name } } }"


async def _person_with_a_comment(api: Api) -> tuple[Person, str]:
    """A person of Rotterdam, and a comment she wrote with a token of the city's own realm."""
    person = await cities.add_person(
        db=api.db,
        person=Person(
            id="",
            city="rotterdam",
            username="anna",
            name="Anna de Vries",
            role=Role.CRO,
            affiliation=Affiliation("Rotterdam", OrganisationKind.CITY_AGENCY),
        ),
    )
    own = await api.token("rotterdam", subject=person.id)
    problem = (await api.data(PUBLISH_PROBLEM, {"input": problem_input()}, token=own))[
        "publishProblem"
    ]["problem"]["id"]
    comment = await api.data(
        ADD_COMMENT, {"input": {"subjectId": problem, "body": "Mine."}}, token=own
    )
    return person, comment["addComment"]["comment"]["id"]


async def test_a_federated_sub_equal_to_a_persons_id_is_not_that_person(
    idp: tuple[IdentityProvider, Api],
) -> None:
    provider, api = idp
    person, comment = await _person_with_a_comment(api)
    forged = provider.token(sub=person.id, scp="read comment")
    viewer = (await api.data(WHO, token=forged))["viewer"]
    assert viewer == {"subject": f"{ISSUER}#{person.id}", "person": None}
    body = await api.gql(EDIT_COMMENT, {"id": comment, "body": "Not hers."}, token=forged)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_linked_federated_subject_speaks_for_its_person_until_unlinked(
    idp: tuple[IdentityProvider, Api],
) -> None:
    provider, api = idp
    person, comment = await _person_with_a_comment(api)
    store = store_for(api.settings)
    try:
        link = functools.partial(
            admin.link_federated_subject, store, city="rotterdam", username="anna"
        )
        for wrong in ({"issuer": DOWN_ISSUER}, {"issuer": "https://idp.nobody.example"}):
            with pytest.raises(InvalidInput):  # Lagos's provider, and one nobody trusts
                await asyncio.to_thread(link, subject="staff-42", **wrong)
        await asyncio.to_thread(link, issuer=ISSUER, subject="staff-42")
        await asyncio.to_thread(link, issuer=ISSUER, subject="staff-42")  # idempotent
        token = provider.token(sub="staff-42", scp="read comment")
        # The fixture's requests cached staff-42 as nobody's; a link is seen within seconds.
        async with asyncio.timeout(LINK_CACHE_SECONDS + 10):
            while (viewer := (await api.data(WHO, token=token))["viewer"])["person"] is None:
                await asyncio.sleep(0.1)
        assert viewer == {
            "subject": person.id,
            "person": {"id": global_id("Person", person.id), "name": "Anna de Vries"},
        }
        edited = await api.data(EDIT_COMMENT, {"id": comment, "body": "Still mine."}, token=token)
        assert edited["editComment"]["comment"]["body"] == "Still mine."

        await asyncio.to_thread(
            admin.unlink_federated_subject,
            store,
            city="rotterdam",
            issuer=ISSUER,
            subject="staff-42",
        )
        async with asyncio.timeout(LINK_CACHE_SECONDS + 10):
            while (await api.data(WHO, token=token))["viewer"]["person"] is not None:
                await asyncio.sleep(0.1)
        with pytest.raises(NotFound):
            await asyncio.to_thread(
                admin.unlink_federated_subject,
                store,
                city="rotterdam",
                issuer=ISSUER,
                subject="staff-42",
            )
    finally:
        store.close()


async def test_one_federated_subject_is_linked_to_one_person(
    idp: tuple[IdentityProvider, Api],
) -> None:
    _, api = idp
    await _person_with_a_comment(api)
    await cities.add_person(
        db=api.db,
        person=Person(
            id="",
            city="rotterdam",
            username="bram",
            name="Bram",
            role=Role.MEMBER,
            affiliation=Affiliation("Rotterdam", OrganisationKind.CITY_AGENCY),
        ),
    )
    store = store_for(api.settings)
    try:
        link = functools.partial(
            admin.link_federated_subject, store, city="rotterdam", issuer=ISSUER, subject="s-1"
        )
        await asyncio.to_thread(link, username="anna")
        with pytest.raises(InvalidInput):
            await asyncio.to_thread(link, username="bram")
    finally:
        store.close()


async def _refused_within_seconds(api: Api, token: str) -> None:
    """The denylist is re-read every couple of seconds: wait until the token is refused."""
    async with asyncio.timeout(10):
        while not (await api.gql(VIEWER, token=token)).get("errors"):
            await asyncio.sleep(0.1)
    body = await api.gql(VIEWER, token=token)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_federated_tokens_are_checked_against_the_denylist(
    idp: tuple[IdentityProvider, Api],
) -> None:
    provider, api = idp
    by_jti = provider.token(jti="idp-token-1")
    by_subject = provider.token(sub="staff-7")
    other = provider.token(sub="staff-8", jti="idp-token-2")
    for token in (by_jti, by_subject, other):
        await api.data(VIEWER, token=token)
    store = store_for(api.settings)
    try:
        await asyncio.to_thread(
            revocations.deny, store.db, "jti", "rotterdam", "idp-token-1", at=now(), ttl=300
        )
        await asyncio.to_thread(
            admin.revoke_federated_subject,
            store,
            city="rotterdam",
            issuer=ISSUER,
            subject="staff-7",
            access_ttl=900,
        )
    finally:
        store.close()
    await _refused_within_seconds(api, by_jti)
    await _refused_within_seconds(api, by_subject)
    await api.data(VIEWER, token=other)


async def test_a_federated_token_living_longer_than_the_cap_is_refused(
    idp: tuple[IdentityProvider, Api],
) -> None:
    provider, api = idp
    start = int(time.time())
    too_long = MAX_LIFETIME_SECONDS + 3600
    claims: list[dict[str, object]] = [
        {"exp": start + too_long},
        {"exp": start + too_long, "iat": None},  # no iat: what is left of it counts
    ]
    for changes in claims:
        token = provider.token(**changes)  # type: ignore[arg-type]
        body = await api.gql(VIEWER, token=token)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "lifetime" in body["errors"][0]["message"]
    await api.data(VIEWER, token=provider.token(exp=start + 8 * 3600))


async def test_an_operator_links_and_unlinks_a_federated_subject_from_the_cli(
    idp: tuple[IdentityProvider, Api],
) -> None:
    provider, api = idp
    person, _ = await _person_with_a_comment(api)
    where = ("--city", "rotterdam", "--issuer", ISSUER, "--sub", "staff-7")
    linked = await on_configured_database(api, "user", "link", *where, "--username", "anna")
    assert linked["linked"] is True
    token = provider.token(sub="staff-7", scp="read")
    async with asyncio.timeout(LINK_CACHE_SECONDS + 10):
        while (await api.data(WHO, token=token))["viewer"]["person"] is None:
            await asyncio.sleep(0.1)
    assert (await api.data(WHO, token=token))["viewer"]["subject"] == person.id
    unlinked = await on_configured_database(api, "user", "unlink", *where)
    assert unlinked["linked"] is False
    async with asyncio.timeout(LINK_CACHE_SECONDS + 10):
        while (await api.data(WHO, token=token))["viewer"]["person"] is not None:
            await asyncio.sleep(0.1)
