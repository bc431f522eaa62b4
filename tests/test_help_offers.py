"""offerHelp: another city answers a problem (an active crisis) with a solution or a person of
its own; the offer is tracked on the problem and told to whoever may see it."""

from __future__ import annotations

from typing import Any

import pytest

from cityexchange.schema.relay import to_global_id
from cityexchange.services import problems, solutions
from cityexchange.services.models import Affiliation, Person
from cityexchange.services.principal import Principal
from cityexchange.services.store import people as people_store
from cityexchange.services.taxonomy import Hazard, OrganisationKind, Role, Urgency
from cityexchange.services.visibility import Visibility, VisibilityLevel
from tests.conftest import Api, add_city

OFFER = """mutation($input: OfferHelpInput!) { offerHelp(input: $input) {
  problem { helpOffers { city { name } note solution { title } person { name } } }
  userErrors { code field message } } }"""
FEED = """{ feed(filter: {types: [HELP_OFFERED]}) { edges { node { type city { name }
  subject { ... on Problem { title } } } } } }"""


def _writer(city: str) -> Principal:
    return Principal(city, "cro", frozenset({"read", "publish"}), "tests")


@pytest.fixture
async def crisis(api: Api) -> dict[str, str]:
    """Pune's active crisis, and what Rotterdam and Lagos could offer it."""
    for slug in ("pune", "rotterdam", "lagos"):
        await add_city(api.db, slug)
    problem = await problems.publish(
        db=api.db,
        actor=_writer("pune"),
        draft=problems.ProblemDraft(
            "Monsoon floods", "s", [Hazard.FLOOD], urgency=Urgency.ACTIVE_CRISIS
        ),
    )
    hidden = await problems.publish(
        db=api.db,
        actor=_writer("pune"),
        draft=problems.ProblemDraft(
            "Pune only", "s", [Hazard.FLOOD], visibility=Visibility(VisibilityLevel.CITY)
        ),
    )
    ids = {"problem": to_global_id("Problem", problem.id)}
    ids["hidden"] = to_global_id("Problem", hidden.id)
    for city in ("rotterdam", "lagos"):
        solution = await solutions.publish(
            db=api.db,
            actor=_writer(city),
            draft=solutions.SolutionDraft(f"{city.title()} pumps", "s", [Hazard.FLOOD]),
        )
        person = await people_store.insert_person(
            api.db,
            Person(
                "",
                city,
                f"{city}-engineer",
                f"{city.title()} Engineer",
                Role.MEMBER,
                Affiliation("Water board", OrganisationKind.UTILITY),
            ),
        )
        ids[f"{city}-solution"] = to_global_id("Solution", solution.id)
        ids[f"{city}-person"] = to_global_id("Person", person.id)
    return ids


async def _offer(api: Api, token: str, **input: object) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.data(OFFER, {"input": input}, token=token))["offerHelp"]
    return payload


async def test_an_offer_is_tracked_on_the_problem_and_told(
    api: Api, crisis: dict[str, str]
) -> None:
    token = await api.token("rotterdam")
    offered = await _offer(
        api,
        token,
        problemId=crisis["problem"],
        solutionId=crisis["rotterdam-solution"],
        personId=crisis["rotterdam-person"],
        note="Our pumps, and the engineer who ran them in 2023",
    )
    assert offered["userErrors"] == []
    expected = {
        "city": {"name": "Rotterdam"},
        "note": "Our pumps, and the engineer who ran them in 2023",
        "solution": {"title": "Rotterdam pumps"},
        "person": {"name": "Rotterdam Engineer"},
    }
    assert offered["problem"]["helpOffers"] == [expected]
    again = await _offer(
        api,
        token,
        problemId=crisis["problem"],
        solutionId=crisis["rotterdam-solution"],
        personId=crisis["rotterdam-person"],
    )
    assert again["problem"]["helpOffers"] == [expected]  # the same offer, once
    lagos = await _offer(
        api, await api.token("lagos"), problemId=crisis["problem"], personId=crisis["lagos-person"]
    )
    assert [o["city"]["name"] for o in lagos["problem"]["helpOffers"]] == ["Rotterdam", "Lagos"]
    assert lagos["problem"]["helpOffers"][1]["solution"] is None
    pune = await api.token("pune")
    told = (await api.data(FEED, token=pune))["feed"]["edges"]
    assert [(e["node"]["city"]["name"], e["node"]["subject"]["title"]) for e in told] == [
        ("Rotterdam", "Monsoon floods"),
        ("Lagos", "Monsoon floods"),
    ]


