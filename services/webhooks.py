"""Webhooks: a city's admin registers endpoints; every matching event is delivered to them as
a signed HTTP POST (Standard Webhooks), queued durably, retried, logged, and redeliverable.

Delivery is at least once: the event id is the idempotency key (`webhook-id`)."""

from __future__ import annotations

import base64
import ipaddress
import secrets
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from services import limits
from services.clock import now
from services.errors import InvalidInput, NotFound
from services.models import Delivery, EventFilter, Webhook
from services.principal import Principal, Scope
from services.store import webhooks as store
from services.store.database import Database

MAX_WEBHOOKS_PER_CITY = 20


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def check_target(url: str, *, production: bool) -> str:
    """HTTPS only in production, and never a private, loopback or link-local address (SSRF);
    development also allows http and loopback, for receivers on the same machine."""
    url = limits.text("url", url, max_length=2000)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username:
        raise InvalidInput("url", "must be an http(s) URL without credentials")
    if production:
        if parts.scheme != "https":
            raise InvalidInput("url", "must use https")
        if not public_host(parts.hostname):
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
) -> Webhook:
    """Register an endpoint of the caller's city (scope: admin)."""
    actor.require(Scope.ADMIN)
    target = check_target(url, production=production)
    if await store.count_of_city(db, actor.city) >= MAX_WEBHOOKS_PER_CITY:
        raise InvalidInput("url", f"a city may have at most {MAX_WEBHOOKS_PER_CITY} webhooks")
    webhook = Webhook(
        id="", city=actor.city, url=target, event_filter=event_filter.checked(),
        description=limits.optional_text("description", description,
                                         max_length=limits.SHORT_TEXT_MAX),
        secret=new_secret(), created_at=now(),
    )  # fmt: skip
    return await store.insert(db, webhook)


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
    delivery = await store.get_delivery(db, delivery_id)
    if delivery is None:
        raise NotFound("Delivery", delivery_id)
    await _own(db, actor, delivery.webhook_id)
    return await store.requeue(db, delivery_id)
