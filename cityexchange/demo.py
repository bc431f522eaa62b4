"""`serve --demo`: load the demo cities through the normal use cases, print their tokens."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

from cityexchange import demo_data as data
from cityexchange.auth.tokens import issue_access_token
from cityexchange.resources import open_database, open_resources
from cityexchange.services import cities, comments, problems, solutions
from cityexchange.services.models import (
    City,
    Contact,
    Cost,
    GeoPoint,
    Organisation,
    Outcome,
    Person,
    ResilienceProfile,
    SolutionDetails,
    Transferability,
)
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store.database import Database
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.services.taxonomy import Role, SolutionStatus, Urgency
from cityexchange.settings import Settings

DEMO_TOKEN_TTL_SECONDS = 8 * 3600
ALL_SCOPES = frozenset(scope.value for scope in Scope)
LOAD_TIMEOUT_MS = 30_000


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


async def _load(db: Database, people: dict[tuple[str, str], Person]) -> None:
    for c in data.CITIES:
        slug = c["slug"]
        await cities.add_city(
            db=db,
            city=City(
                slug=slug,
                name=c["name"],
                country=c["country"],
                created_at=datetime.min,
                region=c["region"],
                population=c["population"],
                location=GeoPoint(longitude=c["lon"], latitude=c["lat"]),
                timezone=c["tz"],
                languages=c["languages"],
                climate_zone=c["climate"],
                profile=ResilienceProfile(c["hazards"], c["strategy"], c["year"]),
                contact=Contact(f"{c['name']} resilience team", f"resilience@{slug}.example.org"),
                networks=data.NETWORKS,
            ),
        )
    for city, username, name, role, org, kind, title in data.PEOPLE:
        person = await cities.add_person(
            db=db,
            person=Person(
                id="",
                city=city,
                username=username,
                name=name,
                role=Role(role),
                organisation=Organisation(org, kind),
                title=title,
            ),
        )
        people[(city, username)] = person

    def actor(city: str, username: str | None = None) -> Principal:
        person = people[(city, username)] if username else _cro(people, city)
        return Principal(city=city, subject=person.id, scopes=ALL_SCOPES, client_id="demo")

    problem_ids: dict[str, str] = {}
    for key, p in data.PROBLEMS.items():
        problem = await problems.publish(
            db=db,
            actor=actor(p["city"]),
            draft=problems.ProblemDraft(
                title=p["title"],
                summary=p["summary"],
                hazards=p["hazards"],
                sectors=p["sectors"],
                tags=p["tags"],
                urgency=Urgency(p.get("urgency", "ROUTINE")),
                affected_population=p.get("affected"),
            ),
        )
        problem_ids[key] = problem.id
    solution_ids: dict[str, str] = {}
    for key, s in data.SOLUTIONS.items():
        cost = s.get("cost")
        details = SolutionDetails(
            status=SolutionStatus(s["status"]),
            started_on=_date(s.get("started")),
            completed_on=_date(s.get("completed")),
            cost=Cost(float(cost[0]), cost[1], cost[2]) if cost else None,
            funding_sources=s.get("funding", ()),
            partners=s.get("partners", ()),
            outcomes=tuple(Outcome(*o) for o in s.get("outcomes", ())),
            success_factors=s.get("success", ()),
            limiting_factors=s.get("limits", ()),
            transferability=Transferability(s.get("prerequisites", ()), None, s.get("differently"))
            if "prerequisites" in s
            else None,
            sectors=s["sectors"],
            tags=s["tags"],
        )
        origin = s.get("adapted_from")
        solution = await solutions.publish(
            db=db,
            actor=actor(s["city"]),
            draft=solutions.SolutionDraft(
                title=s["title"],
                summary=s["summary"],
                hazards=s["hazards"],
                problem_ids=[problem_ids[p] for p in s["problems"]],
                adapted_from=solution_ids[origin] if origin else None,
                adaptation_notes=s.get("notes"),
                details=details,
            ),
        )
        solution_ids[key] = solution.id
    for problem_key, answers in data.ANSWERED.items():
        owner = data.PROBLEMS[problem_key]["city"]
        await problems.mark_answered(
            db=db,
            actor=actor(owner),
            id=problem_ids[problem_key],
            version=1,
            solution_ids=[solution_ids[a] for a in answers],
        )
    for problem_key, faced_by in data.FACED_TOO.items():
        for city in faced_by:
            await problems.face_too(db=db, actor=actor(city), id=problem_ids[problem_key])
    for subject, city, username, body, replies in data.COMMENTS:
        kind, subject_id = (
            ("Solution", solution_ids[subject])
            if subject in solution_ids
            else ("Problem", problem_ids[subject])
        )
        thread = await comments.add(
            db=db,
            actor=actor(city, username),
            subject_kind=kind,
            subject_id=subject_id,
            parent_id=None,
            body=body,
        )
        for reply_city, reply_user, reply in replies:
            await comments.add(
                db=db,
                actor=actor(reply_city, reply_user),
                subject_kind=kind,
                subject_id=subject_id,
                parent_id=thread.id,
                body=reply,
            )


def _cro(people: dict[tuple[str, str], Person], city: str) -> Person:
    return next(p for (c, _), p in people.items() if c == city and p.role is Role.CRO)


async def load(settings: Settings) -> dict[str, str]:
    """Load the demo if the database has no cities; return a token per demo city."""
    settings = dataclasses.replace(settings, operation_timeout_ms=LOAD_TIMEOUT_MS)
    async with open_resources(settings) as resources:
        db = resources.db
        await ensure_indexes(db, event_retention_seconds=settings.event_retention_days * 86_400)
        people: dict[tuple[str, str], Person] = {}
        if await db.is_empty():
            await _load(db, people)
        registry = resources.registry
        tokens: dict[str, str] = {}
        for c in data.CITIES:
            slug = c["slug"]
            cro = await _demo_cro(db, people, slug)
            token = await issue_access_token(
                registry,
                registry.realm(slug),
                subject=cro,
                scopes=sorted(ALL_SCOPES),
                client_id="demo",
                audience=settings.audience,
                ttl_seconds=DEMO_TOKEN_TTL_SECONDS,
            )
            tokens[slug] = token.access_token
        return tokens


async def is_empty(settings: Settings) -> bool:
    """Whether the database has no member cities yet."""
    async with open_database(settings) as db:
        return await db.is_empty()


async def _demo_cro(db: Database, people: dict[tuple[str, str], Person], city: str) -> str:
    if people:
        return _cro(people, city).id
    username = next(u for c, u, _, role, *_ in data.PEOPLE if c == city and role == "cro")
    person = await cities.person_by_username(db=db, city=city, username=username)
    return person.id if person else "demo"
