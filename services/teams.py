"""Who may edit a problem or a solution, and who may manage its team and visibility."""

from __future__ import annotations

from collections.abc import Sequence

from cityexchange.services.errors import Forbidden
from cityexchange.services.principal import Principal, Scope
from cityexchange.services.visibility import TeamMember, TeamRole, Viewer, member_key


def roles_of(actor: Principal, team: Sequence[TeamMember]) -> set[TeamRole]:
    """The roles the caller holds on a team, as a person or through its organisation."""
    keys = Viewer.of(actor).keys
    return {member.role for member in team if member_key(member) in keys}


def require_editor(actor: Principal, *, city: str, team: Sequence[TeamMember], what: str) -> None:
    """The owning city's publishers edit, except the team's observers; the team's leads and
    contributors edit whatever their token's city (an international organisation's)."""
    actor.require(Scope.PUBLISH)
    roles = roles_of(actor, team)
    if roles & {TeamRole.LEAD, TeamRole.CONTRIBUTOR}:
        return
    if actor.city == city and TeamRole.OBSERVER not in roles:
        return
    raise Forbidden(f"only {city} or this {what}'s team may change it")


def require_manager(actor: Principal, *, city: str, team: Sequence[TeamMember], what: str) -> None:
    """A team's lead, or the owning city's admin, manages its team and visibility; a team
    without a lead (written before teams existed) is managed by the city's publishers."""
    if TeamRole.LEAD in roles_of(actor, team) and Scope.PUBLISH.value in actor.scopes:
        return
    if actor.city == city and Scope.ADMIN.value in actor.scopes:
        return
    if actor.city == city and not any(m.role is TeamRole.LEAD for m in team):
        actor.require(Scope.PUBLISH)
        return
    raise Forbidden(f"only this {what}'s lead or {city}'s admin may change its team or visibility")
