"""The demo's people, answered-marks and comments, over the case-study library it imports
(cityexchange/data/*.jsonl, docs/import.md). People are fictional; the library's cities,
programmes and figures follow what the cities published, with a source on every record.
"""

from __future__ import annotations

from cityexchange.services.taxonomy import OrganisationKind as O

LIBRARY = ("library-europe-americas.jsonl", "library-asia-africa-oceania.jsonl")

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
        O.ACADEMIC,
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
        O.ACADEMIC,
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

# A city's other actors, (city, name, kind, sectors, hazards, public e-mail); fictional
# contacts. People whose affiliation has the same name are bound to them (as members; see
# ORGANISATION_ADMINS), and `migrate` makes the rest of the affiliations organisations.
_W, _P, _U, _N = O.UTILITY, O.CITY_AGENCY, O.ACADEMIC, O.NGO
ORGANISATIONS: list[tuple[str, str, O, tuple[str, ...], tuple[str, ...], str]] = [
    ("rotterdam", "Waterschap Hollandse Delta", _W, ("WATER",), ("FLOOD",), "info@wshd.example"),
    (
        "rotterdam",
        "Port of Rotterdam Authority",
        _P,
        ("TRANSPORT", "ECONOMY"),
        ("COASTAL_FLOOD", "SEA_LEVEL_RISE"),
        "resilience@portofrotterdam.example",
    ),
    (
        "rotterdam",
        "Erasmus University Rotterdam",
        _U,
        ("GOVERNANCE",),
        ("CLIMATE_CHANGE",),
        "climate@eur.example",
    ),
    (
        "rotterdam",
        "Rotterdams Weerwoord",
        _N,
        ("SOCIAL",),
        ("HEAT_WAVE", "FLOOD"),
        "hallo@weerwoord.example",
    ),
    (
        "medellin",
        "Empresas Públicas de Medellín",
        _W,
        ("WATER", "ENERGY"),
        ("LANDSLIDE",),
        "resiliencia@epm.example",
    ),
    ("medellin", "Metro de Medellín", _P, ("TRANSPORT",), ("LANDSLIDE",), "info@metro.example"),
    ("medellin", "Universidad EAFIT", _U, ("ENVIRONMENT",), ("HEAT_WAVE",), "urbam@eafit.example"),
    (
        "medellin",
        "Jardín Botánico de Medellín",
        _N,
        ("ENVIRONMENT",),
        ("HEAT_WAVE",),
        "ecologia@jbm.example",
    ),
    (
        "christchurch",
        "Christchurch Three Waters",
        _W,
        ("WATER",),
        ("FLOOD", "EARTHQUAKE"),
        "water@ccc.example",
    ),
    (
        "christchurch",
        "Lyttelton Port Company",
        _P,
        ("TRANSPORT",),
        ("EARTHQUAKE", "TSUNAMI"),
        "info@lpc.example",
    ),
    (
        "christchurch",
        "University of Canterbury",
        _U,
        ("EMERGENCY_MANAGEMENT",),
        ("EARTHQUAKE",),
        "recovery@canterbury.example",
    ),
    (
        "christchurch",
        "Student Volunteer Army",
        _N,
        ("SOCIAL",),
        ("EARTHQUAKE", "FLOOD"),
        "kiaora@sva.example",
    ),
    ("new-orleans", "Sewerage & Water Board", _W, ("WATER",), ("FLOOD",), "green@swbno.example"),
    (
        "new-orleans",
        "Port of New Orleans",
        _P,
        ("TRANSPORT", "ECONOMY"),
        ("STORM", "FLOOD"),
        "info@portnola.example",
    ),
    (
        "new-orleans",
        "Tulane University",
        _U,
        ("HEALTH",),
        ("STORM", "SEA_LEVEL_RISE"),
        "resilience@tulane.example",
    ),
    (
        "new-orleans",
        "Water Wise Gulf South",
        _N,
        ("WATER", "SOCIAL"),
        ("FLOOD",),
        "hello@waterwise.example",
    ),
    (
        "lagos",
        "Lagos Water Corporation",
        _W,
        ("WATER",),
        ("FLOOD", "WATER_SCARCITY"),
        "info@lwc.example",
    ),
    (
        "lagos",
        "Nigerian Ports Authority, Lagos",
        _P,
        ("TRANSPORT",),
        ("COASTAL_FLOOD",),
        "lagos@npa.example",
    ),
    (
        "lagos",
        "Lagos Business School",
        _U,
        ("ECONOMY",),
        ("RAPID_URBANIZATION",),
        "urban@lbs.example",
    ),
    (
        "lagos",
        "Slum/Shack Dwellers International Nigeria",
        _N,
        ("HOUSING",),
        ("INFORMAL_SETTLEMENTS", "FLOOD"),
        "nigeria@sdi.example",
    ),
    (
        "semarang",
        "PDAM Tirta Moedal",
        _W,
        ("WATER",),
        ("FLOOD", "WATER_SCARCITY"),
        "info@pdam.example",
    ),
    (
        "semarang",
        "Pelindo Tanjung Emas",
        _P,
        ("TRANSPORT",),
        ("COASTAL_FLOOD",),
        "info@pelindo.example",
    ),
    (
        "semarang",
        "Universitas Diponegoro",
        _U,
        ("LAND_USE",),
        ("SEA_LEVEL_RISE",),
        "pesisir@undip.example",
    ),
    ("semarang", "Mercy Corps Indonesia", _N, ("SOCIAL",), ("FLOOD",), "info@mercycorps.example"),
    (
        "chennai",
        "Chennai Metrowater",
        _W,
        ("WATER",),
        ("FLOOD", "DROUGHT"),
        "info@metrowater.example",
    ),
    (
        "chennai",
        "Chennai Port Authority",
        _P,
        ("TRANSPORT",),
        ("STORM", "COASTAL_FLOOD"),
        "info@chennaiport.example",
    ),
    ("chennai", "IIT Madras", _U, ("WATER",), ("FLOOD", "DROUGHT"), "water@iitm.example"),
    ("chennai", "Care Earth Trust", _N, ("ENVIRONMENT",), ("FLOOD",), "info@careearth.example"),
    (
        "melbourne",
        "Melbourne Water",
        _W,
        ("WATER",),
        ("FLOOD", "DROUGHT"),
        "info@melbournewater.example",
    ),
    (
        "melbourne",
        "Port of Melbourne",
        _P,
        ("TRANSPORT",),
        ("HEAT_WAVE",),
        "info@portofmelbourne.example",
    ),
    (
        "melbourne",
        "University of Melbourne",
        _U,
        ("HEALTH",),
        ("HEAT_WAVE", "WILDFIRE"),
        "heat@unimelb.example",
    ),
    (
        "melbourne",
        "Red Cross Victoria",
        _N,
        ("EMERGENCY_MANAGEMENT",),
        ("HEAT_WAVE", "WILDFIRE"),
        "vic@redcross.example",
    ),
]