async def test_what_cannot_be_offered_changes_nothing(api: Api, crisis: dict[str, str]) -> None:
    token = await api.token("rotterdam")

    async def refused(**input: object) -> list[tuple[str, list[str]]]:
        payload = await _offer(api, token, **input)
        assert payload["problem"] is None
        return [(e["code"], e["field"]) for e in payload["userErrors"]]

    problem = crisis["problem"]
    assert await refused(problemId=problem) == [("BAD_USER_INPUT", ["input", "solutionId"])]
    assert await refused(problemId=problem, solutionId=crisis["lagos-solution"]) == [
        ("BAD_USER_INPUT", ["input", "solutionId"])
    ]
    assert await refused(problemId=problem, personId=crisis["lagos-person"]) == [
        ("NOT_FOUND", None)
    ]
    assert await refused(problemId=problem, solutionId=problem) == [
        ("BAD_USER_INPUT", ["input", "solutionId"])
    ]
    long_note = {"personId": crisis["rotterdam-person"], "note": "x" * 2001}
    assert await refused(problemId=problem, **long_note) == [("BAD_USER_INPUT", ["input", "note"])]
    # A problem Rotterdam may not see answers as one that does not exist.
    person = crisis["rotterdam-person"]
    missing = to_global_id("Problem", "0" * 24)
    assert await refused(problemId=crisis["hidden"], personId=person) == await refused(
        problemId=missing, personId=person
    )
    own = await _offer(
        api, await api.token("pune"), problemId=problem, personId=crisis["rotterdam-person"]
    )
    assert [(e["code"], e["field"]) for e in own["userErrors"]] == [
        ("BAD_USER_INPUT", ["input", "problemId"])
    ]
    reader = await api.token("rotterdam", scopes=("read",))
    body = await api.gql(OFFER, {"input": {"problemId": problem, "personId": person}}, token=reader)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    pune = await api.token("pune")
    assert (await api.data(FEED, token=pune))["feed"]["edges"] == []


async def test_one_city_cannot_fill_the_list_nor_offer_what_the_asker_cannot_see(
    api: Api, crisis: dict[str, str]
) -> None:
    token = await api.token("rotterdam")
    board = Affiliation("Water board", OrganisationKind.UTILITY)
    people = [
        await people_store.insert_person(
            api.db, Person("", "rotterdam", f"engineer-{i}", f"Engineer {i}", Role.MEMBER, board)
        )
        for i in range(problems.MAX_HELP_OFFERS_PER_CITY + 1)
    ]
    for person in people[:-1]:
        offered = await _offer(
            api, token, problemId=crisis["problem"], personId=to_global_id("Person", person.id)
        )
        assert offered["userErrors"] == []
    over = await _offer(
        api, token, problemId=crisis["problem"], personId=to_global_id("Person", people[-1].id)
    )
    assert [(e["code"], e["field"], e["message"]) for e in over["userErrors"]] == [
        ("BAD_USER_INPUT", ["input", "problemId"], "has 5 offers of help from your city already")
    ]
    # Another city still has its places.
    lagos = await _offer(
        api, await api.token("lagos"), problemId=crisis["problem"], personId=crisis["lagos-person"]
    )
    assert lagos["userErrors"] == []
    # A draft of Lagos's own is not something Pune could read: offering it is refused.
    draft = await solutions.publish(
        db=api.db,
        actor=_writer("lagos"),
        draft=solutions.SolutionDraft(
            "Lagos draft", "s", [Hazard.FLOOD], visibility=Visibility(VisibilityLevel.DRAFT)
        ),
    )
    hidden = await _offer(
        api,
        await api.token("lagos"),
        problemId=crisis["problem"],
        solutionId=to_global_id("Solution", draft.id),
    )
    assert [(e["code"], e["field"]) for e in hidden["userErrors"]] == [
        ("BAD_USER_INPUT", ["input", "solutionId"])
    ]
