"""The end user of an authorization request: a person of the realm's city, and what their
role lets them be given."""

from __future__ import annotations

from dataclasses import dataclass

# What a person may be given, by role: only a city's admins administer its realm.
ROLE_SCOPES = {
    "admin": frozenset({"read", "publish", "comment", "admin"}),
    "cro": frozenset({"read", "publish", "comment"}),
    "member": frozenset({"read", "publish", "comment"}),
}


@dataclass(frozen=True, slots=True)
class ResourceOwner:
    """A person of the realm's city, as authlib's grants see the end user."""

    person_id: str
    city: str
    role: str = "member"

    def get_user_id(self) -> str:
        return self.person_id

    def allowed(self, scope: str) -> str:
        """`scope` without what this person's role may not have."""
        permitted = ROLE_SCOPES.get(self.role, frozenset[str]())
        return " ".join(s for s in scope.split() if s in permitted)
