"""Domain models: plain, immutable dataclasses shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from cityexchange.services import limits
from cityexchange.services.taxonomy import (
    Hazard,
    IncomeGroup,
    OrganisationKind,
    ProblemStatus,
    Role,
    Sector,
    SolutionStatus,
    Urgency,
)
from cityexchange.services.text import Language
from cityexchange.services.visibility import EVERYONE, PUBLIC, TeamMember, Visibility

# The audience of what everyone may read (services/visibility.py).
EVERYONE_AUDIENCE: tuple[str, ...] = (EVERYONE,)


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
    coastal: bool | None = None  # None: not stated
    rivers: tuple[str, ...] = ()  # the major rivers the city lies on
    income_group: IncomeGroup | None = None  # its country's, World Bank


@dataclass(frozen=True, slots=True)
class Affiliation:
    """The organisation a person names for themselves, as free text (what `cityexchange
    migrate` turns into an Organisation)."""

    name: str
    kind: OrganisationKind


class OrganisationRole(StrEnum):
    ADMIN = "ADMIN"  # manages the organisation, its people and its OAuth clients
    MEMBER = "MEMBER"


@dataclass(frozen=True, slots=True)
class PublicContact:
    email: str | None = None
    url: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class OrganisationDraft:
    """An organisation as its creator describes it, before it is stored."""

    city: str | None  # None: an international organisation, working with many cities
    name: str
    kind: OrganisationKind
    sectors: tuple[Sector, ...] = ()
    hazards: tuple[Hazard, ...] = ()
    description: str | None = None
    contact: PublicContact | None = None


@dataclass(frozen=True, slots=True)
class Organisation:
    """One of a city's actors (or an international one): an agency, utility, business..."""

    id: str
    city: str | None  # None: an international organisation, working with many cities
    name: str
    kind: OrganisationKind
    created_at: datetime
    updated_at: datetime
    version: int = 1
    sectors: tuple[Sector, ...] = ()
    hazards: tuple[Hazard, ...] = ()
    description: str | None = None
    contact: PublicContact | None = None


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    city: str
    username: str
    name: str
    role: Role
    affiliation: Affiliation
    title: str | None = None
    organisation_id: str | None = None
    organisation_role: OrganisationRole | None = None  # None exactly when not bound
    listed_as_expert: bool = False  # agreed to be found by `experts`, with `contact`
    hazards: tuple[Hazard, ...] = ()  # what they work on, for `experts`
    sectors: tuple[Sector, ...] = ()
    contact: PublicContact | None = None


@dataclass(frozen=True, slots=True)
class FacedBy:
    city: str
    at: datetime


@dataclass(frozen=True, slots=True)
class HelpOffer:
    """Another city's answer to a problem (an active crisis, most often): a solution of its
    own, a person of its own who knows, or both."""

    city: str
    at: datetime
    solution_id: str | None = None
    person_id: str | None = None
    note: str | None = None


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
    language: Language = Language.EN  # given, or detected when published
    external_id: str | None = None  # the id in the library it was imported from
    stakeholder_ids: tuple[str, ...] = ()  # organisations in the exchange it involves
    visibility: Visibility = PUBLIC
    team: tuple[TeamMember, ...] = ()
    audience: tuple[str, ...] = EVERYONE_AUDIENCE  # derived: services/visibility.audience
    help_offers: tuple[HelpOffer, ...] = ()  # oldest first


@dataclass(frozen=True, slots=True)
class Cost:
    amount: float
    currency: str
    year: int
    eur: float | None = None  # derived when written (services/money.py); None: no rates for it


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


EVIDENCE_LEVELS = range(1, 6)


