"""Rebuild the search index from the collections (for databases older than the index, or
after a change to the ranking model), in bounded batches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from cityexchange.services import ranking, search
from cityexchange.services.errors import InvalidInput
from cityexchange.services.models import Comment, Problem, Solution
from cityexchange.services.store import comments as comment_store
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store import search_index
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store.database import Database
from cityexchange.services.text import Language

BATCH_MAX = 1_000


@dataclass(frozen=True, slots=True)
class _Kind:
    name: str
    batch: Callable[..., Awaitable[list[tuple[Any, bool]]]]
    set_languages: Callable[..., Awaitable[None]]
    document: Callable[[Any], ranking.SearchDocument]
    texts: Callable[[Any], tuple[str | None, ...]]
    indexed: Callable[[Any], bool] = lambda _: True


def _problem_texts(p: Problem) -> tuple[str | None, ...]:
    return (p.title, p.summary, p.body)


def _solution_texts(s: Solution) -> tuple[str | None, ...]:
    return (s.title, s.summary, s.details.body)


def _shown(c: Comment) -> bool:
    return c.hidden is None and c.deleted_at is None


_KINDS: tuple[_Kind, ...] = (
    _Kind(
        "Problem",
        problem_store.problems_for_reindex,
        problem_store.set_problem_languages,
        ranking.search_document_of_problem,
        _problem_texts,
    ),
    _Kind(
        "Solution",
        solution_store.solutions_for_reindex,
        solution_store.set_solution_languages,
        ranking.search_document_of_solution,
        _solution_texts,
    ),
    _Kind(
        "Comment",
        comment_store.comments_for_reindex,
        comment_store.set_comment_languages,
        ranking.search_document_of_comment,
        lambda c: (c.body,),
        indexed=_shown,  # hidden and deleted comments are never found
    ),
)


async def reindex(
    *,
    db: Database,
    batch_size: int = 100,
    progress: Callable[[str, int], None] = lambda kind, done: None,
) -> dict[str, int]:
    """Empty the index and index every problem, solution and shown comment again, one
    transaction per batch; a document without a language gets its detected one stored.
    Returns the documents read per kind. Searches during the rebuild see a partial index."""
    if not 1 <= batch_size <= BATCH_MAX:
        raise InvalidInput("batchSize", f"must be between 1 and {BATCH_MAX}")
    await search_index.clear(db)
    return {kind.name: await _rebuild(db, kind, batch_size, progress) for kind in _KINDS}


async def _rebuild(
    db: Database, kind: _Kind, batch_size: int, progress: Callable[[str, int], None]
) -> int:
    done = 0
    after: str | None = None
    while batch := await kind.batch(db, after=after, limit=batch_size):
        detected: dict[str, Language] = {}
        models: list[Any] = []
        for model, language_stored in batch:
            if not language_stored:
                detected[model.id] = await search.language_of(None, *kind.texts(model))
                model = replace(model, language=detected[model.id])
            models.append(model)
        analyses = [ranking.analyse(kind.document(m)) for m in models if kind.indexed(m)]
        await db.in_transaction(_writer(db, kind, detected, analyses))
        after = batch[-1][0].id
        done += len(batch)
        progress(kind.name, done)
    return done


def _writer(
    db: Database,
    kind: _Kind,
    detected: Mapping[str, Language],
    analyses: list[ranking.Analysis],
) -> Callable[[Any], Awaitable[None]]:
    async def write(session: Any) -> None:
        await kind.set_languages(db, detected, session=session)
        await search_index.replace(db, analyses, (), session=session)

    return write
