"""Domain models: plain, immutable dataclasses shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from cityexchange.services import limits
from cityexchange.services.taxonomy import (
    Hazard,
    OrganisationKind,
    ProblemStatus,
    Role,
    Sector,
    SolutionStatus,
    Urgency,
)


@dataclass(frozen=True, slots=True)
class GeoPoint:
    longitude: float
    latitude: float


@dataclass(frozen=True, slots=True)
class Contact:
    name: str | None = None
    email: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ResilienceProfile:
    hazards: tuple[Hazard, ...] = ()
    strategy: str | None = None
    strategy_year: int | None = None


@dataclass(frozen=True, slots=True)
class City:
    slug: str
    name: str
    country: str
    created_at: datetime
    region: str | None = None
    population: int | None = None
    location: GeoPoint | None = None
    timezone: str | None = None
    languages: tuple[str, ...] = ()
    climate_zone: str | None = None
    profile: ResilienceProfile = field(default_factory=ResilienceProfile)
    contact: Contact | None = None
    networks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Organisation:
    name: str
    kind: OrganisationKind


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    city: str
    username: str
    name: str
    role: Role
    organisation: Organisation
    title: str | None = None


@dataclass(frozen=True, slots=True)
class FacedBy:
    city: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Problem:
    id: str
    city: str
    title: str
    summary: str
    body: str | None
    hazards: tuple[Hazard, ...]
    sectors: tuple[Sector, ...]
    tags: tuple[str, ...]
    status: ProblemStatus
    urgency: Urgency
    stakeholders: tuple[str, ...]
    affected_population: int | None
    answered_by: tuple[str, ...]
    faced_by: tuple[FacedBy, ...]
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Cost:
    amount: float
    currency: str
    year: int


@dataclass(frozen=True, slots=True)
class Outcome:
    metric: str
    value: float
    unit: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Transferability:
    prerequisites: tuple[str, ...] = ()
    context: str | None = None
    do_differently: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Adaptation:
    """Where a solution came from: the original solution and what changed."""

    solution_id: str
    notes: str | None


@dataclass(frozen=True, slots=True)
class SolutionDetails:
    """Everything about a solution that the implementing city writes, beyond its headline."""

    body: str | None = None
    status: SolutionStatus = SolutionStatus.IMPLEMENTED
    started_on: date | None = None
    completed_on: date | None = None
    cost: Cost | None = None
    funding_sources: tuple[str, ...] = ()
    partners: tuple[str, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    success_factors: tuple[str, ...] = ()
    limiting_factors: tuple[str, ...] = ()
    transferability: Transferability | None = None
    contact: Contact | None = None
    links: tuple[Link, ...] = ()
    sectors: tuple[Sector, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Solution:
    id: str
    city: str
    title: str
    summary: str
    hazards: tuple[Hazard, ...]
    problem_ids: tuple[str, ...]
    adapted_from: Adaptation | None
    details: SolutionDetails
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Hidden:
    by: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Comment:
    id: str
    subject_kind: str  # "Problem" or "Solution"
    subject_id: str
    subject_city: str
    parent_id: str | None
    city: str
    author_subject: str
    author_id: str | None
    body: str
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None
    hidden: Hidden | None


class EventType(StrEnum):
    PROBLEM_PUBLISHED = "PROBLEM_PUBLISHED"
    PROBLEM_UPDATED = "PROBLEM_UPDATED"
    PROBLEM_ANSWERED = "PROBLEM_ANSWERED"
    PROBLEM_FACED_TOO = "PROBLEM_FACED_TOO"
    SOLUTION_PUBLISHED = "SOLUTION_PUBLISHED"
    SOLUTION_ADAPTED = "SOLUTION_ADAPTED"
    SOLUTION_UPDATED = "SOLUTION_UPDATED"
    COMMENT_ADDED = "COMMENT_ADDED"
    COMMENT_EDITED = "COMMENT_EDITED"
    COMMENT_DELETED = "COMMENT_DELETED"
    COMMENT_HIDDEN = "COMMENT_HIDDEN"
    FOLLOWED_BY_CITY = "FOLLOWED_BY_CITY"


@dataclass(frozen=True, slots=True)
class Event:
    """Something other cities may care about; feeds subscriptions, feeds and webhooks."""

    type: EventType
    occurred_at: datetime
    city: str  # the acting city
    actor: str  # the acting token's subject (a person id for people)
    subject_kind: str
    subject_id: str
    subject_city: str = ""  # the city whose problem or solution this is about
    thread_id: str = ""  # the problem or solution this is about (a comment's subject)
    hazards: tuple[Hazard, ...] = ()
    sectors: tuple[Sector, ...] = ()
    tags: tuple[str, ...] = ()
    seq: int = 0  # the log's position, given when it is appended; the resumable cursor


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Values within a field are alternatives (OR); fields combine with AND."""

    cities: tuple[str, ...] = ()
    hazards: tuple[Hazard, ...] = ()
    sectors: tuple[Sector, ...] = ()
    tags: tuple[str, ...] = ()
    types: tuple[EventType, ...] = ()
    threads: tuple[str, ...] = ()  # problem or solution ids: the event and its discussion

    def checked(self) -> EventFilter:
        for name in ("cities", "hazards", "sectors", "tags", "types", "threads"):
            limits.items(("filter", name), getattr(self, name))
        return EventFilter(
            self.cities,
            self.hazards,
            self.sectors,
            tuple(t.strip().lower() for t in self.tags),
            self.types,
            self.threads,
        )

    def matches(self, event: Event) -> bool:
        if (
            self.cities
            and event.city not in self.cities
            and (event.subject_city not in self.cities)
        ):
            return False
        if self.hazards and not set(self.hazards) & set(event.hazards):
            return False
        if self.sectors and not set(self.sectors) & set(event.sectors):
            return False
        if self.tags and not set(self.tags) & set(event.tags):
            return False
        if self.types and event.type not in self.types:
            return False
        return not self.threads or event.thread_id in self.threads


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    city: str
    url: str
    event_filter: EventFilter
    description: str | None
    secret: str  # Standard Webhooks "whsec_..." secret; shown to the admin once
    created_at: datetime
    disabled_at: datetime | None = None
    disabled_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    at: datetime
    status: int | None  # the HTTP status, None when there was no response
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    webhook_id: str
    event_seq: int
    state: str  # pending, sending, delivered, failed
    attempts: tuple[Attempt, ...] = field(default=())
    next_attempt_at: datetime | None = None
