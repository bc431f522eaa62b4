"""Organisations over HTTP against the real database: creating and editing them, who may,
their people, the clients bound to them, `migrate`, and `experts`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from joserfc import jws

from cityexchange.auth import admin
from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.realms import RealmRegistry
from cityexchange.auth.records import ClientType
from cityexchange.auth.tokens import TokenVerifier, issue_access_token
from cityexchange.services import cities
from cityexchange.services.ids import global_id, parse_global_id
from cityexchange.services.models import Affiliation, Person
from cityexchange.services.taxonomy import OrganisationKind, Role
from tests.conftest import Api, add_city, run_cli
from tests.oauth_support import Realm, oauth_client

ORGANISATION = """
id name kind international version sectors hazards description
contact { email url phone } city { slug }
"""
CREATE = f"""
mutation($input: CreateOrganisationInput!) {{
  createOrganisation(input: $input) {{
    organisation {{ {ORGANISATION} }}
    userErrors {{ code field message }}
  }}
}}"""
UPDATE = f"""
mutation($input: UpdateOrganisationInput!) {{
  updateOrganisation(input: $input) {{
    organisation {{ {ORGANISATION} }}
    userErrors {{ code field message }}
  }}
}}"""
BIND = """
mutation($input: SetPersonOrganisationInput!) {
  setPersonOrganisation(input: $input) {
    person { id organisationRole organisation { name } }
    userErrors { code field message }
  }
}"""
EXPERTS = """
query($hazards: [Hazard!], $sectors: [Sector!], $first: Int, $after: String) {
  experts(hazards: $hazards, sectors: $sectors, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      __typename
      ... on Organisation { id name contact { email } }
      ... on Person { id name publicContact { email } }
    } }
  }
}"""
PROFILE = """
mutation($input: UpdateViewerProfileInput!) {
  updateViewerProfile(input: $input) {
    person { listedAsExpert hazards sectors publicContact { email } }
    userErrors { code field message }
  }
}"""
UNKNOWN_ORGANISATION = "T3JnYW5pc2F0aW9uOjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMA"  # a well-formed id


def _codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or []]


async def _create(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    data = await api.data(CREATE, {"input": {"kind": "UTILITY", **fields}}, token=token)
    return data["createOrganisation"]


async def _person(api: Api, city: str, username: str, affiliation: str = "City") -> Person:
    return await cities.add_person(
        db=api.db,
        person=Person(
            id="",
            city=city,
            username=username,
            name=username.title(),
            role=Role.MEMBER,
            affiliation=Affiliation(affiliation, OrganisationKind.CITY_AGENCY),
        ),
    )


def _global(kind: str, id: str) -> str:
    return global_id(kind, id)


def _local(opaque: str) -> str:
    parsed = parse_global_id(opaque)
    assert parsed is not None
    return parsed[1]


async def _member_token(api: Api, person: Person, organisation: str | None) -> str:
    """A person's token (read publish comment) acting for `organisation`."""
    registry = RealmRegistry(api.db, api.settings.public_url)
    issued = await issue_access_token(
        registry,
        registry.realm(person.city),
        subject=person.id,
        scopes=("read", "publish", "comment"),
        client_id="tests",
        audience=api.settings.audience,
        ttl_seconds=900,
        organisation=organisation,
    )
    return issued.access_token


async def test_a_city_admin_creates_and_edits_with_versions(api: Api) -> None:
    await add_city(api.db, "rotterdam", "Rotterdam")
    await add_city(api.db, "lagos", "Lagos", "NG")
    rotterdam, lagos = await api.token("rotterdam"), await api.token("lagos")

    created = await _create(
        api,
        rotterdam,
        name="Waterschap Hollandse Delta",
        sectors=["WATER"],
        hazards=["FLOOD"],
        contact={"email": "info@wshd.example", "phone": "+31 88 974 3000"},
    )
    assert created["userErrors"] == []
    organisation = created["organisation"]
    assert organisation["city"] == {"slug": "rotterdam"}
    assert organisation["version"] == 1
    assert organisation["international"] is False
    assert organisation["contact"] == {
        "email": "info@wshd.example",
        "url": None,
        "phone": "+31 88 974 3000",
    }

    edit = {"id": organisation["id"], "version": 1, "description": "Flood defences, south bank"}
    updated = (await api.data(UPDATE, {"input": edit}, token=rotterdam))["updateOrganisation"]
    assert updated["userErrors"] == []
    assert updated["organisation"]["version"] == 2
    assert updated["organisation"]["description"] == "Flood defences, south bank"

    stale = (await api.data(UPDATE, {"input": edit}, token=rotterdam))["updateOrganisation"]
    assert stale["organisation"] is None
    assert [(e["code"], e["field"]) for e in stale["userErrors"]] == [
        ("CONFLICT", ["input", "version"])
    ]

    # Another city's admin may not edit it: FORBIDDEN, and nothing changed.
    foreign = await api.gql(UPDATE, {"input": {**edit, "version": 2}}, token=lagos)
    assert _codes(foreign) == ["FORBIDDEN"]
    node = await api.data(
        f'{{ node(id: "{organisation["id"]}") {{ ... on Organisation {{ version }} }} }}',
        token=lagos,
    )
    assert node["node"] == {"version": 2}

    # A token without admin may not create one; every city reads them.
    reader = await api.token("rotterdam", ("read", "publish"))
    refused = await api.gql(CREATE, {"input": {"name": "X", "kind": "NGO"}}, token=reader)
    assert _codes(refused) == ["FORBIDDEN"]
    listed = await api.data(
        '{ city(slug: "rotterdam") { organisations { totalCount edges { node { name } } } } }',
        token=lagos,
    )
    assert listed["city"]["organisations"]["totalCount"] == 1


