"""Who may see a problem or a solution, and everything about it: one rule for every read.

A document carries its *audience*: the keys of the viewers who may read it, computed when it
is written (and again when its visibility, team or sharing changes). A viewer carries the keys
it holds. It may read a document when the two share a key, and never otherwise. Every store
read takes the viewer's keys (services/store/visibility.py turns them into the one query
clause), so no entrypoint can read around the rule. Events carry the audience of their subject
at the time, and a withdrawal event also the keys that keep access (they are not told).

Keys:

    *                 every member city (PUBLIC)
    c:<city>          every actor of the city
    a:<city>          the city's admins (tokens with the admin scope)
    p:<city>:<subject>  one person (a token's subject, in its city's realm)
    o:<organisation>  every person and client bound to one organisation
    sys               the service itself (imports, reindexing, exports by an operator)

What each visibility level's audience is:

    DRAFT   the team (its people and organisations) and the owning city's admins
    CITY    the owning city, the team and the admins
    SHARED  CITY, plus the named cities and the cities of the named networks at the time
    PUBLIC  everyone
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cityexchange.services.principal import Principal, Scope

EVERYONE = "*"
SYSTEM = "sys"


class VisibilityLevel(StrEnum):
    DRAFT = "DRAFT"
    CITY = "CITY"
    SHARED = "SHARED"
    PUBLIC = "PUBLIC"


# Narrowest first: a change to a later level widens, to an earlier one narrows.
WIDTH = {level: rank for rank, level in enumerate(VisibilityLevel)}


@dataclass(frozen=True, slots=True)
class Embargo:
    """A draft that publishes itself: at `until`, its visibility becomes `level`."""

    until: datetime
    level: VisibilityLevel


@dataclass(frozen=True, slots=True)
class Visibility:
    """Who the owning city lets see a problem or a solution."""

    level: VisibilityLevel = VisibilityLevel.PUBLIC
    cities: tuple[str, ...] = ()  # SHARED: the named member cities
    networks: tuple[str, ...] = ()  # SHARED: the named networks (their members at the time)
    embargo: Embargo | None = None  # DRAFT only


PUBLIC = Visibility()


class TeamRole(StrEnum):
    LEAD = "LEAD"  # edits, invites and removes
    CONTRIBUTOR = "CONTRIBUTOR"  # edits
    OBSERVER = "OBSERVER"  # reads


@dataclass(frozen=True, slots=True)
class TeamMember:
    """A person (`kind` "Person", id = their subject in `city`'s realm) or an organisation
    (`kind` "Organisation", id = its id) on a team."""

    kind: str  # "Person" or "Organisation"
    id: str
    role: TeamRole
    added_at: datetime
    added_by: str  # the subject who added them
    city: str = ""  # a person's city (subjects are unique only within a realm)


def person_key(city: str, subject: str) -> str:
    return f"p:{city}:{subject}"


def organisation_key(organisation_id: str) -> str:
    return f"o:{organisation_id}"


def city_key(city: str) -> str:
    return f"c:{city}"


def admins_key(city: str) -> str:
    return f"a:{city}"


def member_key(member: TeamMember) -> str:
    if member.kind == "Organisation":
        return organisation_key(member.id)
    return person_key(member.city, member.id)


def audience(
    *,
    owner: str,
    visibility: Visibility,
    team: Iterable[TeamMember] = (),
    network_cities: Iterable[str] = (),
) -> tuple[str, ...]:
    """The keys that may read a document of `owner` with this visibility and team.

    `network_cities`: the member cities of `visibility.networks`, resolved by the caller.
    """
    if visibility.level is VisibilityLevel.PUBLIC:
        return (EVERYONE,)
    keys = [admins_key(owner), *(member_key(m) for m in team)]
    if visibility.level is not VisibilityLevel.DRAFT:
        keys.append(city_key(owner))
    if visibility.level is VisibilityLevel.SHARED:
        keys += [city_key(c) for c in visibility.cities]
        keys += [city_key(c) for c in network_cities]
    return tuple(sorted(set(keys)))


@dataclass(frozen=True, slots=True)
class Viewer:
    """The keys a caller holds; `Viewer.of(principal)` for a request's caller."""

    keys: frozenset[str] = field(default_factory=frozenset[str])

    @staticmethod
    def of(principal: Principal) -> Viewer:
        keys = {EVERYONE, city_key(principal.city)}
        if principal.personal:
            keys.add(person_key(principal.city, principal.subject))
        if principal.organisation:
            keys.add(organisation_key(principal.organisation))
        if Scope.ADMIN.value in principal.scopes:
            keys.add(admins_key(principal.city))
        return Viewer(frozenset(keys))

    @staticmethod
    def of_city(city: str) -> Viewer:
        """What any actor of `city` may see (a webhook of the city, for example)."""
        return Viewer(frozenset({EVERYONE, city_key(city)}))

    @property
    def is_system(self) -> bool:
        return SYSTEM in self.keys

    def may_read(self, audience: Sequence[str], withheld: Sequence[str] = ()) -> bool:
        """The rule itself, in memory (the store applies the same one as a query)."""
        if self.is_system:
            return True
        return not self.keys.isdisjoint(audience) and self.keys.isdisjoint(withheld)


SYSTEM_VIEWER = Viewer(frozenset({SYSTEM}))
