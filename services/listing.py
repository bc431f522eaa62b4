"""What lists of problems and solutions can be filtered by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cityexchange.services import limits
from cityexchange.services.errors import InvalidInput
from cityexchange.services.search import terms
from cityexchange.services.taxonomy import Hazard, Sector, Urgency


@dataclass(frozen=True, slots=True)
class ListingFilter:
    """Values within one field are alternatives (OR); fields combine with AND."""

    cities: tuple[str, ...] = ()
    hazards: tuple[Hazard, ...] = ()
    sectors: tuple[Sector, ...] = ()
    tags: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    urgencies: tuple[Urgency, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    search: str | None = None

    def checked(self) -> ListingFilter:
        """The same filter, with list sizes and the search text checked."""
        limits.items(("filter", "cities"), self.cities)
        limits.items(("filter", "hazards"), self.hazards)
        limits.items(("filter", "sectors"), self.sectors)
        limits.items(("filter", "status"), self.statuses)
        limits.items(("filter", "urgency"), self.urgencies)
        for name, moment in (
            ("createdAfter", self.created_after),
            ("createdBefore", self.created_before),
            ("updatedAfter", self.updated_after),
            ("updatedBefore", self.updated_before),
        ):
            limits.moment(("filter", name), moment)
        if self.search is not None and len(self.search) > limits.SHORT_TEXT_MAX:
            raise InvalidInput(
                ("filter", "search"), f"must be at most {limits.SHORT_TEXT_MAX} characters"
            )
        return ListingFilter(
            cities=self.cities,
            hazards=self.hazards,
            sectors=self.sectors,
            tags=tuple(t.strip().lower() for t in limits.items(("filter", "tags"), self.tags)),
            statuses=self.statuses,
            urgencies=self.urgencies,
            created_after=self.created_after,
            created_before=self.created_before,
            updated_after=self.updated_after,
            updated_before=self.updated_before,
            search=self.search,
        )

    @property
    def search_terms(self) -> list[str]:
        return terms(self.search) if self.search else []
