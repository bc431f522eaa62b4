"""Suggestions as GraphQL: `Problem.similarProblems`, `Problem.suggestedSolutions` and
`Solution.similarSolutions`, ranked edges with a score, its factors and the reasons.

The problem and solution types are imported lazily: their modules attach these resolvers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from cityexchange.schema.context import Info
from cityexchange.schema.loaders import SuggestionsKey
from cityexchange.schema.peers import MatchReason
from cityexchange.services import suggestions
from cityexchange.services.models import Solution as DomainSolution

if TYPE_CHECKING:
    from cityexchange.schema.problems import Problem
    from cityexchange.schema.solutions import Solution

_PROBLEM = strawberry.lazy("cityexchange.schema.problems")
_SOLUTION = strawberry.lazy("cityexchange.schema.solutions")
FIRST = f"At most {suggestions.MAX_SUGGESTIONS}; {suggestions.DEFAULT_SUGGESTIONS} if not given."


@strawberry.type(description="The four factors of a suggestion's score, each in (0, 1].")
class SuggestionFactors:
    relevance: float = strawberry.field(description="How alike in words and taxonomy.")
    fit: float = strawberry.field(description="How alike the two cities are (peer score).")
    evidence: float = strawberry.field(description="How well it is shown to work.")
    freshness: float = strawberry.field(description="How recent the work is.")

    @classmethod
    def from_domain(cls, factors: suggestions.Factors) -> SuggestionFactors:
        return cls(
            relevance=factors.relevance,
            fit=factors.fit,
            evidence=factors.evidence,
            freshness=factors.freshness,
        )


@strawberry.type(description="A suggested solution: score = the product of its factors.")
class SolutionSuggestionEdge:
    node: Annotated[Solution, _SOLUTION]
    score: float
    factors: SuggestionFactors
    reasons: list[MatchReason] = strawberry.field(
        description="Relevance (matched terms), then fit, evidence and freshness."
    )


@strawberry.type(description="Suggested solutions, best first.")
class SolutionSuggestionConnection:
    edges: list[SolutionSuggestionEdge]


@strawberry.type(description="A similar problem: score = relevance x fit of its city.")
class ProblemSuggestionEdge:
    node: Annotated[Problem, _PROBLEM]
    score: float
    factors: SuggestionFactors
    reasons: list[MatchReason] = strawberry.field(description="Relevance, then fit.")


@strawberry.type(description="Similar problems, best first.")
class ProblemSuggestionConnection:
    edges: list[ProblemSuggestionEdge]


def _solutions(found: list[suggestions.Suggestion[DomainSolution]]) -> SolutionSuggestionConnection:
    from cityexchange.schema.solutions import Solution

    return SolutionSuggestionConnection(
        edges=[
            SolutionSuggestionEdge(
                node=Solution.from_domain(s.item),
                score=s.score,
                factors=SuggestionFactors.from_domain(s.factors),
                reasons=[MatchReason.from_domain(r) for r in s.reasons],
            )
            for s in found
        ]
    )


async def suggested_solutions(
    root: Problem,
    info: Info,
    first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
) -> SolutionSuggestionConnection:
    """Other cities' solutions to this problem: relevance x city fit x evidence x freshness."""
    key = SuggestionsKey(root.domain, first)
    return _solutions(await info.context.loaders.solution_suggestions.load(key))


async def similar_solutions(
    root: Solution,
    info: Info,
    first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
) -> SolutionSuggestionConnection:
    """Other cities' solutions like this one, ranked as suggested solutions are."""
    key = SuggestionsKey(root.domain, first)
    return _solutions(await info.context.loaders.solution_suggestions.load(key))


async def similar_problems(
    root: Problem,
    info: Info,
    first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
) -> ProblemSuggestionConnection:
    """Problems of other cities like this one: relevance x fit of their city."""
    from cityexchange.schema.problems import Problem

    found = await info.context.loaders.similar_problems.load(SuggestionsKey(root.domain, first))
    return ProblemSuggestionConnection(
        edges=[
            ProblemSuggestionEdge(
                node=Problem.from_domain(s.item),
                score=s.score,
                factors=SuggestionFactors.from_domain(s.factors),
                reasons=[MatchReason.from_domain(r) for r in s.reasons],
            )
            for s in found
        ]
    )


# The fields the problem and solution types attach, one line each.
SIMILAR_PROBLEMS = strawberry.field(
    resolver=similar_problems,
    description="Problems of other cities like this one: relevance x fit of their city.",
)
SUGGESTED_SOLUTIONS = strawberry.field(
    resolver=suggested_solutions,
    description="Other cities' solutions to this problem, best first: relevance x fit of "
    "the implementing city x evidence x freshness, with the reasons.",
)
SIMILAR_SOLUTIONS = strawberry.field(
    resolver=similar_solutions,
    description="Other cities' solutions like this one, ranked as suggested solutions are.",
)
