"""Ranked search: its filter, the `SearchResult` union, edges with score and highlights."""

from __future__ import annotations

import asyncio
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from cityexchange.schema.comments import Comment
from cityexchange.schema.context import Info
from cityexchange.schema.languages import Language
from cityexchange.schema.problems import Problem
from cityexchange.schema.relay import PageInfo
from cityexchange.schema.solutions import Solution
from cityexchange.schema.taxonomy import Hazard, ProblemStatus, Sector, SolutionStatus, Urgency
from cityexchange.services import models, search
from cityexchange.services.pages import PageRequest

SearchResult = Annotated[Problem | Solution | Comment, strawberry.union("SearchResult")]
Found = models.Problem | models.Solution | models.Comment


@strawberry.enum
class SearchKind(Enum):
    PROBLEM = "Problem"
    SOLUTION = "Solution"
    COMMENT = "Comment"


@strawberry.input(
    description="Values within a field are alternatives; fields combine (AND). Statuses and "
    "urgency restrict only the kinds that have them; comments match hazards and sectors "
    "through the problem or solution they discuss."
)
class SearchFilter:
    kinds: list[SearchKind] | None = None
    cities: list[str] | None = strawberry.field(
        default=None, description="City slugs; a comment's city is its author's."
    )
    hazards: list[Hazard] | None = None
    sectors: list[Sector] | None = None
    languages: list[Language] | None = strawberry.field(
        default=None, description="The languages of the texts to find (and to read the query in)."
    )
    problem_status: list[ProblemStatus] | None = None
    solution_status: list[SolutionStatus] | None = None
    urgency: list[Urgency] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def filter_of(filter: SearchFilter | None) -> search.SearchFilter:
    if filter is None:
        return search.SearchFilter()
    return search.SearchFilter(
        kinds=tuple(k.value for k in filter.kinds or ()),
        cities=tuple(filter.cities or ()),
        hazards=tuple(filter.hazards or ()),
        sectors=tuple(filter.sectors or ()),
        languages=tuple(filter.languages or ()),
        problem_statuses=tuple(filter.problem_status or ()),
        solution_statuses=tuple(filter.solution_status or ()),
        urgencies=tuple(filter.urgency or ()),
        created_after=filter.created_after,
        created_before=filter.created_before,
    )


@strawberry.type(description="Where a result uses the query's words.")
class Highlight:
    field: str = strawberry.field(
        description="title, summary, body, lessons, outcomes or tags (a comment: body)."
    )
    snippet: str = strawberry.field(
        description="HTML: the text escaped, the matched words in <mark>...</mark>."
    )


def _document(found: Found) -> search.SearchDocument:
    if isinstance(found, models.Problem):
        return search.search_document_of_problem(found)
    if isinstance(found, models.Solution):
        return search.search_document_of_solution(found)
    return search.search_document_of_comment(found)


def _node(found: Found) -> Problem | Solution | Comment:
    if isinstance(found, models.Problem):
        return Problem.from_domain(found)
    if isinstance(found, models.Solution):
        return Solution.from_domain(found)
    return Comment.from_domain(found)


@strawberry.type
class SearchEdge:
    node: SearchResult
    cursor: str
    score: float = strawberry.field(description="BM25F relevance; higher is better.")
    hit: strawberry.Private[search.SearchHit]
    found: strawberry.Private[Found]

    @strawberry.field(description="Up to three fields that use the query's words.")
    def highlights(self) -> list[Highlight]:
        return [
            Highlight(field=h.field, snippet=h.snippet)
            for h in search.highlights(_document(self.found), self.hit.terms, self.hit.fields)
        ]


@strawberry.type
class SearchConnection:
    edges: list[SearchEdge]
    page_info: PageInfo
    total: strawberry.Private[int]

    @strawberry.field(description="Ranked results reachable by paging (at most 1,000).")
    def total_count(self) -> int:
        return self.total


async def run_search(
    info: Info, query: str, filter: SearchFilter | None, first: int | None, after: str | None
) -> SearchConnection:
    """The search, its nodes loaded per kind through the request's loaders (one batch each:
    the same reads, and rules, as every other way to a node)."""
    ctx = info.context
    page = await search.search(
        db=ctx.db,
        actor=ctx.actor(),
        query=query,
        filter=filter_of(filter),
        request=PageRequest(first=first, after=after),
    )
    loaders = ctx.loaders
    hits = page.items
    problems, solutions, comments = await asyncio.gather(
        loaders.problem_by_id.load_many([h.id for h in hits if h.kind == "Problem"]),
        loaders.solution_by_id.load_many([h.id for h in hits if h.kind == "Solution"]),
        loaders.comment_by_id.load_many([h.id for h in hits if h.kind == "Comment"]),
    )
    found: dict[tuple[str, str], Found] = {
        **{("Problem", p.id): p for p in problems if p is not None},
        **{("Solution", s.id): s for s in solutions if s is not None},
        **{
            ("Comment", c.id): c
            for c in comments
            if c is not None and c.hidden is None and c.deleted_at is None
        },
    }
    edges = [
        SearchEdge(node=_node(f), cursor=cursor, score=hit.score, hit=hit, found=f)
        for hit, cursor in zip(hits, page.cursors, strict=True)
        if (f := found.get((hit.kind, hit.id))) is not None
    ]
    return SearchConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        total=await page.total_count(),
    )