async def test_unknown_ids_and_bad_input_are_user_errors_never_500(api: Api) -> None:
    await add_city(api.db, "rotterdam", "Rotterdam")
    token = await api.token("rotterdam")

    missing = await api.data(
        UPDATE, {"input": {"id": UNKNOWN_ORGANISATION, "version": 1, "name": "X"}}, token=token
    )
    assert [e["code"] for e in missing["updateOrganisation"]["userErrors"]] == ["NOT_FOUND"]
    node = await api.data(f'{{ node(id: "{UNKNOWN_ORGANISATION}") {{ id }} }}', token=token)
    assert node["node"] is None
    not_an_organisation = await api.data(
        UPDATE, {"input": {"id": "bm9wZQ", "version": 1}}, token=token
    )
    assert not_an_organisation["updateOrganisation"]["userErrors"][0]["field"] == ["input", "id"]

    for fields, field in (
        ({"name": "x" * 201}, ["input", "name"]),
        ({"name": "   "}, ["input", "name"]),
        ({"name": "Ok", "description": "d" * 1001}, ["input", "description"]),
        ({"name": "Ok", "contact": {"email": "not an address"}}, ["input", "contact", "email"]),
        ({"name": "Ok", "contact": {"url": "javascript:alert(1)"}}, ["input", "contact", "url"]),
        ({"name": "Ok", "hazards": ["FLOOD"] * 51}, ["input", "hazards"]),
    ):
        result = await _create(api, token, **fields)
        assert result["organisation"] is None
        assert [(e["code"], e["field"]) for e in result["userErrors"]] == [
            ("BAD_USER_INPUT", field)
        ]

    assert (await _create(api, token, name="Port Authority"))["userErrors"] == []
    twice = await _create(api, token, name="port  AUTHORITY")  # the same name, written otherwise
    assert [e["code"] for e in twice["userErrors"]] == ["BAD_USER_INPUT"]

    # An unknown kind does not coerce: a coded error, not a server error.
    response = await api.http.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": {"name": "X", "kind": "GUILD"}}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code < 500
    assert _codes(response.json()) in (["BAD_USER_INPUT"], ["GRAPHQL_VALIDATION_FAILED"])


