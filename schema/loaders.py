"""Per-request DataLoaders: every relation field is one batched query per level."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar, cast

from strawberry.dataloader import DataLoader

from cityexchange.services import (
    adoptions,
    cities,
    comments,
    endorsements,
    outcomes,
    peers,
    problems,
    solutions,
    suggestions,
)
from cityexchange.services.adoptions import AdoptionSummary, Lineage
from cityexchange.services.case_studies import SolutionCriteria
from cityexchange.services.errors import InvalidInput
from cityexchange.services.listing import ListingFilter
from cityexchange.services.models import (
    Adoption,
    City,
    Comment,
    Endorsement,
    OutcomeReport,
    Person,
    Problem,
    Solution,
)
from cityexchange.services.pages import ChildPages, Order, Page, PageRequest, SolutionOrder
from cityexchange.services.peers import Peer
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.suggestions import Suggestion

T = TypeVar("T")
E = TypeVar("E")
Q = TypeVar("Q")

# (parent id, first, after, what else shapes the list: filter and order, or None).
# Children asked for with the same page size, cursor and filter share one query.
ChildKey = tuple[str, int | None, str | None, Hashable]
Listing = tuple[ListingFilter, Order]
SolutionListing = tuple[ListingFilter, SolutionCriteria, SolutionOrder]


@dataclass(frozen=True, slots=True)
class _ChildLoader(Generic[T, E]):
    """Loads a page of children per parent, one service call per (first, after, extra)."""

    fetch: Callable[[Sequence[str], PageRequest, E], Awaitable[ChildPages[T]]]

    async def __call__(self, keys: Sequence[ChildKey]) -> list[Page[T]]:
        groups: dict[tuple[int | None, str | None, Hashable], list[str]] = defaultdict(list)
        for parent, first, after, extra in keys:
            groups[(first, after, extra)].append(parent)
        results: dict[ChildKey, Page[T]] = {}
        for (first, after, extra), parents in groups.items():
            request = PageRequest(first=first, after=after)
            pages = await self.fetch(parents, request, cast(E, extra))
            for parent in parents:
                results[(parent, first, after, extra)] = pages.page(parent, after=after)
        return [results[key] for key in keys]


def _checked(keys: Sequence[T], check: Callable[[T], Q]) -> tuple[list[Q], list[Q | InvalidInput]]:
    """Each key's checked query, or the InvalidInput that fails its own field only; and the
    queries that passed, to run together."""
    checked: list[Q | InvalidInput] = []
    for key in keys:
        try:
            checked.append(check(key))
        except InvalidInput as refused:
            checked.append(refused)
    return [c for c in checked if not isinstance(c, InvalidInput)], checked


def _aligned(checked: Sequence[Q | InvalidInput], results: Sequence[T]) -> list[T | InvalidInput]:
    """The results of the queries that passed, back in their keys' places among the refusals."""
    found = iter(results)
    return [c if isinstance(c, InvalidInput) else next(found) for c in checked]


class PeersKey(NamedTuple):
    city: str
    first: int | None
    after: str | None


@dataclass(frozen=True, slots=True)
class PeersByCityLoader:
    """`City.peers` of every city of a level from one walk over the member cities."""

    db: Database
    actor: Callable[[], Principal]

    async def __call__(self, keys: Sequence[PeersKey]) -> list[Page[Peer] | InvalidInput]:
        def check(key: PeersKey) -> peers.PeerPage:
            return peers.peer_page(key.city, PageRequest(first=key.first, after=key.after))

        pages, checked = _checked(keys, check)
        ranked = await peers.peers_of(db=self.db, actor=self.actor(), pages=pages)
        return _aligned(checked, ranked)


class SuggestionsKey(NamedTuple):
    source: Problem | Solution  # the parent whose suggestions are asked for
    first: int | None


def suggestions_cache_key(key: SuggestionsKey) -> tuple[str, str, int | None]:
    """What makes two keys the same list: the parent's id, not the whole object (a hash of
    a problem would read its body every time)."""
    return type(key.source).__name__, key.source.id, key.first


def _wanted(key: SuggestionsKey) -> suggestions.Wanted:
    return suggestions.Wanted.of(key.source, key.first)