@dataclass(frozen=True, slots=True)
class Evidence:
    """How strongly the outcomes are shown, on Nesta's Standards of Evidence (1 to 5)."""

    level: int
    links: tuple[Link, ...] = ()


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
    partner_ids: tuple[str, ...] = ()  # organisations in the exchange that took part
    outcomes: tuple[Outcome, ...] = ()
    success_factors: tuple[str, ...] = ()
    limiting_factors: tuple[str, ...] = ()
    transferability: Transferability | None = None
    contact: Contact | None = None
    links: tuple[Link, ...] = ()
    sectors: tuple[Sector, ...] = ()
    tags: tuple[str, ...] = ()
    evidence: Evidence | None = None
    residents_served: int | None = None


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
    # Derived when written: the EUR cost over residents served, else over the largest
    # affected population of its problems; None when either is unknown.
    cost_per_resident_eur: float | None = None
    language: Language = Language.EN  # given, or detected when published
    external_id: str | None = None  # the id in the library it was imported from
    visibility: Visibility = PUBLIC
    team: tuple[TeamMember, ...] = ()
    audience: tuple[str, ...] = EVERYONE_AUDIENCE  # derived: services/visibility.audience


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
    language: Language = Language.EN  # given, or detected when added
    audience: tuple[str, ...] = EVERYONE_AUDIENCE  # its subject's


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
    ADOPTION_CHANGED = "ADOPTION_CHANGED"
    OUTCOME_REPORTED = "OUTCOME_REPORTED"
    SOLUTION_ENDORSED = "SOLUTION_ENDORSED"
    HELP_OFFERED = "HELP_OFFERED"  # another city offered a solution or a person (offerHelp)
    # A problem or solution its viewer no longer may see (its visibility or team narrowed):
    # told to those who lost it, and to no one who keeps it.
    WITHDRAWN = "WITHDRAWN"


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
    urgency: Urgency | None = None  # the problem's, for events about a problem
    # Who may see it (services/visibility.py): its subject's audience when it happened; an
    # event telling those who lost access holds the audience before, `withheld` the keys
    # that keep access.
    audience: tuple[str, ...] = EVERYONE_AUDIENCE
    withheld: tuple[str, ...] = ()


CRISIS_ASKS = (EventType.PROBLEM_PUBLISHED, EventType.PROBLEM_UPDATED)


def is_crisis_ask(event: Event) -> bool:
    """Whether `event` asks for help with an active crisis: a crisis problem published, or a
    problem updated while it is (or as it becomes) one."""
    return event.urgency is Urgency.ACTIVE_CRISIS and event.type in CRISIS_ASKS


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Values within a field are alternatives (OR); fields combine with AND."""

    cities: tuple[str, ...] = ()
    hazards: tuple[Hazard, ...] = ()
    sectors: tuple[Sector, ...] = ()
    tags: tuple[str, ...] = ()
    types: tuple[EventType, ...] = ()
    threads: tuple[str, ...] = ()  # problem or solution ids: the event and its discussion
    urgencies: tuple[Urgency, ...] = ()  # only events that carry one (about a problem) match

    def checked(self) -> EventFilter:
        for name in ("hazards", "sectors", "types", "urgencies"):
            limits.items(("filter", name), getattr(self, name))
        return EventFilter(
            limits.slugs(("filter", "cities"), self.cities),
            self.hazards,
            self.sectors,
            limits.tags(("filter", "tags"), self.tags),
            self.types,
            limits.local_ids(("filter", "thread"), self.threads),
            self.urgencies,
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
        if self.urgencies and event.urgency not in self.urgencies:
            return False
        return not self.threads or event.thread_id in self.threads


@dataclass(frozen=True, slots=True)
class Interests:
    """What a person follows (with their city's follows) and the filters they saved: an event
    about any of it matches. Unlike an EventFilter's fields, these are alternatives."""

    cities: frozenset[str] = frozenset()
    hazards: frozenset[Hazard] = frozenset()
    sectors: frozenset[Sector] = frozenset()
    tags: frozenset[str] = frozenset()
    threads: frozenset[str] = frozenset()  # problem or solution ids: they and their discussion
    filters: tuple[EventFilter, ...] = ()  # saved filters, each matching as it does alone
    # Cities whose active-crisis asks reach the viewer's city (services/crisis_alerts.py).
    crises_of: frozenset[str] = frozenset()

    def checked(self) -> Interests:
        return self  # built from stored follows and filters, each checked when it was saved

    def matches(self, event: Event) -> bool:
        return (
            event.city in self.cities
            or event.subject_city in self.cities
            or not self.hazards.isdisjoint(event.hazards)
            or not self.sectors.isdisjoint(event.sectors)
            or not self.tags.isdisjoint(event.tags)
            or event.thread_id in self.threads
            or any(f.matches(event) for f in self.filters)
            or (event.subject_city in self.crises_of and is_crisis_ask(event))
        )


@dataclass(frozen=True, slots=True)
class Mail:
    """A message to send (services/mail.py): text and HTML parts, and extra headers."""

    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict[str, str])