async def test_people_are_bound_and_an_organisations_admin_manages_it(api: Api) -> None:
    await add_city(api.db, "rotterdam", "Rotterdam")
    city_admin = await api.token("rotterdam")
    utility = (await _create(api, city_admin, name="Waterschap"))["organisation"]
    port = (await _create(api, city_admin, name="Port", kind="CITY_AGENCY"))["organisation"]
    anouk, sem, lotte = [await _person(api, "rotterdam", u) for u in ("anouk", "sem", "lotte")]

    bound = await api.data(
        BIND,
        {
            "input": {
                "personId": _global("Person", anouk.id),
                "organisationId": utility["id"],
                "role": "ADMIN",
            }
        },
        token=city_admin,
    )
    assert bound["setPersonOrganisation"]["person"]["organisationRole"] == "ADMIN"

    # Anouk, through a token for the utility, edits it and brings Sem in.
    anouk_token = await _member_token(api, anouk, _local(utility["id"]))
    edit = {"id": utility["id"], "version": 1, "hazards": ["FLOOD", "STORM"]}
    edited = await api.data(UPDATE, {"input": edit}, token=anouk_token)
    assert edited["updateOrganisation"]["organisation"]["hazards"] == ["FLOOD", "STORM"]
    sem_in = {"personId": _global("Person", sem.id), "organisationId": utility["id"]}
    joined = await api.data(BIND, {"input": sem_in}, token=anouk_token)
    assert joined["setPersonOrganisation"]["person"] == {
        "id": _global("Person", sem.id),
        "organisationRole": "MEMBER",
        "organisation": {"name": "Waterschap"},
    }

    # She may not act on another organisation, nor as its admin without a token for it.
    on_port = await api.gql(UPDATE, {"input": {"id": port["id"], "version": 1}}, token=anouk_token)
    assert _codes(on_port) == ["FORBIDDEN"]
    lotte_to_port = {"personId": _global("Person", lotte.id), "organisationId": port["id"]}
    assert _codes(await api.gql(BIND, {"input": lotte_to_port}, token=anouk_token)) == ["FORBIDDEN"]
    untied = await _member_token(api, anouk, None)
    edit = {"id": utility["id"], "version": 2, "name": "Renamed"}
    assert _codes(await api.gql(UPDATE, {"input": edit}, token=untied)) == ["FORBIDDEN"]
    # Sem, a member, may not manage it.
    sem_token = await _member_token(api, sem, _local(utility["id"]))
    assert _codes(await api.gql(UPDATE, {"input": edit}, token=sem_token)) == ["FORBIDDEN"]

    people = await api.data(
        f"""{{ node(id: "{utility["id"]}") {{ ... on Organisation {{
            people {{ totalCount edges {{ node {{ name organisationRole }} }} }} }} }} }}""",
        token=city_admin,
    )
    assert people["node"]["people"]["totalCount"] == 2
    assert [e["node"]["name"] for e in people["node"]["people"]["edges"]] == ["Anouk", "Sem"]
    unknown = {"personId": _global("Person", sem.id), "organisationId": UNKNOWN_ORGANISATION}
    result = await api.data(BIND, {"input": unknown}, token=city_admin)
    assert [e["code"] for e in result["setPersonOrganisation"]["userErrors"]] == ["NOT_FOUND"]


async def test_international_organisations_are_edited_by_their_own_admins(api: Api) -> None:
    await add_city(api.db, "chennai", "Chennai", "IN")
    await add_city(api.db, "lagos", "Lagos", "NG")
    chennai = await api.token("chennai")
    created = await _create(
        api, chennai, name="UN-Habitat", kind="INTERNATIONAL_ORGANISATION", international=True
    )
    habitat = created["organisation"]
    assert habitat["international"] is True
    assert habitat["city"] is None
    arjun = await _person(api, "chennai", "arjun")
    edit = {"id": habitat["id"], "version": 1, "description": "Urban resilience programme"}
    assert _codes(await api.gql(UPDATE, {"input": edit}, token=chennai)) == ["FORBIDDEN"]
    make_admin = {
        "personId": _global("Person", arjun.id),
        "organisationId": habitat["id"],
        "role": "ADMIN",
    }
    await api.data(BIND, {"input": make_admin}, token=chennai)
    arjun_token = await _member_token(api, arjun, _local(habitat["id"]))
    edited = await api.data(UPDATE, {"input": edit}, token=arjun_token)
    assert edited["updateOrganisation"]["organisation"]["version"] == 2
    # Once it has an admin, another city's admin cannot bring their people into it: whoever
    # acts for it holds its team memberships everywhere (docs/visibility.md).
    ada = await _person(api, "lagos", "ada")
    join = {"personId": _global("Person", ada.id), "organisationId": habitat["id"]}
    lagos = await api.token("lagos")
    assert _codes(await api.gql(BIND, {"input": join}, token=lagos)) == ["FORBIDDEN"]
    assert _codes(await api.gql(BIND, {"input": join}, token=arjun_token)) == ["FORBIDDEN"]


