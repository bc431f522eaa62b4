"""The shared vocabulary: hazards (shocks and stresses), sectors, statuses and roles."""

from __future__ import annotations

from enum import StrEnum


class Hazard(StrEnum):
    # Shocks: sudden, acute events.
    FLOOD = "FLOOD"
    COASTAL_FLOOD = "COASTAL_FLOOD"
    HEAT_WAVE = "HEAT_WAVE"
    DROUGHT = "DROUGHT"
    WILDFIRE = "WILDFIRE"
    STORM = "STORM"
    EARTHQUAKE = "EARTHQUAKE"
    TSUNAMI = "TSUNAMI"
    LANDSLIDE = "LANDSLIDE"
    VOLCANO = "VOLCANO"
    DISEASE_OUTBREAK = "DISEASE_OUTBREAK"
    INFRASTRUCTURE_FAILURE = "INFRASTRUCTURE_FAILURE"
    CYBER_ATTACK = "CYBER_ATTACK"
    TERRORISM = "TERRORISM"
    CIVIL_UNREST = "CIVIL_UNREST"
    HAZMAT_ACCIDENT = "HAZMAT_ACCIDENT"
    FINANCIAL_CRISIS = "FINANCIAL_CRISIS"
    # Stresses: chronic pressures that weaken a city day after day.
    AGING_INFRASTRUCTURE = "AGING_INFRASTRUCTURE"
    AFFORDABLE_HOUSING = "AFFORDABLE_HOUSING"
    ECONOMIC_INEQUALITY = "ECONOMIC_INEQUALITY"
    UNEMPLOYMENT = "UNEMPLOYMENT"
    POVERTY = "POVERTY"
    CRIME_AND_VIOLENCE = "CRIME_AND_VIOLENCE"
    CLIMATE_CHANGE = "CLIMATE_CHANGE"
    SEA_LEVEL_RISE = "SEA_LEVEL_RISE"
    WATER_SCARCITY = "WATER_SCARCITY"
    FOOD_INSECURITY = "FOOD_INSECURITY"
    POLLUTION = "POLLUTION"
    RAPID_URBANIZATION = "RAPID_URBANIZATION"
    INFORMAL_SETTLEMENTS = "INFORMAL_SETTLEMENTS"
    SOCIAL_COHESION = "SOCIAL_COHESION"
    MIGRATION_AND_DISPLACEMENT = "MIGRATION_AND_DISPLACEMENT"
    PUBLIC_HEALTH = "PUBLIC_HEALTH"
    TRANSPORT_CONGESTION = "TRANSPORT_CONGESTION"
    ENERGY_INSECURITY = "ENERGY_INSECURITY"
    GOVERNANCE = "GOVERNANCE"


SHOCKS = frozenset(list(Hazard)[: list(Hazard).index(Hazard.FINANCIAL_CRISIS) + 1])
STRESSES = frozenset(Hazard) - SHOCKS


class HazardKind(StrEnum):
    SHOCK = "SHOCK"
    STRESS = "STRESS"


def hazard_kind(hazard: Hazard) -> HazardKind:
    """Whether a hazard is a sudden shock or a chronic stress."""
    return HazardKind.SHOCK if hazard in SHOCKS else HazardKind.STRESS


class Sector(StrEnum):
    WATER = "WATER"
    ENERGY = "ENERGY"
    TRANSPORT = "TRANSPORT"
    HOUSING = "HOUSING"
    HEALTH = "HEALTH"
    ECONOMY = "ECONOMY"
    EDUCATION = "EDUCATION"
    ENVIRONMENT = "ENVIRONMENT"
    EMERGENCY_MANAGEMENT = "EMERGENCY_MANAGEMENT"
    GOVERNANCE = "GOVERNANCE"
    SOCIAL = "SOCIAL"
    DIGITAL = "DIGITAL"
    FOOD = "FOOD"
    LAND_USE = "LAND_USE"


class ProblemStatus(StrEnum):
    OPEN = "OPEN"
    EXPLORING = "EXPLORING"
    ADDRESSED = "ADDRESSED"
    CLOSED = "CLOSED"


class Urgency(StrEnum):
    ROUTINE = "ROUTINE"
    PRIORITY = "PRIORITY"
    ACTIVE_CRISIS = "ACTIVE_CRISIS"


class SolutionStatus(StrEnum):
    IDEA = "IDEA"
    PILOT = "PILOT"
    IMPLEMENTED = "IMPLEMENTED"
    SCALED = "SCALED"
    DISCONTINUED = "DISCONTINUED"


class IncomeGroup(StrEnum):
    """The World Bank's country income classification (by GNI per capita), of a city's country."""

    LOW = "LOW"
    LOWER_MIDDLE = "LOWER_MIDDLE"
    UPPER_MIDDLE = "UPPER_MIDDLE"
    HIGH = "HIGH"


def label(value: str) -> str:
    """A taxonomy value as words for people: FLOOD_RISK -> "Flood risk"."""
    return value.replace("_", " ").capitalize()


class Role(StrEnum):
    CRO = "cro"
    MEMBER = "member"
    ADMIN = "admin"


class OrganisationKind(StrEnum):
    CITY_AGENCY = "CITY_AGENCY"
    UTILITY = "UTILITY"
    BUSINESS = "BUSINESS"
    NGO = "NGO"
    ACADEMIC = "ACADEMIC"
    COMMUNITY_GROUP = "COMMUNITY_GROUP"
    INTERNATIONAL_ORGANISATION = "INTERNATIONAL_ORGANISATION"

    @classmethod
    def _missing_(cls, value: object) -> OrganisationKind | None:
        # Stored before ACADEMIA was renamed: people's documents still carry it.
        return cls.ACADEMIC if value == "ACADEMIA" else None
