"""The audience a visibility resolves to, against the member cities in the database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from cityexchange.services import audiences
from cityexchange.services.errors import InvalidInput
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.visibility import (
    Embargo,
    TeamMember,
    TeamRole,
    Viewer,
    Visibility,
    VisibilityLevel,
)
from tests.conftest import add_city

NOW = datetime(2026, 12, 2, tzinfo=UTC)
LEAD = TeamMember("Person", "p1", TeamRole.LEAD, NOW, "p1", city="rotterdam")
SHARED = VisibilityLevel.SHARED


async def _cities(db: Database) -> None:
    for slug, networks in (("rotterdam", ("C40",)), ("lagos", ("C40", "R4")), ("pune", ())):
        await add_city(db, slug)
        await db.cities.update_one({"_id": slug}, {"$set": {"networks": list(networks)}})


async def test_each_level_resolves_to_its_keys(db: Database) -> None:
    await _cities(db)

    async def keys(visibility: Visibility) -> tuple[str, ...]:
        return await audiences.resolve(db, owner="rotterdam", visibility=visibility, team=[LEAD])

    assert await keys(Visibility()) == ("*",)
    assert await keys(Visibility(VisibilityLevel.DRAFT)) == ("a:rotterdam", "p:rotterdam:p1")
    city = ("a:rotterdam", "c:rotterdam", "p:rotterdam:p1")
    assert await keys(Visibility(VisibilityLevel.CITY)) == city
    shared = Visibility(SHARED, cities=("pune",), networks=("R4",))
    assert await keys(shared) == (
        "a:rotterdam",
        "c:lagos",
        "c:pune",
        "c:rotterdam",
        "p:rotterdam:p1",
    )


async def test_unknown_cities_and_networks_are_refused(db: Database) -> None:
    await _cities(db)
    for visibility, field in (
        (Visibility(SHARED, cities=("atlantis",)), ("visibility", "cities")),
        (Visibility(SHARED, networks=("C40", "Nowhere")), ("visibility", "networks")),
    ):
        with pytest.raises(InvalidInput) as refused:
            await audiences.resolve(db, owner="rotterdam", visibility=visibility, team=[])
        assert refused.value.field == field


def test_checked_keeps_parts_consistent_with_the_level() -> None:
    later = Embargo(NOW + timedelta(days=1), SHARED)
    draft, city = VisibilityLevel.DRAFT, VisibilityLevel.CITY
    for visibility, field in (
        (Visibility(SHARED), "cities"),
        (Visibility(city, cities=("lagos",)), "level"),
        (Visibility(city, embargo=later), "embargoUntil"),
        (Visibility(draft, ("lagos",), embargo=Embargo(NOW, SHARED)), "embargoUntil"),
        (Visibility(draft, embargo=dataclasses.replace(later, level=draft)), "publishAs"),
    ):
        with pytest.raises(InvalidInput) as refused:
            audiences.checked(visibility, now=NOW)
        assert refused.value.field == ("visibility", field)
    embargoed = Visibility(VisibilityLevel.DRAFT, cities=("lagos", "lagos"), embargo=later)
    assert audiences.checked(embargoed, now=NOW).cities == ("lagos",)


def test_a_viewer_reads_what_shares_a_key() -> None:
    person = Principal(city="lagos", subject="p2", scopes=frozenset({"read"}), client_id="x")
    viewer = Viewer.of(person)
    assert viewer.may_read(("*",))
    assert viewer.may_read(("c:lagos", "a:rotterdam"))
    assert not viewer.may_read(("a:lagos",))  # no admin scope
    assert not viewer.may_read(("*",), withheld=("c:lagos",))
