"""Catching up over HTTP: the feed with filters and cursors, follows and viewer.feed."""

from __future__ import annotations

from cityexchange.services import comments, problems
from cityexchange.services.principal import Principal
from cityexchange.services.taxonomy import Hazard
from tests.conftest import Api, add_city

FEED = """query($filter: EventFilter, $after: String) {
  feed(filter: $filter, first: 2, after: $after) {
    totalCount edges { cursor node { type subject { ... on Problem { title } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
FOLLOW = """mutation($kind: FollowKind!, $value: String!) {
  follow(input: {kind: $kind, value: $value}) { follows { kind value } userErrors { code field } }
}"""
VIEWER_FEED = """{ viewer { feed(first: 10) { edges { node { type
    subject { ... on Problem { title } ... on Comment { body } } } } } } }"""


def _writer(city: str) -> Principal:
    return Principal(city, "cro", frozenset({"read", "publish", "comment"}), "tests")


async def _problem(api: Api, city: str, title: str, hazard: Hazard, tags: list[str]) -> str:
    problem = await problems.publish(
        db=api.db,
        actor=_writer(city),
        draft=problems.ProblemDraft(title=title, summary="s", hazards=[hazard], tags=tags),
    )
    return problem.id


async def _comment(api: Api, city: str, problem_id: str, body: str) -> None:
    await comments.add(
        db=api.db,
        actor=_writer(city),
        subject_kind="Problem",
        subject_id=problem_id,
        parent_id=None,
        body=body,
    )


async def test_the_feed_pages_through_matching_events_with_cursors(api: Api) -> None:
    await add_city(api.db, "rotterdam")
    token = await api.token("rotterdam")
    for i in range(5):
        await _problem(api, "rotterdam", f"Flood {i}", Hazard.FLOOD, [])
        await _problem(api, "rotterdam", f"Heat {i}", Hazard.HEAT_WAVE, [])
    titles, after = [], None
    while True:
        page = (
            await api.data(FEED, {"filter": {"hazards": ["FLOOD"]}, "after": after}, token=token)
        )["feed"]
        assert page["totalCount"] == 5
        titles += [e["node"]["subject"]["title"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert titles == [f"Flood {i}" for i in range(5)]


async def test_viewer_feed_is_the_events_of_what_one_follows(api: Api) -> None:
    await add_city(api.db, "rotterdam")
    await add_city(api.db, "lagos")
    token = await api.token("lagos")
    followed = await _problem(api, "rotterdam", "Cloudbursts", Hazard.FLOOD, ["stormwater"])
    from cityexchange.schema.relay import to_global_id

    data = await api.data(
        FOLLOW, {"kind": "PROBLEM", "value": to_global_id("Problem", followed)}, token=token
    )
    assert data["follow"]["follows"][0]["kind"] == "PROBLEM"
    await api.data(FOLLOW, {"kind": "TAG", "value": "Urban-Heat"}, token=token)
    bad = await api.data(FOLLOW, {"kind": "HAZARD", "value": "LAVA"}, token=token)
    assert bad["follow"]["userErrors"][0]["code"] == "BAD_USER_INPUT"

    await _problem(api, "rotterdam", "Shade", Hazard.HEAT_WAVE, ["urban-heat"])
    await _problem(api, "rotterdam", "Not followed", Hazard.DROUGHT, [])
    await _comment(api, "rotterdam", followed, "On the followed problem")
    events = (await api.data(VIEWER_FEED, token=token))["viewer"]["feed"]["edges"]
    seen = [(e["node"]["type"], e["node"]["subject"]) for e in events]
    assert seen == [
        ("PROBLEM_PUBLISHED", {"title": "Cloudbursts"}),
        ("PROBLEM_PUBLISHED", {"title": "Shade"}),
        ("COMMENT_ADDED", {"body": "On the followed problem"}),
    ]
    other = await api.token("rotterdam")
    assert (await api.data(VIEWER_FEED, token=other))["viewer"]["feed"]["edges"] == []


async def test_a_city_follows_for_all_its_people_and_its_owner_hears_of_it(api: Api) -> None:
    from cityexchange.schema.relay import to_global_id

    await add_city(api.db, "rotterdam")
    await add_city(api.db, "lagos")
    followed = await _problem(api, "rotterdam", "Cloudbursts", Hazard.FLOOD, [])
    value = to_global_id("Problem", followed)
    follow_for_city = """mutation($value: String!) {
      follow(input: {kind: PROBLEM, value: $value, forCity: true}) {
        follows { kind forCity } userErrors { code } } }"""
    reader = await api.token("lagos", scopes=("read",), subject="reader")
    body = await api.gql(follow_for_city, {"value": value}, token=reader)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    cro = await api.token("lagos", subject="cro")
    data = await api.data(follow_for_city, {"value": value}, token=cro)
    assert data["follow"] == {"follows": [{"kind": "PROBLEM", "forCity": True}], "userErrors": []}
    await api.data(follow_for_city, {"value": value}, token=cro)  # idempotent: one event
    missing = await api.data(
        follow_for_city, {"value": to_global_id("Problem", "0" * 24)}, token=cro
    )
    assert missing["follow"]["userErrors"] == [{"code": "NOT_FOUND"}]

    await _comment(api, "rotterdam", followed, "Update on the cloudbursts")
    # Someone else in Lagos, who follows nothing personally, sees it in their feed.
    colleague = await api.token("lagos", scopes=("read",), subject="colleague")
    events = (await api.data(VIEWER_FEED, token=colleague))["viewer"]["feed"]["edges"]
    assert [e["node"]["type"] for e in events] == [
        "PROBLEM_PUBLISHED",
        "FOLLOWED_BY_CITY",
        "COMMENT_ADDED",
    ]
    # Rotterdam, the owner, sees who follows its problem.
    owner = await api.token("rotterdam")
    followed_by = """{ feed(first: 5, filter: {types: [FOLLOWED_BY_CITY]}) {
        edges { node { city { slug } subject { ... on Problem { title } } } } } }"""
    edges = (await api.data(followed_by, token=owner))["feed"]["edges"]
    assert [e["node"] for e in edges] == [
        {"city": {"slug": "lagos"}, "subject": {"title": "Cloudbursts"}}
    ]


async def test_following_a_city_that_is_not_a_member_is_not_found(api: Api) -> None:
    await add_city(api.db, "rotterdam")
    await add_city(api.db, "lagos")
    token = await api.token("lagos", scopes=("read",), subject="reader")
    missing = await api.data(FOLLOW, {"kind": "CITY", "value": "atlantis"}, token=token)
    assert missing["follow"] == {
        "follows": None,
        "userErrors": [{"code": "NOT_FOUND", "field": None}],
    }
    member = await api.data(FOLLOW, {"kind": "CITY", "value": "rotterdam"}, token=token)
    assert member["follow"]["follows"] == [{"kind": "CITY", "value": "rotterdam"}]
