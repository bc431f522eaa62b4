"""Webhooks: a city's admin registers endpoints; every matching event is delivered to them as
a signed HTTP POST (Standard Webhooks), queued durably, retried, logged, and redeliverable.

Delivery is at least once: the event id is the idempotency key (`webhook-id`)."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
import secrets
import socket
import unicodedata
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from cityexchange.services import limits
from cityexchange.services.clock import now
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.models import Delivery, EventFilter, Webhook, WebhookFormat
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import bounds
from cityexchange.services.store import webhooks as store
from cityexchange.services.store.database import Database

MAX_WEBHOOKS_PER_CITY = 20
URL_MAX = 2000


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


# One DNS label (RFC 1035 §2.3.1, with the underscore that service names use), after IDNA.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_BRACKETED = re.compile(r"\[([0-9A-Fa-f:.]+)\](?::[0-9]*)?")


def check_url(url: str) -> str:
    """An absolute http(s) URL that every client sends as written, or `InvalidInput("url")`.

    Strict, because the URL is sent on later, from the deliverer: a CR or LF would split the
    request line (request smuggling), a port outside 1..65535 or an unparsable host fails
    inside the HTTP client, and userinfo (RFC 9110 §4.2.4: deprecated) would carry a secret."""
    if not url.strip():
        raise InvalidInput("url", "must not be blank")
    if len(url) > URL_MAX:
        raise InvalidInput("url", f"must be at most {URL_MAX} characters")
    if any(c.isspace() or unicodedata.category(c).startswith("C") for c in url):
        raise InvalidInput("url", "must not contain whitespace or control characters")
    if "\\" in url:  # WHATWG parsers read it as "/", RFC 3986 ones do not: two hosts
        raise InvalidInput("url", "must not contain a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises past 65535 or when not a number
    except ValueError:
        raise InvalidInput("url", "must have a valid host and port") from None
    if parts.scheme not in ("https", "http"):
        raise InvalidInput("url", "must be an http or https URL")
    if "@" in parts.netloc:
        raise InvalidInput("url", "must not contain credentials")
    if not _valid_host(parts.netloc, parts.hostname or ""):
        raise InvalidInput("url", "must have a valid host name or IP address")
    if port == 0:
        raise InvalidInput("url", "must have a port between 1 and 65535")
    return url


def _valid_host(netloc: str, host: str) -> bool:
    if "[" in netloc or "]" in netloc:
        # RFC 3986 §3.2.2: only an IPv6 address (or IPvFuture, which no client sends) goes in
        # brackets; a zone id (RFC 6874) names an interface of this machine, never a receiver.
        bracketed = _BRACKETED.fullmatch(netloc)
        if bracketed is None:
            return False
        try:
            ipaddress.IPv6Address(bracketed[1])
        except ValueError:
            return False
        return True
    name = host.removesuffix(".")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_name.split(".")
    if labels[-1].isdigit():  # WHATWG: a host ending in a number is an IPv4 address
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return False
        return True
    return len(ascii_name) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


async def check_target(url: str, *, production: bool) -> str:
    """A well-formed URL (`check_url`); in production HTTPS only, and never a private,
    loopback or link-local address (SSRF). Development also allows http and loopback, for
    receivers on the same machine."""
    url = check_url(url)
    parts = urlsplit(url)
    if production:
        if parts.scheme != "https":
            raise InvalidInput("url", "must use https")
        # getaddrinfo blocks: in a thread, so the event loop never waits on DNS.
        if not await asyncio.to_thread(public_host, parts.hostname or ""):
            raise InvalidInput("url", "must not point to a private or loopback address")
    return url


def public_host(host: str) -> bool:
    """Whether every address `host` resolves to is public (checked again at delivery time,
    since DNS can change)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
        ):
            return False
    return True


async def register(
    *,
    db: Database,
    actor: Principal,
    url: str,
    event_filter: EventFilter,
    description: str | None,
    production: bool,
    format: WebhookFormat = WebhookFormat.STANDARD,
    crisis_alerts: bool = False,
) -> Webhook:
    """Register an endpoint of the caller's city (scope: admin), receiving `format`."""
    actor.require(Scope.ADMIN)
    target = await check_target(url, production=production)
    webhook = Webhook(
        id="", city=actor.city, url=target, event_filter=event_filter.checked(),
        description=limits.optional_text("description", description,
                                         max_length=limits.SHORT_TEXT_MAX),
        secret=new_secret(), created_at=now(), format=format, crisis_alerts=crisis_alerts,
    )  # fmt: skip
    bound = f"webhooks:{actor.city}"

    async def write(session: Any) -> Webhook:
        await bounds.hold(db, bound, session=session)
        if await store.count_of_city(db, actor.city, session=session) >= MAX_WEBHOOKS_PER_CITY:
            raise InvalidInput("url", f"a city may have at most {MAX_WEBHOOKS_PER_CITY} webhooks")
        return await store.insert(db, webhook, session=session)

    await bounds.prepare(db, bound)
    return await db.in_transaction(write)


async def of_city(*, db: Database, actor: Principal) -> list[Webhook]:
    actor.require(Scope.ADMIN)
    return await store.of_city(db, actor.city)


async def _own(db: Database, actor: Principal, id: str) -> Webhook:
    actor.require(Scope.ADMIN)
    webhook = await store.get(db, id)
    if webhook is None or webhook.city != actor.city:
        raise NotFound("Webhook", id)
    return webhook


async def rotate_secret(*, db: Database, actor: Principal, id: str) -> Webhook:
    """A new signing secret, used from the next attempt on."""
    await _own(db, actor, id)
    return await store.set_secret(db, id, new_secret())


async def enable(*, db: Database, actor: Principal, id: str) -> Webhook:
    """Turn a disabled endpoint back on (after its owner fixed it)."""
    await _own(db, actor, id)
    return await store.enable(db, id)


async def delete(*, db: Database, actor: Principal, id: str) -> None:
    await _own(db, actor, id)
    await store.delete(db, id)


async def deliveries(
    *, db: Database, actor: Principal, webhook_id: str, limit: int = 50
) -> Sequence[Delivery]:
    """The delivery log of an endpoint, newest first."""
    await _own(db, actor, webhook_id)
    return await store.deliveries_of(db, webhook_id, limit=limit)


async def redeliver(*, db: Database, actor: Principal, delivery_id: str) -> Delivery:
    """Send a delivery again, now (its attempts stay in the log)."""
    actor.require(Scope.ADMIN)
    delivery = await store.get_delivery(db, delivery_id)
    webhook = await store.get(db, delivery.webhook_id) if delivery else None
    if webhook is None or webhook.city != actor.city:
        raise NotFound("Delivery", delivery_id)  # another city's is as missing as none
    return await store.requeue(db, delivery_id)