class DigestFrequency(StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"


@dataclass(frozen=True, slots=True)
class DigestSubscription:
    """A person's choice of an email digest (services/digests.py) and where its schedule is."""

    city: str
    subject: str  # the person's id (a token's `sub`)
    email: str
    frequency: DigestFrequency
    language: str  # one of services/digest_texts.LANGUAGES
    next_due: datetime
    sent_up_to: int  # the event log position the last digest reached
    claimed_up_to: int | None = None  # where the digest due at next_due ends, once fixed
    token: str = ""  # its links' (confirm, unsubscribe): a secret that can do only that
    confirmed: bool = False  # whether the address's owner confirmed it: only then it is sent


class WebhookFormat(StrEnum):
    """What a delivery's body is: the event as data, or a message for a chat channel."""

    STANDARD = "STANDARD"  # the event's ids and facts as JSON (services/delivery.py)
    SLACK = "SLACK"  # a Slack incoming-webhook message (Block Kit)
    TEAMS = "TEAMS"  # a Microsoft Teams Workflows webhook message (an Adaptive Card)


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
    format: WebhookFormat = WebhookFormat.STANDARD
    crisis_alerts: bool = False  # also every crisis that reaches its city (crisis_alerts.py)


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


class AdoptionStage(StrEnum):
    """How far a city got with another city's solution, in order; ABANDONED says it stopped."""

    INTERESTED = "INTERESTED"
    PLANNING = "PLANNING"
    PILOTING = "PILOTING"
    ADOPTED = "ADOPTED"
    ABANDONED = "ABANDONED"


# The stages at which a city counts as having taken a solution up (its `adoptionCount`).
TAKEN_UP = frozenset({AdoptionStage.PILOTING, AdoptionStage.ADOPTED})


@dataclass(frozen=True, slots=True)
class StageChange:
    stage: AdoptionStage
    at: datetime
    by: str  # the acting token's subject (a person id for people)
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Adoption:
    """One city's take-up of another city's solution: one per (solution, city)."""

    id: str
    solution_id: str
    solution_city: str
    city: str
    stages: tuple[StageChange, ...]  # oldest first; never empty
    adapted_solution_id: str | None  # the adopting city's own adapted version, if any
    created_at: datetime
    updated_at: datetime
    audience: tuple[str, ...] = EVERYONE_AUDIENCE  # its solution's

    @property
    def stage(self) -> AdoptionStage:
        return self.stages[-1].stage


@dataclass(frozen=True, slots=True)
class OutcomeReport:
    """One dated measurement of a solution (by its city) or of an adoption (by the adopter)."""

    id: str
    subject_kind: str  # "Solution" or "Adoption"
    subject_id: str
    solution_id: str
    city: str
    by: str
    metric: str
    value: float
    measured_on: date
    reported_at: datetime
    unit: str | None = None
    baseline: float | None = None
    target: float | None = None
    note: str | None = None
    audience: tuple[str, ...] = EVERYONE_AUDIENCE  # its solution's


class EndorsementKind(StrEnum):
    USEFUL = "USEFUL"  # worth knowing about
    VALIDATED = "VALIDATED"  # the endorsing city checked that it works


@dataclass(frozen=True, slots=True)
class Endorsement:
    id: str
    solution_id: str
    city: str
    by: str
    kind: EndorsementKind
    note: str | None
    created_at: datetime
    updated_at: datetime
    audience: tuple[str, ...] = EVERYONE_AUDIENCE  # its solution's
