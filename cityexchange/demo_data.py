"""Demo content: eight member cities of the resilience networks, drawn from public reports.

People are fictional; cities, programmes and figures follow what the cities published.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from cityexchange.services.taxonomy import Hazard
from cityexchange.services.taxonomy import Hazard as H
from cityexchange.services.taxonomy import OrganisationKind as O
from cityexchange.services.taxonomy import Sector as S

NETWORKS = ("Resilient Cities Network", "100 Resilient Cities")


class CitySeed(TypedDict):
    slug: str
    name: str
    country: str
    region: str
    population: int
    lat: float
    lon: float
    tz: str
    languages: tuple[str, ...]
    climate: str
    hazards: tuple[Hazard, ...]
    strategy: str
    year: int


class ProblemSeed(TypedDict):
    city: str
    title: str
    summary: str
    hazards: tuple[Hazard, ...]
    sectors: tuple[S, ...]
    tags: tuple[str, ...]
    urgency: NotRequired[str]
    affected: NotRequired[int]


class SolutionSeed(TypedDict):
    city: str
    title: str
    summary: str
    problems: tuple[str, ...]
    hazards: tuple[Hazard, ...]
    sectors: tuple[S, ...]
    tags: tuple[str, ...]
    status: str
    started: NotRequired[str]
    completed: NotRequired[str]
    cost: NotRequired[tuple[int, str, int]]
    funding: NotRequired[tuple[str, ...]]
    partners: NotRequired[tuple[str, ...]]
    outcomes: NotRequired[tuple[tuple[str, float, str | None, str | None], ...]]
    success: NotRequired[tuple[str, ...]]
    limits: NotRequired[tuple[str, ...]]
    prerequisites: NotRequired[tuple[str, ...]]
    differently: NotRequired[str]
    adapted_from: NotRequired[str]
    notes: NotRequired[str]


CITIES: list[CitySeed] = [
    {
        "slug": "rotterdam",
        "name": "Rotterdam",
        "country": "NL",
        "region": "Europe",
        "population": 655_000,
        "lat": 51.9244,
        "lon": 4.4777,
        "tz": "Europe/Amsterdam",
        "languages": ("nl", "en"),
        "climate": "Cfb",
        "hazards": (H.COASTAL_FLOOD, H.FLOOD, H.SEA_LEVEL_RISE, H.SOCIAL_COHESION),
        "strategy": "Rotterdam Resilience Strategy",
        "year": 2016,
    },
    {
        "slug": "medellin",
        "name": "Medellín",
        "country": "CO",
        "region": "Latin America",
        "population": 2_500_000,
        "lat": 6.2442,
        "lon": -75.5812,
        "tz": "America/Bogota",
        "languages": ("es",),
        "climate": "Am",
        "hazards": (H.LANDSLIDE, H.HEAT_WAVE, H.INFORMAL_SETTLEMENTS, H.POLLUTION),
        "strategy": "Medellín Resilience Strategy",
        "year": 2016,
    },
    {
        "slug": "christchurch",
        "name": "Christchurch",
        "country": "NZ",
        "region": "Oceania",
        "population": 390_000,
        "lat": -43.5321,
        "lon": 172.6362,
        "tz": "Pacific/Auckland",
        "languages": ("en", "mi"),
        "climate": "Cfb",
        "hazards": (H.EARTHQUAKE, H.FLOOD, H.SEA_LEVEL_RISE),
        "strategy": "Resilient Greater Christchurch",
        "year": 2016,
    },
    {
        "slug": "new-orleans",
        "name": "New Orleans",
        "country": "US",
        "region": "North America",
        "population": 384_000,
        "lat": 29.9511,
        "lon": -90.0715,
        "tz": "America/Chicago",
        "languages": ("en",),
        "climate": "Cfa",
        "hazards": (H.STORM, H.FLOOD, H.SEA_LEVEL_RISE, H.ECONOMIC_INEQUALITY),
        "strategy": "Resilient New Orleans",
        "year": 2015,
    },
    {
        "slug": "lagos",
        "name": "Lagos",
        "country": "NG",
        "region": "Africa",
        "population": 15_000_000,
        "lat": 6.5244,
        "lon": 3.3792,
        "tz": "Africa/Lagos",
        "languages": ("en", "yo"),
        "climate": "Aw",
        "hazards": (H.COASTAL_FLOOD, H.FLOOD, H.TRANSPORT_CONGESTION, H.RAPID_URBANIZATION),
        "strategy": "Resilient Lagos",
        "year": 2020,
    },
    {
        "slug": "semarang",
        "name": "Semarang",
        "country": "ID",
        "region": "Asia",
        "population": 1_650_000,
        "lat": -6.9667,
        "lon": 110.4167,
        "tz": "Asia/Jakarta",
        "languages": ("id", "jv"),
        "climate": "Am",
        "hazards": (H.COASTAL_FLOOD, H.FLOOD, H.WATER_SCARCITY),
        "strategy": "Resilient Semarang",
        "year": 2016,
    },
    {
        "slug": "chennai",
        "name": "Chennai",
        "country": "IN",
        "region": "Asia",
        "population": 7_000_000,
        "lat": 13.0827,
        "lon": 80.2707,
        "tz": "Asia/Kolkata",
        "languages": ("ta", "en"),
        "climate": "Aw",
        "hazards": (H.FLOOD, H.WATER_SCARCITY, H.DROUGHT, H.HEAT_WAVE),
        "strategy": "Resilient Chennai",
        "year": 2019,
    },
    {
        "slug": "melbourne",
        "name": "Melbourne",
        "country": "AU",
        "region": "Oceania",
        "population": 5_000_000,
        "lat": -37.8136,
        "lon": 144.9631,
        "tz": "Australia/Melbourne",
        "languages": ("en",),
        "climate": "Cfb",
        "hazards": (H.HEAT_WAVE, H.WILDFIRE, H.SOCIAL_COHESION),
        "strategy": "Resilient Melbourne",
        "year": 2016,
    },
]

# (city, username, name, role, organisation, kind, title); the first of a city is its CRO.
PEOPLE = [
    (
        "rotterdam",
        "a.devries",
        "Anouk de Vries",
        "cro",
        "Gemeente Rotterdam",
        O.CITY_AGENCY,
        "Chief Resilience Officer",
    ),
    (
        "rotterdam",
        "s.bakker",
        "Sem Bakker",
        "member",
        "Waterschap Hollandse Delta",
        O.UTILITY,
        "Stormwater engineer",
    ),
    (
        "rotterdam",
        "l.jansen",
        "Lotte Jansen",
        "admin",
        "Gemeente Rotterdam",
        O.CITY_AGENCY,
        "Platform administrator",
    ),
    (
        "medellin",
        "c.restrepo",
        "Camila Restrepo",
        "cro",
        "Alcaldía de Medellín",
        O.CITY_AGENCY,
        "Chief Resilience Officer",
    ),
    (
        "medellin",
        "j.gomez",
        "Julián Gómez",
        "member",
        "Jardín Botánico de Medellín",
        O.NGO,
        "Urban ecology lead",
    ),
    (
        "christchurch",
        "h.walker",
        "Hana Walker",
        "cro",
        "Christchurch City Council",
        O.CITY_AGENCY,
        "Chief Resilience Officer",
    ),
    (
        "christchurch",
        "t.ngata",
        "Tama Ngata",
        "member",
        "University of Canterbury",
        O.ACADEMIA,
        "Research fellow, disaster recovery",
    ),
    (
        "new-orleans",
        "m.broussard",
        "Marie Broussard",
        "cro",
        "City of New Orleans",
        O.CITY_AGENCY,
        "Chief Resilience Officer",
    ),
    (
        "new-orleans",
        "d.landry",
        "Darnell Landry",
        "member",
        "Sewerage & Water Board",
        O.UTILITY,
        "Green infrastructure manager",
    ),
    (
        "lagos",
        "f.adeyemi",
        "Folake Adeyemi",
        "cro",
        "Lagos State Government",
        O.CITY_AGENCY,
        "Chief Resilience Officer",
    ),
    (
        "lagos",
        "e.okafor",
        "Emeka Okafor",
        "member",
        "Lagos Business School",
        O.ACADEMIA,
        "Urban economist",
    ),
    (
        "semarang",
        "d.pratama",
        "Dewi Pratama",
        "cro",
        "Pemerintah Kota Semarang",
        O.CITY_AGENCY,
        "Chief Resilience Officer",
    ),
    (
        "semarang",
        "b.santoso",
        "Budi Santoso",
        "member",
        "Mercy Corps Indonesia",
        O.NGO,
        "Community flood programme lead",
    ),
    (
        "chennai",
        "k.raman",
        "Kavya Raman",
        "cro",
        "Greater Chennai Corporation",
        O.CITY_AGENCY,
        "Chief Resilience Officer",
    ),
    (
        "chennai",
        "a.iyer",
        "Arjun Iyer",
        "member",
        "UN-Habitat India",
        O.INTERNATIONAL_ORGANISATION,
        "Programme officer",
    ),
    (
        "melbourne",
        "s.nguyen",
        "Sophie Nguyen",
        "cro",
        "City of Melbourne",
        O.CITY_AGENCY,
        "Chief Resilience Officer",
    ),
    (
        "melbourne",
        "j.oconnor",
        "Jack O'Connor",
        "member",
        "Aurecon",
        O.BUSINESS,
        "Climate adaptation consultant",
    ),
]

PROBLEMS: dict[str, ProblemSeed] = {
    "rotterdam-cloudbursts": {
        "city": "rotterdam",
        "title": "Cloudbursts overwhelm sewers in dense districts",
        "summary": "Short, intense rain showers exceed sewer capacity in paved inner-city "
        "neighbourhoods, where there is no room for larger pipes or basins.",
        "hazards": (H.FLOOD, H.CLIMATE_CHANGE),
        "sectors": (S.WATER, S.LAND_USE),
        "tags": ("stormwater", "public-space"),
        "affected": 120_000,
    },
    "medellin-heat": {
        "city": "medellin",
        "title": "Heat islands along traffic corridors",
        "summary": "Streets and river banks lined with asphalt and concrete are several "
        "degrees hotter than green areas, with poor air quality for pedestrians.",
        "hazards": (H.HEAT_WAVE, H.POLLUTION),
        "sectors": (S.ENVIRONMENT, S.HEALTH),
        "tags": ("urban-heat", "air-quality"),
    },
    "new-orleans-rain": {
        "city": "new-orleans",
        "title": "Street flooding from heavy rain in low neighbourhoods",
        "summary": "Pumping alone cannot keep up with intense rain; pumping groundwater also "
        "drives subsidence. The city needs to live with water instead.",
        "hazards": (H.FLOOD, H.SEA_LEVEL_RISE),
        "sectors": (S.WATER, S.HOUSING),
        "tags": ("stormwater", "subsidence"),
    },
    "lagos-drains": {
        "city": "lagos",
        "title": "Seasonal flooding and blocked drains in informal settlements",
        "summary": "Each rainy season blocked drains and building on wetlands flood "
        "low-income neighbourhoods; we are looking for low-cost, community-run "
        "approaches.",
        "hazards": (H.FLOOD, H.INFORMAL_SETTLEMENTS),
        "sectors": (S.WATER, S.SOCIAL),
        "tags": ("stormwater", "community"),
        "urgency": "PRIORITY",
        "affected": 2_000_000,
    },
    "semarang-rob": {
        "city": "semarang",
        "title": "Tidal flooding (rob) worsened by land subsidence",
        "summary": "Northern Semarang sinks by several centimetres a year; tidal floods now "
        "reach homes, roads and the port area.",
        "hazards": (H.COASTAL_FLOOD, H.SEA_LEVEL_RISE),
        "sectors": (S.WATER, S.LAND_USE),
        "tags": ("subsidence", "coastal"),
        "urgency": "ACTIVE_CRISIS",
    },
    "chennai-water": {
        "city": "chennai",
        "title": "Floods one year, dry reservoirs the next",
        "summary": "After the 2015 floods, the city's reservoirs ran dry in 2019. Rainwater "
        "runs off paved land instead of recharging groundwater.",
        "hazards": (H.WATER_SCARCITY, H.DROUGHT, H.FLOOD),
        "sectors": (S.WATER,),
        "tags": ("groundwater", "stormwater"),
    },
    "melbourne-heat": {
        "city": "melbourne",
        "title": "Extreme heat days threaten vulnerable residents",
        "summary": "Heatwaves cause more deaths than any other natural hazard in Australia; "
        "the central city has too little shade.",
        "hazards": (H.HEAT_WAVE, H.PUBLIC_HEALTH),
        "sectors": (S.HEALTH, S.ENVIRONMENT),
        "tags": ("urban-heat", "canopy"),
    },
    "christchurch-rebuild": {
        "city": "christchurch",
        "title": "Keeping a city centre alive during a decade of rebuild",
        "summary": "After the 2010-2011 earthquakes demolished much of the centre, vacant lots "
        "risked emptying it of people and business for years.",
        "hazards": (H.EARTHQUAKE, H.SOCIAL_COHESION),
        "sectors": (S.LAND_USE, S.SOCIAL),
        "tags": ("recovery", "public-space"),
    },
}

SOLUTIONS: dict[str, SolutionSeed] = {
    "water-squares": {
        "city": "rotterdam",
        "title": "Water squares: public squares that store stormwater",
        "summary": "Benthemplein is a sports and play square whose basins hold about 1.7 "
        "million litres of rain during a cloudburst, then drain slowly.",
        "problems": ("rotterdam-cloudbursts",),
        "hazards": (H.FLOOD,),
        "sectors": (S.WATER, S.LAND_USE),
        "tags": ("stormwater", "public-space"),
        "status": "SCALED",
        "started": "2011-01-01",
        "completed": "2013-12-01",
        "cost": (4_000_000, "EUR", 2013),
        "funding": ("Municipality", "Water board"),
        "partners": ("De Urbanisten",),
        "outcomes": (("stormwater storage", 1_700, "m3", "Benthemplein alone"),),
        "success": ("Designed with residents and the school next door",),
        "limits": ("Needs regular cleaning of the basins",),
        "prerequisites": ("Space for a square", "Separate storm drainage nearby"),
        "differently": "Plan maintenance budgets from the start.",
    },
    "gentilly": {
        "city": "new-orleans",
        "title": "Gentilly Resilience District",
        "summary": "A district of green streets, retention parks and water plazas that slow "
        "and store rainwater, inspired by the Dutch Dialogues with Rotterdam.",
        "problems": ("new-orleans-rain",),
        "hazards": (H.FLOOD,),
        "sectors": (S.WATER,),
        "tags": ("stormwater", "green-infrastructure"),
        "status": "IMPLEMENTED",
        "started": "2016-06-01",
        "cost": (141_000_000, "USD", 2016),
        "funding": ("HUD National Disaster Resilience Competition",),
        "adapted_from": "water-squares",
        "notes": "Larger scale: a whole district instead of one square; residential lots "
        "get rain gardens.",
        "outcomes": (("stormwater storage target", 10_000_000, "gallons", None),),
    },
    "sponge-parks": {
        "city": "chennai",
        "title": "Sponge parks that recharge groundwater",
        "summary": "Neighbourhood parks rebuilt to hold runoff in ponds and recharge wells, "
        "so monsoon rain refills aquifers instead of flooding streets.",
        "problems": ("chennai-water",),
        "hazards": (H.FLOOD, H.WATER_SCARCITY),
        "sectors": (S.WATER, S.ENVIRONMENT),
        "tags": ("stormwater", "groundwater"),
        "status": "PILOT",
        "started": "2022-01-01",
        "adapted_from": "gentilly",
        "notes": "Recharge wells added: our problem is scarcity as much as floods.",
    },
    "green-corridors": {
        "city": "medellin",
        "title": "Green Corridors (Corredores Verdes)",
        "summary": "Thirty corridors of trees and plants along roads and streams, tended by "
        "gardeners trained from low-income communities.",
        "problems": ("medellin-heat",),
        "hazards": (H.HEAT_WAVE, H.POLLUTION),
        "sectors": (S.ENVIRONMENT, S.HEALTH),
        "tags": ("urban-heat", "nature-based"),
        "status": "IMPLEMENTED",
        "started": "2016-01-01",
        "completed": "2019-12-01",
        "cost": (16_300_000, "USD", 2019),
        "partners": ("Jardín Botánico de Medellín",),
        "outcomes": (("surface temperature reduction", 2, "°C", "measured along corridors"),),
        "success": ("Local gardeners employed and trained",),
    },
    "urban-forest": {
        "city": "melbourne",
        "title": "Urban Forest Strategy",
        "summary": "Raise canopy cover in the central city from 22% to 40% by 2040, with "
        "every tree mapped and open to the public.",
        "problems": ("melbourne-heat",),
        "hazards": (H.HEAT_WAVE,),
        "sectors": (S.ENVIRONMENT,),
        "tags": ("urban-heat", "canopy"),
        "status": "SCALED",
        "started": "2012-01-01",
        "outcomes": (("canopy cover target", 40, "%", "by 2040"),),
    },
    "gap-filler": {
        "city": "christchurch",
        "title": "Transitional projects on vacant lots (Gap Filler)",
        "summary": "Temporary, community-built venues, gardens and art on demolition sites "
        "kept people coming to the centre during the rebuild.",
        "problems": ("christchurch-rebuild",),
        "hazards": (H.EARTHQUAKE,),
        "sectors": (S.SOCIAL, S.LAND_USE),
        "tags": ("recovery", "public-space"),
        "status": "IMPLEMENTED",
        "started": "2010-11-01",
    },
}

ANSWERED = {
    "rotterdam-cloudbursts": ("water-squares",),
    "medellin-heat": ("green-corridors",),
    "new-orleans-rain": ("gentilly",),
}
FACED_TOO = {"lagos-drains": ("semarang", "chennai"), "medellin-heat": ("melbourne",)}

# (subject, author city, author username, body, replies as (city, username, body))
COMMENTS: list[tuple[str, str, str, str, list[tuple[str, str, str]]]] = [
    (
        "water-squares",
        "semarang",
        "b.santoso",
        "How do you keep the basins clean after the dry season? Sediment is our biggest worry.",
        [
            (
                "rotterdam",
                "s.bakker",
                "Weekly sweeping plus a yearly deep clean; budget for it from day one.",
            )
        ],
    ),
    (
        "lagos-drains",
        "rotterdam",
        "a.devries",
        "Our water squares might be too costly here, but the idea of multi-use space works at "
        "any scale. Happy to share design guidance.",
        [],
    ),
    (
        "gentilly",
        "chennai",
        "k.raman",
        "We adapted your district approach into sponge parks. Recharge wells were the key "
        "change for us.",
        [
            (
                "new-orleans",
                "d.landry",
                "Great to see. Please share the groundwater results when you have them!",
            )
        ],
    ),
]
