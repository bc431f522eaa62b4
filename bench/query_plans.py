"""The read commands a request sends, recorded from PyMongo's command monitoring and explained
afterwards: which plan the database chose, and how many index keys and documents it examined.
A read that grows with the corpus shows here as a collection scan or a count that grows."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from pymongo import monitoring

from cityexchange.services.store.database import Database, Document
from cityexchange.services.store.monitoring import ORIGIN

EXPLAINED = ("find", "aggregate")
# What a command carries for the wire, not for the plan.
_ENVELOPE = {"lsid", "$db", "$clusterTime", "txnNumber", "readConcern", "startTransaction"}


class Recorder(monitoring.CommandListener):
    """Keeps the reads that requests send while `recording` (register before the client)."""

    def __init__(self) -> None:
        self.recording = False
        self.commands: list[Document] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording and ORIGIN.get() == "request" and event.command_name in EXPLAINED:
            command = {k: v for k, v in event.command.items() if k not in _ENVELOPE}
            self.commands.append(copy.deepcopy(command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def stages(plan: Document) -> list[str]:
    """A plan's stages, outermost first, with their index names and keys."""
    found: list[str] = []
    todo = [plan]
    while todo:
        stage = todo.pop(0)
        name = str(stage.get("stage"))
        if stage.get("indexName"):
            name += f"({stage['indexName']} {json.dumps(stage.get('keyPattern'))})"
        found.append(name)
        todo += [stage["inputStage"]] if "inputStage" in stage else []
        todo += list(stage.get("inputStages", []))
    return found


@dataclass(frozen=True, slots=True)
class Explained:
    collection: str
    plan: list[str]
    returned: int
    keys_examined: int
    docs_examined: int
    ms: float

    @property
    def scans(self) -> bool:
        return any(stage.startswith("COLLSCAN") for stage in self.plan)


def _parts(result: Document) -> tuple[Document, Document]:
    """(queryPlanner, executionStats) of a find's or an aggregate's explain."""
    if "queryPlanner" in result:
        return result["queryPlanner"], result.get("executionStats", {})
    first: Document = result.get("stages", [{}])[0].get("$cursor", {})
    return first.get("queryPlanner", {}), first.get("executionStats", {})


async def explain(db: Database, command: Document) -> Explained:
    """The plan and execution figures of one recorded find or aggregate."""
    if "aggregate" in command:
        collection = str(command["aggregate"])
        wanted: Document = {"aggregate": collection, "pipeline": command["pipeline"], "cursor": {}}
    else:
        collection = str(command["find"])
        wanted = {"find": collection, "filter": command.get("filter", {})}
        for key in ("sort", "projection", "limit"):
            if key in command:
                wanted[key] = command[key]
    result: Document = await db.db.command("explain", wanted, verbosity="executionStats")
    planner, run = _parts(result)
    return Explained(
        collection,
        stages(planner.get("winningPlan", {})),
        int(run.get("nReturned", 0)),
        int(run.get("totalKeysExamined", 0)),
        int(run.get("totalDocsExamined", 0)),
        float(run.get("executionTimeMillis", 0)),
    )


@dataclass(slots=True)
class CallPlans:
    """Every read of one call, explained."""

    reads: list[Explained] = field(default_factory=list[Explained])

    def summary(self) -> dict[str, Any]:
        heaviest = max(self.reads, key=lambda r: r.docs_examined, default=None)
        return {
            "reads": len(self.reads),
            "collection_scans": sorted({r.collection for r in self.reads if r.scans}),
            "keys_examined": sum(r.keys_examined for r in self.reads),
            "docs_examined": sum(r.docs_examined for r in self.reads),
            "heaviest": f"{heaviest.collection}: {heaviest.docs_examined} docs, "
            f"{' < '.join(heaviest.plan)}"
            if heaviest
            else None,
        }


async def explain_all(db: Database, commands: list[Document]) -> CallPlans:
    return CallPlans([await explain(db, command) for command in commands])