@dataclass(frozen=True, slots=True)
class SolutionSuggestionsLoader:
    """`Problem.suggestedSolutions` and `Solution.similarSolutions` of every parent of a
    level: one `related` search each, the candidates, cities and track records read once."""

    db: Database
    actor: Callable[[], Principal]

    async def __call__(
        self, keys: Sequence[SuggestionsKey]
    ) -> list[list[Suggestion[Solution]] | InvalidInput]:
        wanted, checked = _checked(keys, _wanted)
        found = await suggestions.suggested_solutions(db=self.db, actor=self.actor(), wanted=wanted)
        return _aligned(checked, found)


@dataclass(frozen=True, slots=True)
class SimilarProblemsLoader:
    """`Problem.similarProblems` of every parent of a level: one `related` search each, the
    candidates and cities read once."""

    db: Database
    actor: Callable[[], Principal]

    async def __call__(
        self, keys: Sequence[SuggestionsKey]
    ) -> list[list[Suggestion[Problem]] | InvalidInput]:
        wanted, checked = _checked(keys, _wanted)
        found = await suggestions.similar_problems(db=self.db, actor=self.actor(), wanted=wanted)
        return _aligned(checked, found)


@dataclass(slots=True)
class Loaders:
    """Built per operation, and afresh for each event of a subscription (Context): a
    module-global loader would serve stale, cross-user data, and one kept across events
    stale data."""

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
    problems_by_city: DataLoader[ChildKey, Page[Problem]] = field(init=False)
    solutions_by_city: DataLoader[ChildKey, Page[Solution]] = field(init=False)
    people_by_city: DataLoader[ChildKey, Page[Person]] = field(init=False)
    adoption_by_id: DataLoader[str, Adoption | None] = field(init=False)
    adoptions_by_solution: DataLoader[ChildKey, Page[Adoption]] = field(init=False)
    outcome_reports_by_subject: DataLoader[ChildKey, Page[OutcomeReport]] = field(init=False)
    endorsements_by_solution: DataLoader[ChildKey, Page[Endorsement]] = field(init=False)
    adoption_summary_by_solution: DataLoader[str, AdoptionSummary] = field(init=False)
    lineage_by_solution: DataLoader[tuple[str, int], Lineage | None] = field(init=False)
    peers_by_city: DataLoader[PeersKey, Page[Peer]] = field(init=False)
    solution_suggestions: DataLoader[SuggestionsKey, list[Suggestion[Solution]]] = field(init=False)
    similar_problems: DataLoader[SuggestionsKey, list[Suggestion[Problem]]] = field(init=False)

    def __post_init__(self) -> None:
        db, actor = self.db, self.actor
        self._adoption_loaders()
        self._discovery_loaders()

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

        async def solutions_of(
            ids: Sequence[str], page: PageRequest, _: None
        ) -> ChildPages[Solution]:
            return await problems.solutions_of(db=db, actor=actor(), problem_ids=ids, request=page)

        async def adaptations_of(
            ids: Sequence[str], page: PageRequest, _: None
        ) -> ChildPages[Solution]:
            return await solutions.adaptations_of(
                db=db, actor=actor(), solution_ids=ids, request=page
            )

        async def threads_of(ids: Sequence[str], page: PageRequest, _: None) -> ChildPages[Comment]:
            return await comments.threads_of(db=db, actor=actor(), subject_ids=ids, request=page)

        async def replies_of(ids: Sequence[str], page: PageRequest, _: None) -> ChildPages[Comment]:
            return await comments.replies_of(db=db, actor=actor(), comment_ids=ids, request=page)

        async def problems_of(
            slugs: Sequence[str], page: PageRequest, listing: Listing
        ) -> ChildPages[Problem]:
            return await problems.of_cities(
                db=db,
                actor=actor(),
                cities=slugs,
                listing=listing[0],
                order=listing[1],
                request=page,
            )

        async def solutions_of_cities(
            slugs: Sequence[str], page: PageRequest, listing: SolutionListing
        ) -> ChildPages[Solution]:
            return await solutions.of_cities(
                db=db,
                actor=actor(),
                cities=slugs,
                listing=listing[0],
                criteria=listing[1],
                order=listing[2],
                request=page,
            )

        async def people_of(slugs: Sequence[str], page: PageRequest, _: None) -> ChildPages[Person]:
            return await cities.people_of(db=db, actor=actor(), cities=slugs, request=page)

        self.problems_by_city = DataLoader(load_fn=_ChildLoader(problems_of))
        self.solutions_by_city = DataLoader(load_fn=_ChildLoader(solutions_of_cities))
        self.people_by_city = DataLoader(load_fn=_ChildLoader(people_of))
        self.city_by_slug = DataLoader(load_fn=cities_by_slugs)
        self.person_by_id = DataLoader(load_fn=people_by_ids)
        self.problem_by_id = DataLoader(load_fn=problems_by_ids)
        self.solution_by_id = DataLoader(load_fn=solutions_by_ids)
        self.comment_by_id = DataLoader(load_fn=comments_by_ids)
        self.solutions_by_problem = DataLoader(load_fn=_ChildLoader(solutions_of))
        self.adaptations_by_solution = DataLoader(load_fn=_ChildLoader(adaptations_of))
        self.comments_by_subject = DataLoader(load_fn=_ChildLoader(threads_of))
        self.replies_by_comment = DataLoader(load_fn=_ChildLoader(replies_of))

    def _adoption_loaders(self) -> None:
        db, actor = self.db, self.actor

        async def adoptions_by_ids(ids: Sequence[str]) -> list[Adoption | None]:
            return await adoptions.by_ids(db=db, actor=actor(), ids=ids)

        async def adoptions_of(
            ids: Sequence[str], page: PageRequest, _: None
        ) -> ChildPages[Adoption]:
            return await adoptions.adoptions_of(
                db=db, actor=actor(), solution_ids=ids, request=page
            )

        async def series_of(
            ids: Sequence[str], page: PageRequest, _: None
        ) -> ChildPages[OutcomeReport]:
            return await outcomes.series_of(db=db, actor=actor(), subject_ids=ids, request=page)

        async def endorsements_of(
            ids: Sequence[str], page: PageRequest, _: None
        ) -> ChildPages[Endorsement]:
            return await endorsements.endorsements_of(
                db=db, actor=actor(), solution_ids=ids, request=page
            )

        async def summaries(ids: Sequence[str]) -> list[AdoptionSummary]:
            return await adoptions.summaries(db=db, actor=actor(), solution_ids=ids)

        async def lineages(
            keys: Sequence[tuple[str, int]],
        ) -> list[Lineage | InvalidInput | None]:
            # One walk per depth asked; a depth out of range fails its own fields only.
            by_depth: dict[int, list[str]] = defaultdict(list)
            for id, depth in keys:
                by_depth[depth].append(id)
            found: dict[tuple[str, int], Lineage | InvalidInput | None] = {}
            for depth, ids in by_depth.items():
                try:
                    walked = await adoptions.lineages(
                        db=db, actor=actor(), solution_ids=ids, depth=depth
                    )
                except InvalidInput as refused:
                    walked = [refused] * len(ids)
                found.update(
                    ((id, depth), lineage) for id, lineage in zip(ids, walked, strict=True)
                )
            return [found[key] for key in keys]

        self.adoption_by_id = DataLoader(load_fn=adoptions_by_ids)
        self.adoptions_by_solution = DataLoader(load_fn=_ChildLoader(adoptions_of))
        self.outcome_reports_by_subject = DataLoader(load_fn=_ChildLoader(series_of))
        self.endorsements_by_solution = DataLoader(load_fn=_ChildLoader(endorsements_of))
        self.adoption_summary_by_solution = DataLoader(load_fn=summaries)
        self.lineage_by_solution = DataLoader(load_fn=lineages)

    def _discovery_loaders(self) -> None:
        db, actor = self.db, self.actor
        self.peers_by_city = DataLoader(load_fn=PeersByCityLoader(db, actor))
        self.solution_suggestions = DataLoader(
            load_fn=SolutionSuggestionsLoader(db, actor), cache_key_fn=suggestions_cache_key
        )
        self.similar_problems = DataLoader(
            load_fn=SimilarProblemsLoader(db, actor), cache_key_fn=suggestions_cache_key
        )