# (city, username): who administers their organisation.
ORGANISATION_ADMINS = [("rotterdam", "s.bakker"), ("new-orleans", "d.landry")]

# (city, username, hazards, sectors): people who agreed to be found by `experts`.
EXPERTS = [
    ("rotterdam", "s.bakker", ("FLOOD",), ("WATER",)),
    ("christchurch", "t.ngata", ("EARTHQUAKE",), ("EMERGENCY_MANAGEMENT",)),
    ("semarang", "b.santoso", ("FLOOD",), ("SOCIAL",)),
]

# Rotterdam works on problems with three of its actors before anyone else sees them
# (docs/visibility.md): (title, summary, hazards, the peer cities it is then shared with, or
# None while it stays a DRAFT of its team).
TEAM = (
    ("Waterschap Hollandse Delta", "CONTRIBUTOR"),
    ("Port of Rotterdam Authority", "CONTRIBUTOR"),
    ("Erasmus University Rotterdam", "OBSERVER"),
)
DRAFTED: list[tuple[str, str, tuple[str, ...], tuple[str, ...] | None]] = [
    (
        "Quay walls subsiding along the Nieuwe Maas",
        "Century-old quay walls settle faster as river levels swing; the water board, the port "
        "and the university map which stretches fail first before the city shares its plan.",
        ("SEA_LEVEL_RISE", "FLOOD"),
        ("new-orleans", "christchurch"),
    ),
    (
        "Pumping capacity for Feijenoord basements after cloudbursts",
        "The team is still measuring how much pumping the district needs: a draft, seen by the "
        "team and Rotterdam's admins only.",
        ("FLOOD",),
        None,
    ),
]

ANSWERED = {
    "problem:rotterdam-cloudbursts": ("solution:rotterdam-water-squares",),
    "problem:medellin-heat": ("solution:medellin-green-corridors",),
    "problem:new-orleans-rain": ("solution:new-orleans-gentilly",),
}
FACED_TOO = {
    "problem:lagos-drains": ("semarang", "chennai"),
    "problem:medellin-heat": ("melbourne",),
}

# (subject, author city, author username, body, replies as (city, username, body))
COMMENTS: list[tuple[str, str, str, str, list[tuple[str, str, str]]]] = [
    (
        "solution:rotterdam-water-squares",
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
        "problem:lagos-drains",
        "rotterdam",
        "a.devries",
        "Our water squares might be too costly here, but the idea of multi-use space works at "
        "any scale. Happy to share design guidance.",
        [],
    ),
    (
        "solution:new-orleans-gentilly",
        "chennai",
        "k.raman",
        "Our sponge parks face the same question of where the water goes. Recharge wells were "
        "the key change for us.",
        [
            (
                "new-orleans",
                "d.landry",
                "Great to see. Please share the groundwater results when you have them!",
            )
        ],
    ),
]
