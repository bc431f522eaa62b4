"""Changing who may see a problem or a solution: its visibility, its team, an embargo ending.

Every change goes the same way. The subject's new audience is resolved
(services/audiences.py) and written with its visibility and team, from the version the caller
last read; its comments, adoptions, endorsements, outcome reports and past events take the
new audience in the same transaction (services/store/audiences.py). Then, by what changed:

- viewers who gain it are told it was published (PROBLEM_PUBLISHED or SOLUTION_PUBLISHED,
  for the new audience, withheld from whoever could already see it);
- viewers who keep it are told it was updated (PROBLEM_UPDATED or SOLUTION_UPDATED);
- viewers who lose it are told WITHDRAWN (for the old audience, withheld from whoever keeps
  it), and from then on it answers them as a missing item does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from cityexchange.services import audiences, teams
from cityexchange.services.clock import now
from cityexchange.services.errors import Conflict, InvalidInput, NotFound
from cityexchange.services.models import Event, EventType, Problem, Solution
from cityexchange.services.principal import Principal
from cityexchange.services.store import audiences as audience_store
from cityexchange.services.store import events as event_store
from cityexchange.services.store import organisations as organisation_store
from cityexchange.services.store import people as people_store
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store.database import Database
from cityexchange.services.visibility import (
    EVERYONE,
    SYSTEM_VIEWER,
    TeamMember,
    TeamRole,
    Viewer,
    Visibility,
    VisibilityLevel,
)

log = logging.getLogger("cityexchange.access")
Kind = Literal["Problem", "Solution"]
Subject = Problem | Solution
TEAM_MAX = 100  # members of one team

_PUBLISHED = {"Problem": EventType.PROBLEM_PUBLISHED, "Solution": EventType.SOLUTION_PUBLISHED}
_UPDATED = {"Problem": EventType.PROBLEM_UPDATED, "Solution": EventType.SOLUTION_UPDATED}


@dataclass(frozen=True, slots=True)
class MemberRef:
    """Whom to add to or remove from a team: a person (by id) or an organisation (by id)."""

    kind: Literal["Person", "Organisation"]
    id: str


async def _subject(db: Database, kind: Kind, id: str, viewer: Viewer) -> Subject:
    if kind == "Problem":
        return await problem_store.get_problem(db, id, viewer=viewer)
    return await solution_store.get_solution(db, id, viewer=viewer)


def _events(
    kind: Kind, before: Subject, after: Subject, actor: Principal, at: datetime
) -> list[Event]:
    old, new = set(before.audience), set(after.audience)
    hazards = after.hazards
    sectors = after.sectors if isinstance(after, Problem) else after.details.sectors
    tags = after.tags if isinstance(after, Problem) else after.details.tags

    def told(type: EventType, audience: set[str], withheld: set[str]) -> Event:
        return Event(
            type=type,
            occurred_at=at,
            city=actor.city,
            actor=actor.subject,
            subject_kind=kind,
            subject_id=after.id,
            subject_city=after.city,
            thread_id=after.id,
            hazards=hazards,
            sectors=sectors,
            tags=tags,
            urgency=after.urgency if isinstance(after, Problem) else None,
            audience=tuple(sorted(audience)),
            withheld=tuple(sorted(withheld)),
        )

    # Who keeps it: those holding a key of both. EVERYONE stands for every key; otherwise the
    # keys the two share (a viewer holding one old key and another new one is told nothing
    # but sees it as before).
    kept = new if old == {EVERYONE} else old if new == {EVERYONE} else old & new
    found: list[Event] = []
    if kept:
        found.append(told(_UPDATED[kind], kept, set()))
    if not new <= old and old != {EVERYONE}:  # someone may gain it
        found.append(told(_PUBLISHED[kind], new, old))
    if not old <= new and new != {EVERYONE}:  # someone may lose it
        found.append(told(EventType.WITHDRAWN, old, new))
    return found


async def _change(
    db: Database,
    *,
    actor: Principal,
    kind: Kind,
    current: Subject,
    version: int,
    visibility: Visibility,
    team: Sequence[TeamMember],
) -> Subject:
    """Write `current` with `visibility` and `team`, and tell each viewer what changed."""
    moment = now()
    audience = await audiences.resolve(db, owner=current.city, visibility=visibility, team=team)
    changed = replace(
        current, visibility=visibility, team=tuple(team), audience=audience, updated_at=moment
    )
    save: Callable[..., Awaitable[Any]] = (
        problem_store.save_problem_access
        if kind == "Problem"
        else solution_store.save_solution_access
    )

    async def write(session: Any) -> Subject:
        saved: Subject = await save(db, changed, expected_version=version, session=session)
        await audience_store.reassign(db, kind, saved.id, saved.audience, session=session)
        return saved

    return await event_store.record(
        db, write, lambda saved: _events(kind, current, saved, actor, moment)
    )


async def set_visibility(
    *,
    db: Database,
    actor: Principal,
    kind: Kind,
    id: str,
    version: int,
    visibility: Visibility,
) -> Subject:
    """Change who may see it: its team's lead or its city's admin (services/teams.py)."""
    current = await _managed(db, actor, kind, id, version)
    checked = audiences.checked(visibility, now=now())
    return await _change(
        db,
        actor=actor,
        kind=kind,
        current=current,
        version=version,
        visibility=checked,
        team=current.team,
    )


async def _member(db: Database, ref: MemberRef, role: TeamRole, actor: Principal) -> TeamMember:
    """The team member `ref` names; NotFound for a person or organisation there is none of."""
    if ref.kind == "Person":
        (person,) = await people_store.people_by_ids(db, [ref.id])
        if person is None:
            raise NotFound("Person", ref.id)
        return TeamMember("Person", person.id, role, now(), actor.subject, city=person.city)
    (organisation,) = await organisation_store.organisations_by_ids(db, [ref.id])
    if organisation is None:
        raise NotFound("Organisation", ref.id)
    return TeamMember("Organisation", organisation.id, role, now(), actor.subject)


def _same(member: TeamMember, ref: MemberRef) -> bool:
    return member.kind == ref.kind and member.id == ref.id


async def _managed(db: Database, actor: Principal, kind: Kind, id: str, version: int) -> Subject:
    """The subject, which the caller may manage (services/teams.py), as of `version`;
    NotFound if hidden, Conflict if it changed since."""
    current = await _subject(db, kind, id, Viewer.of(actor))
    teams.require_manager(actor, city=current.city, team=current.team, what=kind.lower())
    if current.version != version:
        raise Conflict(kind, id, expected=version, actual=current.version)
    return current


async def _with_team(
    db: Database,
    *,
    actor: Principal,
    kind: Kind,
    current: Subject,
    version: int,
    team: Sequence[TeamMember],
) -> Subject:
    if not any(m.role is TeamRole.LEAD for m in team):
        raise InvalidInput("role", "a team keeps at least one LEAD")
    return await _change(
        db,
        actor=actor,
        kind=kind,
        current=current,
        version=version,
        visibility=current.visibility,
        team=team,
    )


async def add_team_member(
    *,
    db: Database,
    actor: Principal,
    kind: Kind,
    id: str,
    version: int,
    member: MemberRef,
    role: TeamRole,
) -> Subject:
    """Invite a person or an organisation with `role`, or change their role."""
    current = await _managed(db, actor, kind, id, version)
    added = await _member(db, member, role, actor)
    kept = [m for m in current.team if not _same(m, member)]
    if len(kept) >= TEAM_MAX:
        raise InvalidInput("member", f"a team has at most {TEAM_MAX} members")
    return await _with_team(
        db, actor=actor, kind=kind, current=current, version=version, team=[*kept, added]
    )


async def remove_team_member(
    *, db: Database, actor: Principal, kind: Kind, id: str, version: int, member: MemberRef
) -> Subject:
    """Take a person or an organisation off the team; the last lead stays."""
    current = await _managed(db, actor, kind, id, version)
    if not any(_same(m, member) for m in current.team):
        raise InvalidInput("member", "is not on this team")
    team = [m for m in current.team if not _same(m, member)]
    return await _with_team(db, actor=actor, kind=kind, current=current, version=version, team=team)


async def end_embargo(*, db: Database, kind: Kind, id: str, at: datetime) -> Subject | None:
    """Publish a draft whose embargo ended by `at`, as its embargo said (the service acts,
    in the owning city's name); None when it is no longer due (changed meanwhile)."""
    current = await _subject(db, kind, id, SYSTEM_VIEWER)
    embargo = current.visibility.embargo
    if (
        embargo is None
        or embargo.until > at
        or current.visibility.level is not VisibilityLevel.DRAFT
    ):
        return None
    published = Visibility(
        level=embargo.level,
        cities=current.visibility.cities,
        networks=current.visibility.networks,
    )
    actor = Principal(current.city, "embargo", frozenset(), "cityexchange")
    try:
        return await _change(
            db,
            actor=actor,
            kind=kind,
            current=current,
            version=current.version,
            visibility=published,
            team=current.team,
        )
    except InvalidInput as exc:
        # What it was to be shared with is gone (a network without members now): it stays a
        # draft of its team, without the embargo, so it is not due again; its lead decides.
        log.warning("%s %s stays a draft: its embargo could not publish it (%s)", kind, id, exc)
        await _change(
            db,
            actor=actor,
            kind=kind,
            current=current,
            version=current.version,
            visibility=Visibility(VisibilityLevel.DRAFT),
            team=current.team,
        )
        return None
