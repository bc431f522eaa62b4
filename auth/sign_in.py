"""Signing in at a realm's authorization page: the password (throttled per account and
address, checked in a hashing slot), consent, and the redirect with a code."""

from __future__ import annotations

import functools
import logging
import secrets
from dataclasses import dataclass

from starlette.responses import Response

from cityexchange.auth import pages, sign_in_store
from cityexchange.auth.oauth_realms import (
    OAuthRealms,
    first_value,
    in_thread,
    oauth_response,
    set_csrf,
)
from cityexchange.auth.oauth_requests import FormRequest
from cityexchange.auth.passwords import hash_password, hash_secret, needs_rehash, verify_password
from cityexchange.auth.realm_server import Consent, RealmServer
from cityexchange.auth.resource_owners import ResourceOwner
from cityexchange.services.store import people

log = logging.getLogger("cityexchange.oauth")

TICKET_TTL_SECONDS = 300
# Sign-in throttling, per (account, client address): an attacker's guesses slow down only
# their own tries, never the owner's from elsewhere. After PAIR_FREE_ATTEMPTS each try makes
# the next wait twice as long as the last (5 s, 10 s, 20 s ... 15 min); trying during the wait
# is refused with Retry-After and doubles it as well.
PAIR_FREE_ATTEMPTS = 5
PAIR_BASE_DELAY_SECONDS = 5
PAIR_MAX_DELAY_SECONDS = 900
ADDRESS_FAILURES = 20  # per client address and window, over all accounts
FAILURE_WINDOW_SECONDS = 900
GENERIC_LOGIN_ERROR = "Wrong username or password."
BUSY_ERROR = "Sign-in is busy right now. Try again in a moment."
THROTTLED_ERROR = "Too many failed attempts. Wait a few minutes and try again."


@dataclass(frozen=True, slots=True)
class SignInPage:
    """The sign-in form of one authorization request, shown again with an error."""

    realms: OAuthRealms
    city_name: str
    client_name: str
    action: str

    def render(self, error: str | None = None, status: int = 200) -> Response:
        csrf = secrets.token_urlsafe(24)
        content = pages.sign_in(
            city_name=self.city_name,
            client_name=self.client_name,
            action=self.action,
            csrf=csrf,
            error=error,
        )
        response = self.realms.html(content, status)
        set_csrf(response, csrf, self.realms, self.action)
        return response


async def after_password(
    sign_in: SignInPage,
    server: RealmServer,
    oauth: FormRequest,
    grant: Consent,
    form: dict[str, list[str]],
    address: str,
    request_hash: str,
) -> Response:
    """Check the person's password (in a hashing slot), throttled per (account, address)
    and per address; then consent, or the code at once."""
    realms, store, city = sign_in.realms, server.store, server.realm.city
    username = first_value(form, "username").strip()[:100]
    password = first_value(form, "password")
    pair_key = f"pair:{city}:{username.casefold()}:{address}"
    address_key = f"address:{city}:{address}"
    # Each attempt is counted before the password is checked, so parallel guesses cannot all
    # slip under the limit; a success gives its count back.
    window = FAILURE_WINDOW_SECONDS
    taken = await in_thread(
        sign_in_store.take_attempt, store.db, address_key, window_seconds=window
    )
    if taken > ADDRESS_FAILURES:
        log.warning("sign-in throttled for realm %s: too many from one address", city)
        return sign_in.render(THROTTLED_ERROR, 429)
    wait = await in_thread(
        sign_in_store.take_spaced_attempt,
        store.db,
        pair_key,
        free=PAIR_FREE_ATTEMPTS,
        base_delay_seconds=PAIR_BASE_DELAY_SECONDS,
        max_delay_seconds=PAIR_MAX_DELAY_SECONDS,
        window_seconds=window,
    )
    if wait:
        await in_thread(sign_in_store.give_back_attempt, store.db, address_key)  # nothing checked
        # No username in the log: logs are not a user directory.
        log.warning("sign-in slowed down for realm %s", city)
        response = sign_in.render(THROTTLED_ERROR, 429)
        response.headers["Retry-After"] = str(wait)
        return response
    credentials = (
        await in_thread(people.credentials, store.db, city, username) if username else None
    )
    stored = credentials.password_hash if credentials else None
    valid = await realms.hashing.run(functools.partial(verify_password, password, stored))
    if credentials is None or not valid or credentials.revoked_at is not None:
        return sign_in.render(GENERIC_LOGIN_ERROR, 401)
    await in_thread(sign_in_store.clear_failures, store.db, pair_key)
    await in_thread(sign_in_store.give_back_attempt, store.db, address_key)
    if stored is not None and needs_rehash(stored):
        rehashed = await realms.hashing.run(functools.partial(hash_password, password))
        await in_thread(
            people.replace_password_hash, store.db, city, credentials.person_id, stored, rehashed
        )
    owner = ResourceOwner(credentials.person_id, city, credentials.role)
    scope = owner.allowed(grant.scope)  # what the person's role allows of what was asked
    client_id = grant.client.client_id
    if not scope or await in_thread(store.has_consent, city, owner.person_id, client_id, scope):
        return await issue_code(server, oauth, grant, owner)
    ticket = secrets.token_urlsafe(24)
    await in_thread(
        sign_in_store.save_ticket,
        store.db,
        hash_secret(ticket),
        city,
        credentials.person_id,
        request_hash,
        ttl_seconds=TICKET_TTL_SECONDS,
    )
    csrf = secrets.token_urlsafe(24)
    response = realms.html(
        pages.consent(
            city_name=sign_in.city_name,
            client_name=sign_in.client_name,
            scopes=scope.split(),
            action=sign_in.action,
            csrf=csrf,
            ticket=ticket,
        )
    )
    set_csrf(response, csrf, realms, sign_in.action)
    return response


async def after_consent(
    realms: OAuthRealms,
    server: RealmServer,
    oauth: FormRequest,
    grant: Consent,
    form: dict[str, list[str]],
    request_hash: str,
) -> Response:
    store, city = server.store, server.realm.city
    person_id = await in_thread(
        sign_in_store.take_ticket,
        store.db,
        hash_secret(first_value(form, "ticket")),
        city,
        request_hash,
    )
    if person_id is None:
        page = pages.error(title="Session expired", detail="Please go back and sign in again.")
        return realms.html(page, 400)
    owner = await in_thread(server.resource_owner, person_id)
    if owner is None or first_value(form, "decision") != "allow":
        return await issue_code(server, oauth, grant, None)  # access_denied, to the client
    await in_thread(
        store.add_consent, city, person_id, grant.client.client_id, owner.allowed(grant.scope)
    )
    return await issue_code(server, oauth, grant, owner)


async def issue_code(
    server: RealmServer, oauth: FormRequest, grant: Consent, owner: ResourceOwner | None
) -> Response:
    """Redirect to the client with a code for `owner`, or with access_denied for None."""
    return oauth_response(*await in_thread(server.authorization_response, oauth, grant, owner))