async def test_migrate_makes_organisations_of_affiliations_once(api: Api) -> None:
    await add_city(api.db, "rotterdam", "Rotterdam")
    await add_city(api.db, "lagos", "Lagos", "NG")
    for city, username, affiliation in (
        ("rotterdam", "a", "Gemeente Rotterdam"),
        ("rotterdam", "b", "gemeente  rotterdam"),  # the same organisation
        ("rotterdam", "c", "Waterschap"),
        ("lagos", "d", "Gemeente Rotterdam"),  # another city's: another organisation
    ):
        await _person(api, city, username, affiliation)

    code, out, err = await run_cli(api, "migrate")
    assert code == 0, err
    assert json.loads(out) == {"database": api.settings.db_name, "indexes": "up to date"}
    assert "3 added, 4 people linked" in err
    assert await api.db.db["organisations"].count_documents({}) == 3
    assert await api.db.people.count_documents({"organisationId": None}) == 0

    code, _, err = await run_cli(api, "migrate")
    assert code == 0, err
    assert "0 added, 0 people linked" in err
    assert await api.db.db["organisations"].count_documents({}) == 3

    token = await api.token("rotterdam")
    listed = await api.data(
        """{ city(slug: "rotterdam") { organisations { edges { node {
            name people { edges { node { name organisation { name } } } } } } } } }""",
        token=token,
    )
    names = [e["node"]["name"] for e in listed["city"]["organisations"]["edges"]]
    assert names == ["Gemeente Rotterdam", "Waterschap"]
    first = listed["city"]["organisations"]["edges"][0]["node"]["people"]["edges"]
    assert [p["node"]["organisation"] for p in first] == [{"name": "Gemeente Rotterdam"}] * 2


async def test_the_organisation_add_command(api: Api) -> None:
    await add_city(api.db, "rotterdam", "Rotterdam")
    code, out, err = await run_cli(
        api,
        "organisation",
        "add",
        "--city",
        "rotterdam",
        "--name",
        "Port of Rotterdam",
        "--kind",
        "city_agency",
        "--sector",
        "transport",
        "--hazard",
        "coastal_flood",
        "--email",
        "port@example.org",
    )
    assert code == 0, err
    added = json.loads(out)
    assert (added["city"], added["kind"], added["sectors"]) == (
        "rotterdam",
        "CITY_AGENCY",
        ["TRANSPORT"],
    )
    code, _, err = await run_cli(
        api, "organisation", "add", "--city", "nowhere", "--name", "X", "--kind", "NGO"
    )
    assert code == 1
    assert "City 'nowhere' not found" in err


async def test_a_client_bound_to_an_organisation_acts_for_it(
    api: Api, rotterdam: Realm, store: OAuthStore
) -> None:
    city_admin = await api.token("rotterdam")
    utility = (await _create(api, city_admin, name="Waterschap"))["organisation"]
    registered = await asyncio.to_thread(
        admin.register_client,
        store,
        city="rotterdam",
        name="Waterschap portal",
        client_type=ClientType.CONFIDENTIAL,
        grants=["client_credentials"],
        redirect_uris=[],
        scopes=["read", "publish"],
        organisation=_local(utility["id"]),
    )
    assert registered.secret is not None
    async with oauth_client(
        api.http._transport,
        client_id=registered.client.client_id,
        client_secret=registered.secret,
    ) as client:
        token = await client.fetch_token(
            f"{rotterdam.issuer}/token", grant_type="client_credentials", scope="read"
        )
    access = token["access_token"]
    claims = json.loads(jws.extract_compact(access.encode()).payload)
    assert claims["org"] == _local(utility["id"])
    verifier = TokenVerifier(RealmRegistry(api.db, api.settings.public_url), api.settings.audience)
    principal = await verifier.verify(access)
    assert principal.organisation == _local(utility["id"])
    viewer = await api.data("{ viewer { organisation { name } } }", token=access)
    assert viewer["viewer"]["organisation"] == {"name": "Waterschap"}

    # The realm's other clients' tokens act for no organisation.
    async with oauth_client(
        api.http._transport, client_id=rotterdam.portal_id, client_secret=rotterdam.portal_secret
    ) as client:
        plain = await client.fetch_token(
            f"{rotterdam.issuer}/token", grant_type="client_credentials", scope="read"
        )
    assert "org" not in json.loads(jws.extract_compact(plain["access_token"].encode()).payload)


REGISTER = """
mutation($input: RegisterClientInput!) {
  registerClient(input: $input) {
    client { clientId organisationId scopes }
    userErrors { code field message }
  }
}"""


