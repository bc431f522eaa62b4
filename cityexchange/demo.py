"""`serve --demo`: import the case-study library (cityexchange/data), add the demo's people,
answered-marks and comments through the normal use cases; print tokens of the cities with
people."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
from collections.abc import Callable
from importlib import resources as package_files
from pathlib import Path

from cityexchange import demo_data as data
from cityexchange.auth import admin
from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.tokens import issue_access_token
from cityexchange.resources import open_database, open_resources
from cityexchange.services import access, cities, comments, experts, organisations, problems
from cityexchange.services.errors import InvalidInput
from cityexchange.services.library_import import import_library
from cityexchange.services.library_records import Record, in_order, read
from cityexchange.services.models import (
    Affiliation,
    OrganisationDraft,
    OrganisationRole,
    Person,
    Problem,
    PublicContact,
    Solution,
)
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.store import organisations as organisation_store
from cityexchange.services.store import people
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store.database import Database
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.services.taxonomy import Hazard, Role, Sector
from cityexchange.services.visibility import SYSTEM_VIEWER, TeamRole, Visibility, VisibilityLevel
from cityexchange.settings import Settings

DEMO_TOKEN_TTL_SECONDS = 8 * 3600
ALL_SCOPES = frozenset(scope.value for scope in Scope)
LOAD_TIMEOUT_MS = 30_000
PASSWORD_FILE = "demo-password"  # noqa: S105 - a file name; the password is generated


class DemoDataError(Exception):
    """The packaged library does not load: a bug in the committed data, never the user's."""


def library() -> list[Record]:
    """Every record of the packaged library, in import order."""
    records: list[Record] = []
    for name in data.LIBRARY:
        with (
            package_files.files("cityexchange")
            .joinpath("data", name)
            .open(encoding="utf-8") as lines
        ):
            found, errors = read(lines)
        if errors:
            raise DemoDataError(f"{name}: {errors[0]}")
        records.extend(found)
    return in_order(records)


async def _load(db: Database, people: dict[tuple[str, str], Person]) -> None:
    summary = await import_library(db=db, records=library())
    if summary.errors:
        raise DemoDataError(str(summary.errors[0]))
    for city, username, name, role, org, kind, title in data.PEOPLE:
        person = await cities.add_person(
            db=db,
            person=Person(
                id="",
                city=city,
                username=username,
                name=name,
                role=Role(role),
                affiliation=Affiliation(org, kind),
                title=title,
            ),
        )
        people[(city, username)] = person

    def actor(city: str, username: str | None = None) -> Principal:
        person = people[(city, username)] if username else _cro(people, city)
        return Principal(city=city, subject=person.id, scopes=ALL_SCOPES, client_id="demo")

    await _organisations(db, people, actor)
    await _drafted(db, actor("rotterdam"))

    wanted = {*data.ANSWERED, *data.FACED_TOO, *(c[0] for c in data.COMMENTS)}
    for answers in data.ANSWERED.values():
        wanted.update(answers)
    ids = {
        **await problem_store.ids_by_external_ids(db, sorted(wanted)),
        **await solution_store.ids_by_external_ids(db, sorted(wanted)),
    }
    for problem_key, answers in data.ANSWERED.items():
        problem = await problem_store.get_problem(db, ids[problem_key], viewer=SYSTEM_VIEWER)
        await problems.mark_answered(
            db=db,
            actor=actor(problem.city),
            id=problem.id,
            version=problem.version,
            solution_ids=[ids[a] for a in answers],
        )
    for problem_key, faced_by in data.FACED_TOO.items():
        for city in faced_by:
            await problems.face_too(db=db, actor=actor(city), id=ids[problem_key])
    for subject, city, username, body, replies in data.COMMENTS:
        kind = "Solution" if subject.startswith("solution:") else "Problem"
        thread = await comments.add(
            db=db,
            actor=actor(city, username),
            subject_kind=kind,
            subject_id=ids[subject],
            parent_id=None,
            body=body,
        )
        for reply_city, reply_user, reply in replies:
            await comments.add(
                db=db,
                actor=actor(reply_city, reply_user),
                subject_kind=kind,
                subject_id=ids[subject],
                parent_id=thread.id,
                body=reply,
            )


