"""Helpers for driving the realms' OAuth endpoints as real clients do."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client

from cityexchange.auth import admin
from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.records import ClientType
from cityexchange.services import cities
from cityexchange.services.models import Affiliation, Person
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import OrganisationKind, Role
from cityexchange.settings import Settings

REDIRECT_URI = "org.rotterdam.app:/callback"
PASSWORD = "correct horse battery staple"
_HIDDEN = re.compile(r'name="(csrf_token|ticket)" value="([^"]+)"')


def store_for(settings: Settings) -> OAuthStore:
    assert settings.mongodb_uri is not None
    return OAuthStore.connect(
        settings.mongodb_uri.value,
        settings.db_name,
        server_selection_timeout_ms=3000,
        timeout_ms=30_000,
    )


@dataclass
class Realm:
    """A city realm with a portal (confidential), a mobile app (public) and a person."""

    city: str
    issuer: str
    portal_id: str
    portal_secret: str
    mobile_id: str
    username: str
    person_id: str


async def make_realm(db: Database, store: OAuthStore, settings: Settings, city: str) -> Realm:
    portal = await asyncio.to_thread(
        admin.register_client,
        store,
        city=city,
        name=f"{city} portal",
        client_type=ClientType.CONFIDENTIAL,
        grants=["client_credentials"],
        redirect_uris=[],
        scopes=["read", "publish"],
    )
    mobile = await asyncio.to_thread(
        admin.register_client,
        store,
        city=city,
        name=f"{city} app",
        client_type=ClientType.PUBLIC,
        grants=["authorization_code", "refresh_token"],
        redirect_uris=[REDIRECT_URI],
        scopes=["read", "comment"],
    )
    person = await cities.add_person(
        db=db,
        person=Person(
            id="",
            city=city,
            username=f"cro.{city}",
            name=f"CRO of {city}",
            role=Role.CRO,
            affiliation=Affiliation(city, OrganisationKind.CITY_AGENCY),
        ),
    )
    await asyncio.to_thread(
        admin.set_password, store, city=city, username=person.username, password=PASSWORD
    )
    assert portal.secret is not None
    return Realm(
        city=city,
        issuer=f"{settings.public_url}/realms/{city}",
        portal_id=portal.client.client_id,
        portal_secret=portal.secret,
        mobile_id=mobile.client.client_id,
        username=person.username,
        person_id=person.id,
    )


def oauth_client(transport: httpx.AsyncBaseTransport, **kwargs: object) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(transport=transport, **kwargs)  # type: ignore[arg-type]


def hidden_fields(page: str) -> dict[str, str]:
    return dict(_HIDDEN.findall(page))


async def authorize(
    client: AsyncOAuth2Client,
    realm: Realm,
    *,
    username: str | None = None,
    password: str = PASSWORD,
    scope: str = "read comment",
    decision: str = "allow",
) -> tuple[str, str]:
    """Walk the sign-in (and consent) pages in a browser-like client (cookies kept, no
    redirects followed); return (redirect location, code verifier)."""
    verifier = generate_token(48)
    url, _ = client.create_authorization_url(
        f"{realm.issuer}/authorize", code_verifier=verifier, scope=scope
    )
    async with httpx.AsyncClient(transport=client._transport) as browser:
        return await sign_in(
            browser, url, realm, username=username, password=password, decision=decision
        ), verifier


async def sign_in(
    browser: httpx.AsyncClient,
    url: str,
    realm: Realm,
    *,
    username: str | None = None,
    password: str = PASSWORD,
    decision: str = "allow",
) -> str:
    """The person's part: open the page, sign in, consent; the Location the app gets."""
    client = browser
    page = await client.get(url)
    assert page.status_code == 200, page.text
    response = await client.post(
        url,
        data={
            **hidden_fields(page.text),
            "username": username or realm.username,
            "password": password,
        },
    )
    if response.status_code == 200 and "ticket" in response.text:  # first-time consent
        response = await client.post(
            url, data={**hidden_fields(response.text), "decision": decision}
        )
    assert response.status_code == 302, (response.status_code, response.text)
    return response.headers["location"]
