"""The taxonomy as GraphQL enums, and the shared DateTime/Date scalars' companions."""

from __future__ import annotations

import strawberry

from services import taxonomy
from services.pages import Order

Hazard = strawberry.enum(taxonomy.Hazard, description="Shocks (sudden) and stresses (chronic).")
HazardKind = strawberry.enum(taxonomy.HazardKind)
Sector = strawberry.enum(taxonomy.Sector)
ProblemStatus = strawberry.enum(taxonomy.ProblemStatus)
Urgency = strawberry.enum(
    taxonomy.Urgency, description="ACTIVE_CRISIS: the city is in the middle of a shock now."
)
SolutionStatus = strawberry.enum(taxonomy.SolutionStatus)
Role = strawberry.enum(taxonomy.Role)
OrganisationKind = strawberry.enum(taxonomy.OrganisationKind)
ListOrder = strawberry.enum(
    Order, name="ListOrder", description="Sort order of a list; ties are broken by id."
)


@strawberry.type(description="A hazard with whether it is a shock or a stress.")
class HazardInfo:
    hazard: Hazard
    kind: HazardKind