async def test_an_organisations_admin_registers_clients_for_it_only(api: Api) -> None:
    await add_city(api.db, "rotterdam", "Rotterdam")
    city_admin = await api.token("rotterdam")
    utility = (await _create(api, city_admin, name="Waterschap"))["organisation"]
    port = (await _create(api, city_admin, name="Port"))["organisation"]
    anouk = await _person(api, "rotterdam", "anouk")
    make_admin = {
        "personId": _global("Person", anouk.id),
        "organisationId": utility["id"],
        "role": "ADMIN",
    }
    await api.data(BIND, {"input": make_admin}, token=city_admin)
    token = await _member_token(api, anouk, _local(utility["id"]))

    def client(organisation: str, scope: str = "read publish") -> dict[str, Any]:
        return {
            "input": {
                "name": "portal",
                "type": "CONFIDENTIAL",
                "grants": ["client_credentials"],
                "scope": scope,
                "organisationId": organisation,
            }
        }

    own = await api.data(REGISTER, client(utility["id"]), token=token)
    assert own["registerClient"]["client"]["organisationId"] == utility["id"]
    assert _codes(await api.gql(REGISTER, client(port["id"]), token=token)) == ["FORBIDDEN"]
    with_admin = await api.data(REGISTER, client(utility["id"], "read admin"), token=city_admin)
    assert [e["field"] for e in with_admin["registerClient"]["userErrors"]] == [["input", "scope"]]
    unbound = {"input": {**client(utility["id"])["input"], "organisationId": None}}
    assert _codes(await api.gql(REGISTER, unbound, token=token)) == ["FORBIDDEN"]
    missing = await api.data(REGISTER, client(UNKNOWN_ORGANISATION), token=city_admin)
    assert [e["code"] for e in missing["registerClient"]["userErrors"]] == ["NOT_FOUND"]


async def test_experts_lists_organisations_and_only_people_who_opted_in(api: Api) -> None:
    await add_city(api.db, "rotterdam", "Rotterdam")
    await add_city(api.db, "lagos", "Lagos", "NG")
    rotterdam, lagos = await api.token("rotterdam"), await api.token("lagos")
    await _create(
        api,
        rotterdam,
        name="Waterschap",
        hazards=["FLOOD"],
        sectors=["WATER"],
        contact={"email": "info@ws.example"},
    )
    await _create(api, lagos, name="Lagos Heat Lab", hazards=["HEAT_WAVE"], sectors=["HEALTH"])
    listed = await _person(api, "rotterdam", "sem")
    quiet = await _person(api, "lagos", "emeka")
    for person, listed_as_expert in ((listed, True), (quiet, False)):
        changes = {
            "listedAsExpert": listed_as_expert,
            "hazards": ["FLOOD"],
            "sectors": ["WATER"],
            "contact": {"email": f"{person.username}@example.org"},
        }
        token = await _member_token(api, person, None)
        saved = await api.data(PROFILE, {"input": changes}, token=token)
        assert saved["updateViewerProfile"]["person"]["listedAsExpert"] is listed_as_expert

    found = (await api.data(EXPERTS, {"hazards": ["FLOOD"]}, token=lagos))["experts"]
    assert found["totalCount"] == 2
    assert [(e["node"]["__typename"], e["node"]["name"]) for e in found["edges"]] == [
        ("Organisation", "Waterschap"),
        ("Person", "Sem"),
    ]
    assert found["edges"][1]["node"]["publicContact"] == {"email": "sem@example.org"}
    # Emeka's profile is kept, but not shown: he did not agree to be listed.
    shown = "... on Person { publicContact { email } }"
    emeka = await api.data(
        f'{{ node(id: "{_global("Person", quiet.id)}") {{ {shown} }} }}', token=rotterdam
    )
    assert emeka["node"] == {"publicContact": None}
    heat = (await api.data(EXPERTS, {"hazards": ["HEAT_WAVE"]}, token=lagos))["experts"]
    assert [e["node"]["name"] for e in heat["edges"]] == ["Lagos Heat Lab"]
    both = await api.data(EXPERTS, {"hazards": ["FLOOD"], "sectors": ["HEALTH"]}, token=lagos)
    assert both["experts"]["totalCount"] == 0


async def test_experts_pages_with_stable_cursors(api: Api) -> None:
    await add_city(api.db, "rotterdam", "Rotterdam")
    token = await api.token("rotterdam")
    for n in range(3):
        await _create(api, token, name=f"Utility {n}", hazards=["DROUGHT"])
    for n in range(3):
        person = await _person(api, "rotterdam", f"expert{n}")
        own = await _member_token(api, person, None)
        await api.data(
            PROFILE, {"input": {"listedAsExpert": True, "hazards": ["DROUGHT"]}}, token=own
        )

    seen: list[str] = []
    after: str | None = None
    while True:
        page = (
            await api.data(
                EXPERTS, {"hazards": ["DROUGHT"], "first": 2, "after": after}, token=token
            )
        )["experts"]
        assert page["totalCount"] == 6
        seen += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"Utility {n}" for n in range(3)] + [f"Expert{n}" for n in range(3)]

    forged = await api.gql(EXPERTS, {"after": "bm9wZQ"}, token=token)
    assert _codes(forged) == ["BAD_USER_INPUT"]
    too_many = await api.gql(EXPERTS, {"first": 101}, token=token)
    assert _codes(too_many) == ["BAD_USER_INPUT"]
