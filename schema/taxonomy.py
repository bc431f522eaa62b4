"""The taxonomy as GraphQL enums: the domain's enums, registered with strawberry."""

from __future__ import annotations

import strawberry

from cityexchange.services.pages import Order, SolutionOrder
from cityexchange.services.taxonomy import (
    Hazard,
    HazardKind,
    OrganisationKind,
    ProblemStatus,
    Role,
    Sector,
    SolutionStatus,
    Urgency,
)

# strawberry.enum registers a class in place, so the domain enums are the GraphQL enums.
strawberry.enum(Hazard, description="Shocks (sudden) and stresses (chronic).")
strawberry.enum(HazardKind)
strawberry.enum(Sector)
strawberry.enum(ProblemStatus)
strawberry.enum(Urgency, description="ACTIVE_CRISIS: the city is in the middle of a shock now.")
strawberry.enum(SolutionStatus)
strawberry.enum(Role)
strawberry.enum(OrganisationKind)
strawberry.enum(Order, name="ListOrder", description="Sort order of a list; ties broken by id.")
strawberry.enum(
    SolutionOrder,
    description="Sort order of a solution list; ties broken by id. Cost orders list only "
    "solutions with a EUR figure; EVIDENCE_DESC and ADOPTIONS_DESC put those without last.",
)

__all__ = [
    "Hazard",
    "HazardKind",
    "Order",
    "OrganisationKind",
    "ProblemStatus",
    "Role",
    "Sector",
    "SolutionOrder",
    "SolutionStatus",
    "Urgency",
]
