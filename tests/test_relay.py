"""Relay over HTTP: every Node implementer refetches by `node(id:)` and `nodes(ids:)`; ids
that are malformed, of another kind or of nothing are null."""

from __future__ import annotations

import base64
from typing import Any

from cityexchange.services import adoptions, cities, comments, organisations, problems, solutions
from cityexchange.services.models import AdoptionStage, Affiliation, OrganisationDraft, Person
from cityexchange.services.principal import Principal
from cityexchange.services.taxonomy import Hazard, OrganisationKind, Role
from tests.conftest import Api, add_city

SCOPES = frozenset({"read", "publish", "comment"})
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
IMPLEMENTERS = '{ __type(name: "Node") { possibleTypes { name } } }'
# One object of every kind, found through the API: (query, path to its id).
FIND = """{
  city(slug: "rotterdam") {
    id people { edges { node { id } } } organisations { edges { node { id } } }
  }
  problems(first: 1) { edges { node { id comments { edges { node { id } } } } } }
  solutions(first: 1) { edges { node { id adoptions { edges { node { id } } } } } }
  feed(first: 1) { edges { node { id } } }
}"""


def _opaque(text: str, *, padded: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(text.encode()).decode()
    return encoded if padded else encoded.rstrip("=")


async def _seed(api: Api) -> None:
    """A city with a person, a problem, a solution to it (which another city adopts), a
    comment, and their events."""
    await add_city(api.db, "rotterdam", "Rotterdam")
    person = await cities.add_person(
        db=api.db,
        person=Person(
            id="",
            city="rotterdam",
            username="m.jansen",
            name="Mila Jansen",
            role=Role.MEMBER,
            affiliation=Affiliation("Gemeente Rotterdam", OrganisationKind.CITY_AGENCY),
        ),
    )
    actor = Principal("rotterdam", person.id, SCOPES, "tests")
    await organisations.add_organisation(
        db=api.db,
        draft=OrganisationDraft("rotterdam", "Gemeente Rotterdam", OrganisationKind.CITY_AGENCY),
    )
    problem = await problems.publish(
        db=api.db,
        actor=actor,
        draft=problems.ProblemDraft(title="Floods", summary="s", hazards=[Hazard.FLOOD]),
    )
    solution = await solutions.publish(
        db=api.db,
        actor=actor,
        draft=solutions.SolutionDraft(
            title="Water squares", summary="s", hazards=[Hazard.FLOOD], problem_ids=[problem.id]
        ),
    )
    await add_city(api.db, "lagos", "Lagos", "NG")
    lagos = Principal("lagos", "tester", SCOPES, "tests")
    await adoptions.adopt(
        db=api.db, actor=lagos, solution_id=solution.id, stage=AdoptionStage.PILOTING
    )
    await comments.add(
        db=api.db,
        actor=actor,
        subject_kind="Problem",
        subject_id=problem.id,
        parent_id=None,
        body="We saw this too.",
    )


async def _one_of_each(api: Api, token: str) -> dict[str, str]:
    """The global id of one object of each Node kind, keyed by the kind's type name."""
    data = await api.data(FIND, token=token)
    problem = data["problems"]["edges"][0]["node"]

    def first(connection: dict[str, Any]) -> str:
        return connection["edges"][0]["node"]["id"]

    return {
        "City": data["city"]["id"],
        "Person": first(data["city"]["people"]),
        "Organisation": first(data["city"]["organisations"]),
        "Problem": problem["id"],
        "Comment": first(problem["comments"]),
        "Solution": first(data["solutions"]),
        "Adoption": first(data["solutions"]["edges"][0]["node"]["adoptions"]),
        "Event": first(data["feed"]),
    }


async def test_every_node_implementer_refetches_by_node_and_nodes(api: Api) -> None:
    await _seed(api)
    token = await api.token("rotterdam")
    implementers = await api.data(IMPLEMENTERS, token=token)
    kinds = {t["name"] for t in implementers["__type"]["possibleTypes"]}
    ids = await _one_of_each(api, token)
    # A new Node type must be added here, and then resolve, for this test to pass.
    assert kinds == set(ids), kinds ^ set(ids)
    for kind, id in ids.items():
        node = (await api.data(NODE, {"id": id}, token=token))["node"]
        assert node == {"__typename": kind, "id": id}
    ordered = sorted(ids.items())
    nodes = (await api.data(NODES, {"ids": [id for _, id in ordered]}, token=token))["nodes"]
    assert nodes == [{"__typename": kind, "id": id} for kind, id in ordered]


async def test_an_event_node_is_the_feeds_event(api: Api) -> None:
    await _seed(api)
    token = await api.token("rotterdam")
    feed = await api.data(
        "{ feed(first: 3) { edges { cursor node { id cursor type } } } }", token=token
    )
    for edge in feed["feed"]["edges"]:
        event = edge["node"]
        query = "query($id: ID!) { node(id: $id) { ... on Event { id cursor type } } }"
        assert (await api.data(query, {"id": event["id"]}, token=token))["node"] == event
        assert event["cursor"] == edge["cursor"]


async def test_ids_that_are_malformed_of_another_kind_or_of_nothing_are_null(api: Api) -> None:
    await _seed(api)
    token = await api.token("rotterdam")
    ids = await _one_of_each(api, token)
    problem_id = base64.urlsafe_b64decode(ids["Problem"] + "==").decode().partition(":")[2]
    comment_id = base64.urlsafe_b64decode(ids["Comment"] + "==").decode().partition(":")[2]
    unresolvable = [
        "!!!",  # not base64url
        "",
        "Q",  # not a whole byte
        _opaque("Problem"),  # no ':'
        _opaque("Problem:"),  # no id
        base64.urlsafe_b64encode(b"\xff\xfe:x").decode(),  # not UTF-8
        base64.b64encode(f"Problem:{problem_id}".encode()).decode() + "$",  # foreign character
        _opaque(f"Widget:{problem_id}"),  # not a kind of ours
        _opaque(f"Comment:{problem_id}"),  # an existing object's id under another kind
        _opaque(f"Problem:{comment_id}"),
        _opaque(f"Event:{problem_id}"),
        _opaque("Event:0001"),  # not the event's own id
        _opaque("Event:" + "9" * 40),
        _opaque("Event:999999"),  # missing
        _opaque("Problem:5f0000000000000000000000"),
        _opaque("City:atlantis"),
        _opaque("Person:5f0000000000000000000000"),
    ]
    for id in unresolvable:
        body = await api.gql(NODE, {"id": id}, token=token)
        assert body["data"] == {"node": None}, (id, body)
        assert "errors" not in body, (id, body)
    mixed = [ids["Problem"], *unresolvable, ids["Event"]]
    nodes = (await api.data(NODES, {"ids": mixed}, token=token))["nodes"]
    assert nodes[0] == {"__typename": "Problem", "id": ids["Problem"]}
    assert nodes[1:-1] == [None] * len(unresolvable)
    assert nodes[-1] == {"__typename": "Event", "id": ids["Event"]}


async def test_ids_already_held_by_clients_still_resolve(api: Api) -> None:
    """Global ids are base64url of "Kind:id" without padding; padded ones are accepted."""
    await _seed(api)
    token = await api.token("rotterdam")
    ids = await _one_of_each(api, token)
    held = {"City": "Q2l0eTpyb3R0ZXJkYW0", "Event": _opaque("Event:1")}
    assert ids["City"] == held["City"]
    for kind, id in (*held.items(), ("City", _opaque("City:rotterdam", padded=True))):
        node = (await api.data(NODE, {"id": id}, token=token))["node"]
        assert node is not None, id
        assert node["__typename"] == kind


async def test_without_read_scope_an_existing_node_looks_like_a_missing_one(api: Api) -> None:
    await _seed(api)
    reader = await api.token("rotterdam")
    ids = await _one_of_each(api, reader)
    token = await api.token("rotterdam", scopes=("publish",))
    for kind, missing in (("Problem", "5f0000000000000000000000"), ("Event", "999999")):
        answers: list[tuple[str, str]] = []
        for id in (ids[kind], _opaque(f"{kind}:{missing}")):
            body = await api.gql(NODE, {"id": id}, token=token)
            assert body["data"] == {"node": None}, body
            (error,) = body["errors"]
            answers.append((error["message"], error["extensions"]["code"]))
        assert answers[0] == answers[1], answers
        assert answers[0][1] == "FORBIDDEN"