async def _organisations(
    db: Database, people: dict[tuple[str, str], Person], actor: Callable[..., Principal]
) -> None:
    """Each demo city's utility, port, university and NGO; everyone bound to the
    organisation of their affiliation (`migrate` adds the ones not listed), a few as its
    admins; and the people listed as experts."""
    for city, name, kind, sectors, hazards, email in data.ORGANISATIONS:
        draft = OrganisationDraft(
            city=city,
            name=name,
            kind=kind,
            sectors=tuple(Sector(s) for s in sectors),
            hazards=tuple(Hazard(h) for h in hazards),
            contact=PublicContact(email=email),
        )
        await organisations.create(db=db, actor=_admin(city), draft=draft)
    await organisations.migrate_affiliations(db=db)
    for city, username in data.ORGANISATION_ADMINS:
        [person] = await cities.people_by_ids(
            db=db, actor=_admin(city), ids=[people[(city, username)].id]
        )
        assert person is not None
        assert person.organisation_id is not None
        people[(city, username)] = await organisations.set_person_organisation(
            db=db,
            actor=_admin(city),
            person_id=person.id,
            organisation_id=person.organisation_id,
            role=OrganisationRole.ADMIN,
        )
    for city, username, hazards, sectors in data.EXPERTS:
        changes = experts.ProfileChanges(
            listed_as_expert=True,
            hazards=[Hazard(h) for h in hazards],
            sectors=[Sector(s) for s in sectors],
            contact=PublicContact(email=f"{username}@{city}.example"),
        )
        await experts.update_profile(db=db, actor=actor(city, username), changes=changes)


async def _drafted(db: Database, cro: Principal) -> None:
    """Rotterdam's problems worked on as DRAFTs with three of its actors; the first then
    shared with two peer cities (data.DRAFTED)."""
    found = await organisation_store.organisations_of_cities(db, [cro.city], first=100, after=None)
    by_name = {o.name: o for o in found.page(cro.city, after=None).items}
    for title, summary, hazards, shared_with in data.DRAFTED:
        draft = problems.ProblemDraft(
            title=title,
            summary=summary,
            hazards=[Hazard(h) for h in hazards],
            visibility=Visibility(VisibilityLevel.DRAFT),
        )
        problem: Problem | Solution = await problems.publish(db=db, actor=cro, draft=draft)
        for name, role in data.TEAM:
            problem = await access.add_team_member(
                db=db,
                actor=cro,
                kind="Problem",
                id=problem.id,
                version=problem.version,
                member=access.MemberRef("Organisation", by_name[name].id),
                role=TeamRole(role),
            )
        if shared_with is not None:
            await access.set_visibility(
                db=db,
                actor=cro,
                kind="Problem",
                id=problem.id,
                version=problem.version,
                visibility=Visibility(VisibilityLevel.SHARED, cities=shared_with),
            )


def _admin(city: str) -> Principal:
    """The demo's stand-in for a city admin's token."""
    return Principal(city=city, subject="demo", scopes=ALL_SCOPES, client_id="demo")


def _cro(people: dict[tuple[str, str], Person], city: str) -> Person:
    return next(p for (c, _), p in people.items() if c == city and p.role is Role.CRO)


def password(data_dir: Path) -> str:
    """The demo people's sign-in password: made once per data directory and kept there
    (readable by its owner only), so a restart prints the same one."""
    path = data_dir / PASSWORD_FILE
    try:
        kept = path.read_text().strip()
        admin.check_password(kept)
        return kept
    except FileNotFoundError:
        pass
    except (InvalidInput, UnicodeDecodeError):
        path.unlink()  # emptied or edited to something no one could sign in with: a new one
    chosen = secrets.token_urlsafe(12)
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(chosen + "\n")
    return chosen


def give_password(
    store: OAuthStore, city: str, username: str, password: str, loaded_now: bool
) -> None:
    """The demo person's password: set when the demo was loaded now, or where the person
    has none yet (a demo database from before demo passwords); never a password someone
    set, so `--demo` on a database that is not the demo's changes no one's."""
    found = people.credentials(store.db, city, username)
    if found is None or (found.password_hash is not None and not loaded_now):
        return
    admin.set_password(store, city=city, username=username, password=password)


def sign_ins() -> list[tuple[str, str, str]]:
    """(city, username, role) of every demo person, who signs in with `password`."""
    return [(city, username, role) for city, username, _, role, *_ in data.PEOPLE]


async def load(settings: Settings, *, people_password: str | None = None) -> dict[str, str]:
    """Load the demo if the database has no cities; return a token per demo city. With
    `people_password`, the demo people it adds can sign in with it (at /app, say)."""
    settings = dataclasses.replace(settings, operation_timeout_ms=LOAD_TIMEOUT_MS)
    async with open_resources(settings) as resources:
        db = resources.db
        await ensure_indexes(db, event_retention_seconds=settings.event_retention_days * 86_400)
        people: dict[tuple[str, str], Person] = {}
        fresh = await db.is_empty()
        if fresh:
            await _load(db, people)
        if people_password is not None:
            for city, username, *_ in data.PEOPLE:
                await asyncio.to_thread(
                    give_password, resources.oauth, city, username, people_password, fresh
                )
        registry = resources.registry
        tokens: dict[str, str] = {}
        for slug in dict.fromkeys(city for city, *_ in data.PEOPLE):
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
