"""Each event of a subscription, and each operation over a socket, reads afresh: over a real
graphql-transport-ws socket against a live server, writes going in by HTTP mutations."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import Api, add_city
from tests.live_support import Subscriber, live_server

SELECTION = """events(filter: {types: [SOLUTION_PUBLISHED]}, after: $after) {
    subject { ... on Solution { title problems { solutions { totalCount } } } }
  }"""
SHARED = f"subscription($after: String) {{ {SELECTION} }}"
# A fragment at the root: not shared, executed on its own.
ALONE = f"subscription($after: String) {{ ...E }} fragment E on Subscription {{ {SELECTION} }}"
PUBLISH_SOLUTION = """mutation($input: PublishSolutionInput!) {
  publishSolution(input: $input) { solution { id } userErrors { message } }
}"""
PROBLEM_SOLUTIONS = (
    "query($id: ID!) { node(id: $id) { ... on Problem { solutions { totalCount } } } }"
)


@pytest.fixture
async def address(api: Api) -> AsyncIterator[str]:
    await add_city(api.db, "rotterdam")
    async with live_server(api.settings) as address:
        yield address


class _Http:
    """Mutations and queries over HTTP to the live server the sockets talk to."""

    def __init__(self, client: httpx.AsyncClient, address: str, token: str) -> None:
        self.client, self.address, self.token = client, address, token

    async def data(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(
            f"http://{self.address}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        body: dict[str, Any] = response.json()
        assert response.status_code == 200, body
        assert not body.get("errors"), body
        return body["data"]

    async def problem(self) -> str:
        data = await self.data(
            "mutation($input: PublishProblemInput!) { publishProblem(input: $input) "
            "{ problem { id } userErrors { message } } }",
            {"input": {"title": "Flooded tunnels", "summary": "s", "hazards": ["FLOOD"]}},
        )
        return data["publishProblem"]["problem"]["id"]

    async def solution(self, title: str, problem_ids: list[str]) -> None:
        data = await self.data(
            PUBLISH_SOLUTION,
            {
                "input": {
                    "title": title,
                    "summary": "s",
                    "hazards": ["FLOOD"],
                    "problemIds": problem_ids,
                }
            },
        )
        assert data["publishSolution"]["userErrors"] == []

    async def last_cursor(self) -> str:
        feed = await self.data("{ feed(first: 100) { edges { cursor } } }", {})
        return feed["feed"]["edges"][-1]["cursor"]

    async def groups(self) -> float:
        return await self._metric("cityexchange_subscription_groups")

    async def members(self) -> float:
        return await self._metric("cityexchange_subscriptions_active")

    async def _metric(self, name: str) -> float:
        text = (await self.client.get(f"http://{self.address}/metrics")).text
        found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0


def _subject(message: dict[str, Any]) -> dict[str, Any]:
    assert message["type"] == "next", message
    assert not message["payload"].get("errors"), message
    subject: dict[str, Any] = message["payload"]["data"]["events"]["subject"]
    return subject


@pytest.mark.parametrize(("document", "groups"), [(SHARED, 1), (ALONE, 0)], ids=["shared", "alone"])
async def test_each_event_reads_the_counts_of_its_moment(
    api: Api, address: str, document: str, groups: int
) -> None:
    token = await api.token("rotterdam")
    async with (
        httpx.AsyncClient() as client,
        Subscriber.connect(address, token) as subscriber,
    ):
        http = _Http(client, address, token)
        problem = await http.problem()
        await subscriber.acknowledged()
        # From a cursor, so nothing published from now on is missed, however long the
        # subscription takes to start.
        await subscriber.subscribe(document, {"after": await http.last_cursor()})
        # A first event proves the execution is live: the next ones reach it live, one after
        # the other, in the one execution (not in a member's catch-up from the log).
        await http.solution("Unrelated", [])
        assert _subject(await subscriber.next()) == {"title": "Unrelated", "problems": []}
        assert await http.groups() == groups

        await http.solution("Pumps", [problem])
        first = _subject(await subscriber.next())
        assert first["problems"] == [{"solutions": {"totalCount": 1}}]
        await http.solution("Water squares", [problem])
        second = _subject(await subscriber.next())
        assert second == {
            "title": "Water squares",
            "problems": [{"solutions": {"totalCount": 2}}],
        }
        fresh = await http.data(PROBLEM_SOLUTIONS, {"id": problem})
        assert fresh["node"] == {"solutions": {"totalCount": 2}}


async def test_each_operation_on_a_socket_reads_afresh(api: Api, address: str) -> None:
    token = await api.token("rotterdam")
    async with (
        httpx.AsyncClient() as client,
        Subscriber.connect(address, token) as socket,
    ):
        http = _Http(client, address, token)
        problem = await http.problem()
        await socket.acknowledged()

        async def count() -> int:
            await socket.subscribe(PROBLEM_SOLUTIONS, {"id": problem})
            message = await socket.next()
            assert message["type"] == "next", message
            assert (await socket.next())["type"] == "complete"
            total: int = message["payload"]["data"]["node"]["solutions"]["totalCount"]
            return total

        assert await count() == 0
        await http.solution("Pumps", [problem])
        assert await count() == 1


async def test_an_events_field_error_is_coded_for_every_member(api: Api, address: str) -> None:
    token = await api.token("rotterdam")
    document = """subscription($after: String) {
      events(filter: {types: [SOLUTION_PUBLISHED]}, after: $after) {
        subject { ... on Solution { adaptations(after: "not a cursor") { totalCount } } }
      }
    }"""
    async with (
        httpx.AsyncClient() as client,
        Subscriber.connect(address, token) as a,
        Subscriber.connect(address, token) as b,
    ):
        http = _Http(client, address, token)
        await http.problem()
        after = await http.last_cursor()  # nothing is missed, live yet or not
        for subscriber in (a, b):
            await subscriber.acknowledged()
            await subscriber.subscribe(document, {"after": after})
        async with asyncio.timeout(20):
            while await http.members() < 2:
                await asyncio.sleep(0.05)
        assert await http.groups() == 1
        await http.solution("Pumps", [])
        for subscriber in (a, b):
            message = await subscriber.next()
            assert message["type"] == "next", message
            (error,) = message["payload"]["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT", error
