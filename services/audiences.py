"""A document's audience from its visibility and team, checked against the member cities.

The one place that turns what a city asked for (services/visibility.Visibility) into the keys
stored on the document: publishing, changing visibility, changing the team and an embargo
ending all call `resolve`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from pymongo.asynchronous.client_session import AsyncClientSession

from cityexchange.services import limits
from cityexchange.services.errors import InvalidInput, NotFound
from cityexchange.services.principal import Principal
from cityexchange.services.store import audiences as audience_store
from cityexchange.services.store import cities as city_store
from cityexchange.services.store.database import Database
from cityexchange.services.visibility import (
    TeamMember,
    Viewer,
    Visibility,
    VisibilityLevel,
    audience,
)

FIELD = "visibility"


def checked(visibility: Visibility, *, now: datetime) -> Visibility:
    """The same visibility with its lists bounded and its parts consistent with its level."""
    cities = tuple(dict.fromkeys(limits.items((FIELD, "cities"), visibility.cities)))
    networks = tuple(
        dict.fromkeys(
            limits.text((FIELD, "networks"), n, max_length=limits.SHORT_TEXT_MAX)
            for n in limits.items((FIELD, "networks"), visibility.networks)
        )
    )
    level = visibility.level
    embargo = visibility.embargo
    if embargo is not None and level is not VisibilityLevel.DRAFT:
        raise InvalidInput((FIELD, "embargoUntil"), "only a DRAFT has an embargo")
    # An embargoed draft names ahead of time the cities and networks it will be shared with.
    sharing = embargo.level if embargo is not None else level
    if sharing is VisibilityLevel.SHARED and not (cities or networks):
        raise InvalidInput((FIELD, "cities"), "SHARED names at least one city or network")
    if sharing is not VisibilityLevel.SHARED and (cities or networks):
        raise InvalidInput((FIELD, "level"), "only SHARED names cities or networks")
    if embargo is not None:
        if embargo.level is VisibilityLevel.DRAFT:
            raise InvalidInput((FIELD, "publishAs"), "an embargo publishes wider than DRAFT")
        until = embargo.until if embargo.until.tzinfo else embargo.until.replace(tzinfo=UTC)
        limits.moment((FIELD, "embargoUntil"), until)
        if until <= now:
            raise InvalidInput((FIELD, "embargoUntil"), "must be in the future")
        embargo = replace(embargo, until=until)
    return Visibility(level=level, cities=cities, networks=networks, embargo=embargo)


async def resolve(
    db: Database,
    *,
    owner: str,
    visibility: Visibility,
    team: Sequence[TeamMember],
) -> tuple[str, ...]:
    """The audience of `owner`'s document; InvalidInput for an unknown city or network (checked
    whatever the level: an embargoed draft's are checked when it is written, not when it
    publishes)."""
    if visibility.cities:
        found = await city_store.cities_by_slugs(db, visibility.cities)
        unknown = [slug for slug, city in zip(visibility.cities, found, strict=True) if not city]
        if unknown:
            raise InvalidInput((FIELD, "cities"), f"no member city {unknown[0]!r}")
    network_cities: list[str] = []
    if visibility.networks:
        members = await city_store.members_of_networks(db, visibility.networks)
        for network in visibility.networks:
            if network not in members:
                raise InvalidInput((FIELD, "networks"), f"no member city is in network {network!r}")
            network_cities += members[network]
    return audience(owner=owner, visibility=visibility, team=team, network_cities=network_cities)


async def copied(
    db: Database, actor: Principal, kind: str, id: str, *, session: AsyncClientSession
) -> tuple[str, ...]:
    """The audience a child of the problem or solution `id` (a comment, an adoption, an
    endorsement, an outcome report) copies, read in the caller's transaction so that a
    change of it committed meanwhile retries the caller; NotFound when the subject is gone
    or the caller may no longer see it."""
    audience = await audience_store.claimed(db, kind, id, session=session)
    if audience is None or not Viewer.of(actor).may_read(audience):
        raise NotFound(kind, id)
    return audience
