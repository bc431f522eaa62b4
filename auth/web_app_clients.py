"""The CRO web app's OAuth client in every realm (docs/web-app.md): public, authorization code
with PKCE and rotating refresh tokens, and exact redirect URIs on this service's own origin.

Its id is the city's slug with `-web` (no generated client id has a part that short), so the
app, knowing the city a person picks, knows the client without asking."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.records import ClientType, OAuthClient
from cityexchange.services.clock import now

NAME = "Peer City Exchange web app"
CALLBACK_PATH = "/app/signed-in"
GRANTS = ("authorization_code", "refresh_token")
SCOPES = ("read", "publish", "comment")  # no admin: the app administers nothing
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def client_id(city: str) -> str:
    return f"{city}-web"


def redirect_uris(public_url: str, *, production: bool) -> tuple[str, ...]:
    """The app's callback on the public URL; in development on a loopback address, on each
    loopback name of its port too (a browser at localhost keeps its own session storage)."""
    base = public_url.rstrip("/")
    parts = urlsplit(base)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    if production or host not in LOOPBACK_NAMES:
        return (f"{base}{CALLBACK_PATH}",)
    port = f":{parts.port}" if parts.port else ""
    others = [f"{parts.scheme}://{name}{port}" for name in LOOPBACK_NAMES if name != host]
    return tuple(f"{origin}{CALLBACK_PATH}" for origin in (base, *others))


def ensure(
    store: OAuthStore, cities: Iterable[str], uris: tuple[str, ...], *, replace_uris: bool = True
) -> None:
    """Register the app in each of `cities`' realms, and set its redirect URIs to `uris`
    (or, not `replace_uris`, add the missing ones); a realm whose admin revoked the app
    keeps it revoked (synchronous: the OAuth store's)."""
    created = now()
    store.ensure_clients(
        [
            OAuthClient(
                client_id=client_id(city),
                city=city,
                name=NAME,
                type=ClientType.PUBLIC,
                grants=GRANTS,
                redirect_uris=uris,
                scopes=SCOPES,
                secret_hash=None,
                created_at=created,
            )
            for city in cities
        ],
        replace_uris=replace_uris,
    )
