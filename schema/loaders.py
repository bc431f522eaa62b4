"""Per-request DataLoaders: every relation field is one batched query per level."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from strawberry.dataloader import DataLoader

from services import cities, comments, problems, solutions
from services.models import City, Comment, Person, Problem, Solution
from services.pages import Page, PageRequest
from services.principal import Principal
from services.store.database import Database
from services.store.grouped import ChildPages

T = TypeVar("T")

# (parent id, first, after): pages of the same size and cursor share one query.
ChildKey = tuple[str, int | None, str | None]


@dataclass(frozen=True, slots=True)
class _ChildLoader(Generic[T]):
    """Loads a page of children per parent, one service call per (first, after) group."""

    fetch: Callable[[Sequence[str], PageRequest], Awaitable[ChildPages[T]]]

    async def __call__(self, keys: Sequence[ChildKey]) -> list[Page[T]]:
        groups: dict[tuple[int | None, str | None], list[str]] = defaultdict(list)
        for parent, first, after in keys:
            groups[(first, after)].append(parent)
        results: dict[ChildKey, Page[T]] = {}
        for (first, after), parents in groups.items():
            pages = await self.fetch(parents, PageRequest(first=first, after=after))
            for parent in parents:
                results[(parent, first, after)] = pages.page(parent, after=after)
        return [results[key] for key in keys]


@dataclass(slots=True)
class Loaders:
    """Built per request: a module-global loader would serve stale, cross-user data."""

    db: Database
    actor: Callable[[], Principal]
    city_by_slug: DataLoader[str, City | None] = field(init=False)
    person_by_id: DataLoader[str, Person | None] = field(init=False)
    problem_by_id: DataLoader[str, Problem | None] = field(init=False)
    solution_by_id: DataLoader[str, Solution | None] = field(init=False)
    comment_by_id: DataLoader[str, Comment | None] = field(init=False)
    solutions_by_problem: DataLoader[ChildKey, Page[Solution]] = field(init=False)
    adaptations_by_solution: DataLoader[ChildKey, Page[Solution]] = field(init=False)
    comments_by_subject: DataLoader[ChildKey, Page[Comment]] = field(init=False)
    replies_by_comment: DataLoader[ChildKey, Page[Comment]] = field(init=False)

    def __post_init__(self) -> None:
        db, actor = self.db, self.actor

        async def cities_by_slugs(slugs: Sequence[str]) -> list[City | None]:
            return await cities.by_slugs(db=db, actor=actor(), slugs=slugs)

        async def people_by_ids(ids: Sequence[str]) -> list[Person | None]:
            return await cities.people_by_ids(db=db, actor=actor(), ids=ids)

        async def problems_by_ids(ids: Sequence[str]) -> list[Problem | None]:
            return await problems.by_ids(db=db, actor=actor(), ids=ids)

        async def solutions_by_ids(ids: Sequence[str]) -> list[Solution | None]:
            return await solutions.by_ids(db=db, actor=actor(), ids=ids)

        async def comments_by_ids(ids: Sequence[str]) -> list[Comment | None]:
            return await comments.by_ids(db=db, actor=actor(), ids=ids)

        async def solutions_of(ids: Sequence[str], page: PageRequest) -> ChildPages[Solution]:
            return await problems.solutions_of(db=db, actor=actor(), problem_ids=ids, request=page)

        async def adaptations_of(ids: Sequence[str], page: PageRequest) -> ChildPages[Solution]:
            return await solutions.adaptations_of(
                db=db, actor=actor(), solution_ids=ids, request=page
            )

        async def threads_of(ids: Sequence[str], page: PageRequest) -> ChildPages[Comment]:
            return await comments.threads_of(db=db, actor=actor(), subject_ids=ids, request=page)

        async def replies_of(ids: Sequence[str], page: PageRequest) -> ChildPages[Comment]:
            return await comments.replies_of(db=db, actor=actor(), comment_ids=ids, request=page)

        self.city_by_slug = DataLoader(load_fn=cities_by_slugs)
        self.person_by_id = DataLoader(load_fn=people_by_ids)
        self.problem_by_id = DataLoader(load_fn=problems_by_ids)
        self.solution_by_id = DataLoader(load_fn=solutions_by_ids)
        self.comment_by_id = DataLoader(load_fn=comments_by_ids)
        self.solutions_by_problem = DataLoader(load_fn=_ChildLoader(solutions_of))
        self.adaptations_by_solution = DataLoader(load_fn=_ChildLoader(adaptations_of))
        self.comments_by_subject = DataLoader(load_fn=_ChildLoader(threads_of))
        self.replies_by_comment = DataLoader(load_fn=_ChildLoader(replies_of))
