"""What other cities did with solutions (services/evidence.py's TrackRecord), read for many
solutions at once: their counters, where each adopting city stands, the answered-marks."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

from cityexchange.services.evidence import TrackRecord
from cityexchange.services.models import TAKEN_UP, AdoptionStage
from cityexchange.services.store import adoptions
from cityexchange.services.store.database import Database, Document, guarded, object_ids
from cityexchange.services.store.visibility import readable
from cityexchange.services.visibility import Viewer


@guarded
async def _counters(db: Database, ids: Sequence[str]) -> dict[str, Document]:
    projection = {"reportedOutcomeCount": 1, "endorsementCount": 1}
    cursor = db.solutions.find({"_id": {"$in": object_ids(ids)}}, projection)
    return {str(doc["_id"]): doc async for doc in cursor.batch_size(len(ids) + 1)}


@guarded
async def _answered(db: Database, ids: Sequence[str], viewer: Viewer) -> Counter[str]:
    """How many problems `viewer` may see name each solution among their answers."""
    wanted = object_ids(ids)
    pipeline: list[Document] = [
        {"$match": {"answeredBy": {"$in": wanted}}},
        {"$match": readable(viewer)},  # a stage of its own: the first stays on `answered_by`
        {"$project": {"answeredBy": 1}},
        {"$unwind": "$answeredBy"},
        {"$match": {"answeredBy": {"$in": wanted}}},
        {"$group": {"_id": "$answeredBy", "n": {"$sum": 1}}},
    ]
    rows = await (await db.problems.aggregate(pipeline)).to_list(None)
    return Counter({str(row["_id"]): int(row["n"]) for row in rows})


async def track_records(
    db: Database, solution_ids: Sequence[str], *, viewer: Viewer
) -> dict[str, TrackRecord]:
    """The track record of each solution, as `viewer` may see it, in three concurrent round
    trips whatever their number: the solutions' counters (their adoptions, outcomes and
    endorsements share the solution's audience), the adoptions' current stages, the problems'
    marks."""
    ids = list(dict.fromkeys(solution_ids))
    if not ids:
        return {}
    counters, standings, answered = await asyncio.gather(
        _counters(db, ids),
        adoptions.standings(db, ids, viewer=viewer),
        _answered(db, ids, viewer),
    )
    taken_up: Counter[str] = Counter()
    abandoned: Counter[str] = Counter()
    for standing in standings:
        if standing.stage in TAKEN_UP:
            taken_up[standing.solution_id] += 1
        elif standing.stage is AdoptionStage.ABANDONED:
            abandoned[standing.solution_id] += 1
    return {
        id: TrackRecord(
            adoptions=taken_up[id],
            abandoned=abandoned[id],
            reported_outcomes=int(counters.get(id, {}).get("reportedOutcomeCount") or 0),
            endorsements=int(counters.get(id, {}).get("endorsementCount") or 0),
            answered=answered[id],
        )
        for id in ids
    }
