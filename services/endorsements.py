"""Use cases for endorsement: another city vouches for a solution, once per city.

Endorsing again revises the city's endorsement (USEFUL can become VALIDATED once the city
checked that it works, and back) instead of counting twice; the same kind and note again
changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from cityexchange.services import audiences, limits
from cityexchange.services.adoptions import other_citys_solution, solution_event
from cityexchange.services.clock import now
from cityexchange.services.models import Endorsement, EndorsementKind, EventType
from cityexchange.services.pages import ChildPages, PageRequest
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import endorsements as store
from cityexchange.services.store import events as event_store
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store.database import Database
from cityexchange.services.visibility import Viewer


async def endorse(
    *,
    db: Database,
    actor: Principal,
    solution_id: str,
    kind: EndorsementKind,
    note: str | None = None,
) -> Endorsement:
    """The caller's city endorses another city's solution, or revises its endorsement."""
    actor.require(Scope.PUBLISH)
    why = limits.optional_text("note", note, max_length=limits.NOTE_MAX)
    solution = await other_citys_solution(db, actor, solution_id)
    moment = now()
    changed = False

    async def write(session: Any) -> Endorsement:
        nonlocal changed
        audience = await audiences.copied(db, actor, "Solution", solution.id, session=session)
        current = await store.endorsement_of(db, solution.id, actor.city, session=session)
        changed = current is None or (current.kind, current.note) != (kind, why)
        if current is None:
            draft = Endorsement(
                "",
                solution.id,
                actor.city,
                actor.subject,
                kind,
                why,
                moment,
                moment,
                audience=audience,
            )
            saved = await store.insert_endorsement(db, draft, session=session)
            await solution_store.add_to_counters(db, solution.id, endorsements=1, session=session)
            return saved
        if not changed:
            return current
        revised = replace(current, kind=kind, note=why, by=actor.subject, updated_at=moment)
        return await store.revise_endorsement(db, revised, session=session)

    return await event_store.record(
        db,
        write,
        lambda saved: (
            solution_event(
                EventType.SOLUTION_ENDORSED,
                solution,
                actor,
                kind="Solution",
                id=solution.id,
                audience=saved.audience,
            )
            if changed
            else None
        ),
    )


async def by_ids(*, db: Database, actor: Principal, ids: Sequence[str]) -> list[Endorsement | None]:
    actor.require(Scope.READ)
    return await store.endorsements_by_ids(db, ids, viewer=Viewer.of(actor))


async def endorsements_of(
    *, db: Database, actor: Principal, solution_ids: Sequence[str], request: PageRequest
) -> ChildPages[Endorsement]:
    """Endorsements of each of many solutions, newest first, batched."""
    actor.require(Scope.READ)
    request.validate()
    return await store.endorsements_of(
        db, solution_ids, first=request.size, after=request.after, viewer=Viewer.of(actor)
    )
