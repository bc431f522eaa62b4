"""The side-by-side bench's data and servers: the seed, the service as `cityexchange serve`,
and the hand-written baseline, each a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.tokens import issue_access_token
from cityexchange.services import cities, comments, problems, solutions
from cityexchange.services.clock import now
from cityexchange.services.models import Affiliation, City, Person
from cityexchange.services.principal import Principal
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard, OrganisationKind, Role
from cityexchange.settings import DEFAULT_AUDIENCE, DEFAULT_PUBLIC_URL

DB_NAME = "bench_edge"
SCOPES = frozenset({"read", "publish", "comment"})
ROOT = Path(__file__).resolve().parent.parent


async def seed(db: Database) -> str:
    """Two cities with people; 12 problems, 4 solutions each, 3 comments on each solution.
    Returns a read token of Rotterdam."""
    people: list[Person] = []
    for slug in ("rotterdam", "lagos"):
        await cities.add_city(
            db=db, city=City(slug=slug, name=slug.title(), country="NL", created_at=now())
        )
        for i in range(3):
            people.append(
                await cities.add_person(
                    db=db,
                    person=Person(
                        id="",
                        city=slug,
                        username=f"{slug}-{i}",
                        name=f"{slug.title()} Person {i}",
                        role=Role.MEMBER,
                        affiliation=Affiliation("Water board", OrganisationKind.CITY_AGENCY),
                    ),
                )
            )
    actors = [Principal(p.city, p.id, SCOPES, "bench") for p in people]
    stranger = Principal("lagos", "not-a-person", SCOPES, "bench")  # its comments have no author
    n = 0
    for i in range(12):
        problem = await problems.publish(
            db=db,
            actor=actors[0],
            draft=problems.ProblemDraft(
                title=f"Problem {i}", summary="Streets flood", hazards=[Hazard.FLOOD]
            ),
        )
        for j in range(4):
            solution = await solutions.publish(
                db=db,
                actor=actors[3 + j % 3],
                draft=solutions.SolutionDraft(
                    title=f"Solution {i}.{j}",
                    summary="s",
                    hazards=[Hazard.FLOOD],
                    problem_ids=[problem.id],
                ),
            )
            for k in range(3):
                n += 1
                await comments.add(
                    db=db,
                    actor=stranger if n % 7 == 0 else actors[n % 6],
                    subject_kind="Solution",
                    subject_id=solution.id,
                    parent_id=None,
                    body=f"Comment {i}.{j}.{k}",
                )
    registry = RealmRegistry(db, DEFAULT_PUBLIC_URL)
    issued = await issue_access_token(
        registry,
        registry.realm("rotterdam"),
        subject="bench",
        scopes=["read"],
        client_id="bench",
        audience=DEFAULT_AUDIENCE,
        ttl_seconds=3600,
    )
    return issued.access_token


def service_env(uri: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),  # this tree, wherever the virtualenv's install points
        "CITYEXCHANGE_MONGODB_URI": uri,
        "CITYEXCHANGE_DB": DB_NAME,
        "CITYEXCHANGE_PUBLIC_URL": DEFAULT_PUBLIC_URL,  # the issuer of the bench's tokens
        # Budgets above what the bench spends (bench/limits.py measures the limiter), and no
        # access log line per request: the baseline writes none either.
        "CITYEXCHANGE_RATE_LIMIT_POINTS": "10000000",
        "CITYEXCHANGE_LOG_LEVEL": "WARNING",
    }


def start_service(uri: str, port: int, workers: int | None = None) -> subprocess.Popen[bytes]:
    """`cityexchange serve`, as in production, on the bench's database."""
    command = [str(Path(sys.executable).parent / "cityexchange"), "serve", "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    return subprocess.Popen(
        command, env=service_env(uri), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )


def start_baseline(uri: str, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(ROOT / "bench" / "baseline.py"), "--port", str(port)]
    command += ["--uri", uri, "--db", DB_NAME]
    return subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL)


def workers_supported() -> bool:
    help_text = subprocess.run(
        [str(Path(sys.executable).parent / "cityexchange"), "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=service_env(""),
    ).stdout
    return "--workers" in help_text
