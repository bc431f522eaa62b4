"""Relations loaded a list at a time (schema/related.py): what each shape of selection gets,
and what it costs in database commands, is the same as when every item loads its own."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

from cityexchange.services import comments, problems, solutions
from cityexchange.services.principal import Principal
from cityexchange.services.taxonomy import Hazard
from tests.conftest import Api, add_city, db_commands

SCOPES = frozenset({"read", "publish", "comment"})


async def _seed(api: Api, count: int) -> None:
    """`count` problems of Rotterdam, each with two solutions of Lagos, each with two
    comments of Rotterdam, the second deleted."""
    for slug in ("rotterdam", "lagos"):
        await add_city(api.db, slug)
    owner = Principal("rotterdam", "cro", SCOPES, "tests")
    helper = Principal("lagos", "cro", SCOPES, "tests")
    for i in range(count):
        problem = await problems.publish(
            db=api.db,
            actor=owner,
            draft=problems.ProblemDraft(title=f"P{i}", summary="s", hazards=[Hazard.FLOOD]),
        )
        for j in range(2):
            solution = await solutions.publish(
                db=api.db,
                actor=helper,
                draft=solutions.SolutionDraft(
                    title=f"S{i}.{j}", summary="s", hazards=[Hazard.FLOOD], problem_ids=[problem.id]
                ),
            )
            for k in range(2):
                comment = await comments.add(
                    db=api.db,
                    actor=owner,
                    subject_kind="Solution",
                    subject_id=solution.id,
                    parent_id=None,
                    body=f"C{i}.{j}.{k}",
                )
                if k == 1:
                    await comments.delete(db=api.db, actor=owner, id=comment.id)


async def _counted(
    api: Api, token: str, query: str, variables: dict[str, Any] | None = None
) -> tuple[dict[str, Any], float]:
    """The whole answer to `query`, and the database commands it took."""
    before = db_commands((await api.http.get("/metrics")).text)
    body = await api.gql(query, variables, token=token)
    return body, db_commands((await api.http.get("/metrics")).text) - before


def _titles(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["title"] for edge in connection["edges"]]


async def test_aliases_with_other_page_sizes_each_get_their_own_page(api: Api) -> None:
    await _seed(api, 3)
    token = await api.token("rotterdam")
    await api.data("{ viewer { subject } }", token=token)  # warm the realm's key cache
    body, commands = await _counted(
        api,
        token,
        """{ problems(first: 3) { edges { node { title
          one: solutions(first: 1) { edges { node { title } } }
          two: solutions(first: 2) { edges { node { title city { name } } } }
          again: solutions(first: 2) { totalCount edges { node { title } } } } } } }""",
    )
    assert "errors" not in body, body
    for edge in body["data"]["problems"]["edges"]:
        node = edge["node"]
        i = node["title"][1:]
        assert _titles(node["one"]) == [f"S{i}.1"]
        assert _titles(node["two"]) == [f"S{i}.1", f"S{i}.0"]
        assert [e["node"]["city"] for e in node["two"]["edges"]] == [{"name": "Lagos"}] * 2
        assert node["again"] == {
            "totalCount": 2,
            "edges": [{"node": {"title": f"S{i}.1"}}, {"node": {"title": f"S{i}.0"}}],
        }
    # problems; solutions of the first 1 and of the first 2 (aliased twice); their cities.
    assert commands == 4, commands


async def test_fragments_directives_and_deleted_comments(api: Api) -> None:
    await _seed(api, 2)
    token = await api.token("rotterdam")
    await api.data("{ viewer { subject } }", token=token)
    query = """query($skip: Boolean!) { problems(first: 2) { edges { node { ...P } } } }
      fragment P on Problem { title city @skip(if: $skip) { name }
        ... on Node { ... on Solution { comments(first: 1) { totalCount } } }
        solutions(first: 1) { edges { node { ... on Solution {
          city @include(if: $skip) { slug }
          comments(first: 2) { edges { node { body author { name } } } } } } } }
      }"""
    for skip in (False, True):
        body, commands = await _counted(api, token, query, {"skip": skip})
        assert "errors" not in body, body
        for edge in body["data"]["problems"]["edges"]:
            assert edge["node"].get("city", "skipped") == (
                "skipped" if skip else {"name": "Rotterdam"}
            )
            [solution] = edge["node"]["solutions"]["edges"]
            assert solution["node"].get("city", "left out") == (
                {"slug": "lagos"} if skip else "left out"
            )
            thread = solution["node"]["comments"]["edges"]
            # The deleted comment keeps its place, without body or author.
            assert [c["node"]["body"] is None for c in thread] == [False, True]
            assert [c["node"]["author"] for c in thread] == [None, None]  # "cro" is no person
        # problems, one city (Rotterdam's or Lagos's), solutions, comments: not the
        # comments of the problems, which only a fragment on Solution asks for.
        assert commands == 4, (skip, commands)


async def test_a_nested_error_stays_on_its_field(api: Api) -> None:
    await _seed(api, 2)
    token = await api.token("rotterdam")
    body = await api.gql(
        """{ problems(first: 2) { edges { node { title
             solutions(first: 1, after: "not-a-cursor") { edges { node { title } } } } } } }""",
        token=token,
    )
    assert body["data"] is None
    paths = {tuple(error["path"]) for error in body["errors"]}
    assert ("problems", "edges", 0, "node", "solutions") in paths, body["errors"]
    assert {error["extensions"]["code"] for error in body["errors"]} == {"BAD_USER_INPUT"}


async def test_an_item_from_outside_a_list_loads_its_own_relations(api: Api) -> None:
    await _seed(api, 1)
    token = await api.token("rotterdam")
    listed = await api.data("{ problems(first: 1) { edges { node { id } } } }", token=token)
    id = listed["problems"]["edges"][0]["node"]["id"]
    data = await api.data(
        """query($id: ID!) { node(id: $id) { ... on Problem { title city { name }
             solutions(first: 2) { edges { node { title comments(first: 1) {
               edges { node { body city { name } } } } } } } } } }""",
        {"id": id},
        token=token,
    )
    node = data["node"]
    assert (node["title"], node["city"]) == ("P0", {"name": "Rotterdam"})
    assert _titles(node["solutions"]) == ["S0.1", "S0.0"]
    for edge in node["solutions"]["edges"]:
        [comment] = edge["node"]["comments"]["edges"]
        assert comment["node"]["city"] == {"name": "Rotterdam"}
        assert comment["node"]["body"] == edge["node"]["title"].replace("S", "C") + ".0"


async def test_the_items_of_a_nested_page_start_no_async_work_of_their_own(api: Api) -> None:
    """Like round trips, the asyncio tasks a nested page starts do not grow with its items:
    their fields read what their list loaded, rather than each awaiting a load."""
    await _seed(api, 8)
    token = await api.token("rotterdam")
    await api.data("{ viewer { subject } }", token=token)
    query = """query($first: Int!) { problems(first: $first) { edges { node { title
      city { name } solutions(first: 2) { edges { node { title city { name }
        comments(first: 2) { edges { node { body author { name } city { name } } } }
      } } } } } } }"""
    loop = asyncio.get_running_loop()
    started = 0
    # Only tasks the requests start count, however deep: those this test's task or one of
    # theirs creates. The app's background loops (the deliverer, the change stream) wake on
    # their own and start tasks of theirs meanwhile, more often the slower the machine.
    requests: set[asyncio.Task[Any] | None] = {asyncio.current_task()}

    def counting(
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Task[Any]:
        nonlocal started
        task = asyncio.Task(coro, loop=loop, **kwargs)
        if asyncio.current_task(loop) in requests:
            started += 1
            requests.add(task)
        return task

    async def tasks_of(first: int) -> int:
        nonlocal started
        least = None
        for _ in range(3):  # the fewest of three
            started = 0
            data = await api.data(query, {"first": first}, token=token)
            assert len(data["problems"]["edges"]) == first
            least = started if least is None else min(least, started)
        assert least is not None
        return least

    loop.set_task_factory(counting)
    try:
        few, many = await tasks_of(2), await tasks_of(8)
    finally:
        loop.set_task_factory(None)
    # 6 more problems, with 12 solutions and 24 comments: one task each would be 40 more.
    assert many - few <= 2, (few, many)
