"""Per-operation DataLoaders of organisations and their relations: `Person.organisation`,
`City.organisations`, `Organisation.people`, `.problems` and `.solutions` are one batched
query per level.

Kept beside schema/loaders.py's `Loaders` and built the same way (Context), per operation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from strawberry.dataloader import DataLoader

from cityexchange.services import organisations, problems, solutions
from cityexchange.services.models import Organisation, Person, Problem, Solution
from cityexchange.services.pages import ChildPages, Page, PageRequest
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database

T = TypeVar("T")


class ChildrenKey(NamedTuple):
    parent: str  # a city's slug, an organisation's id
    first: int | None
    after: str | None


async def _pages(
    keys: Sequence[ChildrenKey],
    fetch: Callable[[list[str], PageRequest], Awaitable[ChildPages[T]]],
) -> list[Page[T]]:
    """One fetch per (first, after) for all the parents asking it; pages aligned to keys."""
    groups: dict[tuple[int | None, str | None], list[str]] = defaultdict(list)
    for key in keys:
        groups[(key.first, key.after)].append(key.parent)
    found: dict[ChildrenKey, Page[T]] = {}
    for (first, after), parents in groups.items():
        pages = await fetch(parents, PageRequest(first=first, after=after))
        for parent in parents:
            found[ChildrenKey(parent, first, after)] = pages.page(parent, after=after)
    return [found[key] for key in keys]


@dataclass(frozen=True, slots=True)
class OrganisationByIdLoader:
    db: Database
    actor: Callable[[], Principal]

    async def __call__(self, ids: Sequence[str]) -> list[Organisation | None]:
        return await organisations.by_ids(db=self.db, actor=self.actor(), ids=ids)


@dataclass(frozen=True, slots=True)
class OrganisationsByCityLoader:
    db: Database
    actor: Callable[[], Principal]

    async def __call__(self, keys: Sequence[ChildrenKey]) -> list[Page[Organisation]]:
        async def fetch(slugs: list[str], page: PageRequest) -> ChildPages[Organisation]:
            return await organisations.of_cities(
                db=self.db, actor=self.actor(), cities=slugs, request=page
            )

        return await _pages(keys, fetch)


@dataclass(frozen=True, slots=True)
class PeopleByOrganisationLoader:
    db: Database
    actor: Callable[[], Principal]

    async def __call__(self, keys: Sequence[ChildrenKey]) -> list[Page[Person]]:
        async def fetch(ids: list[str], page: PageRequest) -> ChildPages[Person]:
            return await organisations.people_of(
                db=self.db, actor=self.actor(), organisation_ids=ids, request=page
            )

        return await _pages(keys, fetch)


@dataclass(frozen=True, slots=True)
class ProblemsByOrganisationLoader:
    db: Database
    actor: Callable[[], Principal]

    async def __call__(self, keys: Sequence[ChildrenKey]) -> list[Page[Problem]]:
        async def fetch(ids: list[str], page: PageRequest) -> ChildPages[Problem]:
            return await problems.of_organisations(
                db=self.db, actor=self.actor(), organisation_ids=ids, request=page
            )

        return await _pages(keys, fetch)


@dataclass(frozen=True, slots=True)
class SolutionsByOrganisationLoader:
    db: Database
    actor: Callable[[], Principal]

    async def __call__(self, keys: Sequence[ChildrenKey]) -> list[Page[Solution]]:
        async def fetch(ids: list[str], page: PageRequest) -> ChildPages[Solution]:
            return await solutions.of_organisations(
                db=self.db, actor=self.actor(), organisation_ids=ids, request=page
            )

        return await _pages(keys, fetch)


@dataclass(slots=True)
class OrganisationLoaders:
    """Built per operation (Context.organisation_loaders), never shared between requests."""

    db: Database
    actor: Callable[[], Principal]
    organisation_by_id: DataLoader[str, Organisation | None] = field(init=False)
    organisations_by_city: DataLoader[ChildrenKey, Page[Organisation]] = field(init=False)
    people_by_organisation: DataLoader[ChildrenKey, Page[Person]] = field(init=False)
    problems_by_organisation: DataLoader[ChildrenKey, Page[Problem]] = field(init=False)
    solutions_by_organisation: DataLoader[ChildrenKey, Page[Solution]] = field(init=False)

    def __post_init__(self) -> None:
        db, actor = self.db, self.actor
        self.organisation_by_id = DataLoader(load_fn=OrganisationByIdLoader(db, actor))
        self.organisations_by_city = DataLoader(load_fn=OrganisationsByCityLoader(db, actor))
        self.people_by_organisation = DataLoader(load_fn=PeopleByOrganisationLoader(db, actor))
        self.problems_by_organisation = DataLoader(load_fn=ProblemsByOrganisationLoader(db, actor))
        self.solutions_by_organisation = DataLoader(
            load_fn=SolutionsByOrganisationLoader(db, actor)
        )
