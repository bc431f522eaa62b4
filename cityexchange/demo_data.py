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
