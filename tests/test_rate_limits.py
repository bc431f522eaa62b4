"""Rate limits over HTTP: a budget of cost points per (city, client) shared by replicas,
write budgets per city, and a per-address throttle for requests without a token."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager

from cityexchange.app import budgets, create_app
from cityexchange.schema.context import Context
from cityexchange.schema.root import build_schema
from cityexchange.services.principal import Principal
from cityexchange.services.rate_limits import MAX_TRACKED, Budget, RateLimiter, Resource
from cityexchange.settings import Settings
from tests.conftest import Api
from tests.queries import ADD_COMMENT, PUBLISH_PROBLEM, problem_input

pytestmark = pytest.mark.usefixtures("two_cities")

# Cost 2,100: 21 points of a budget of 100.
PAGE = "{ problems(first: 100) { edges { node { body } } } }"


@asynccontextmanager
async def replica(api: Api, **limits: int) -> AsyncIterator[Api]:
    """Another API process on the same database, with the given budgets."""
    settings = dataclasses.replace(api.settings, **limits)
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield Api(http=http, db=api.db, settings=settings)


async def post(api: Api, query: str, token: str | None, **variables: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await api.http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


async def test_every_response_says_where_the_budget_stands(api: Api) -> None:
    token = await api.token("rotterdam")
    response = await post(api, "{ rateLimit { cost limit remaining used resetAt } }", token)
    rate = response.json()["data"]["rateLimit"]
    assert (rate["cost"], rate["limit"]) == (1, 5_000)
    assert rate["used"] >= 1
    assert rate["remaining"] == rate["limit"] - rate["used"]
    assert response.headers["x-ratelimit-limit"] == "5000"
    assert response.headers["x-ratelimit-remaining"] == str(rate["remaining"])
    assert response.headers["x-ratelimit-used"] == str(rate["used"])
    assert response.headers["x-ratelimit-resource"] == "graphql"
    assert int(response.headers["x-ratelimit-reset"]) > 0


async def test_a_spent_budget_is_429_until_the_window_ends(api: Api) -> None:
    async with replica(api, rate_limit_points=100) as limited:
        token = await limited.token("rotterdam")
        for _ in range(4):
            assert (await post(limited, PAGE, token)).status_code == 200
        response = await post(limited, PAGE, token)
        assert response.status_code == 429
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        retry_after = error["extensions"]["retryAfter"]
        assert 0 < retry_after <= 3600
        assert response.headers["retry-after"] == str(retry_after)
        assert response.headers["x-ratelimit-remaining"] == "16"
        # A cheaper document still fits what is left; another city's budget is its own.
        cheap = await post(limited, "{ viewer { subject } }", token)
        assert cheap.status_code == 200
        other = await post(limited, PAGE, await limited.token("lagos"))
        assert other.status_code == 200


async def test_replicas_share_one_budget(api: Api) -> None:
    async with (
        replica(api, rate_limit_points=100) as one,
        replica(api, rate_limit_points=100) as two,
    ):
        token = await one.token("rotterdam")
        for _ in range(4):
            assert (await post(one, PAGE, token)).status_code == 200
        # Each replica syncs its spending about once a second: the other one learns of it
        # (seen in its headers: one point per cheap request), then refuses what would
        # overspend the shared budget.
        async with asyncio.timeout(15):
            while True:
                cheap = await post(two, "{ viewer { subject } }", token)
                if int(cheap.headers["x-ratelimit-used"]) >= 4 * 21:
                    break
                await asyncio.sleep(0.2)
        refused = await post(two, PAGE, token)
        assert refused.status_code == 429
        assert int(refused.headers["x-ratelimit-used"]) <= 100


async def test_write_budgets_per_city(api: Api) -> None:
    async with replica(api, comments_per_hour=3, publications_per_hour=2) as limited:
        token = await limited.token("rotterdam")
        for i in range(2):
            response = await post(
                limited, PUBLISH_PROBLEM, token, input=problem_input(f"Problem {i}")
            )
            assert response.json()["data"]["publishProblem"]["userErrors"] == []
        problem_id = response.json()["data"]["publishProblem"]["problem"]["id"]
        refused = await post(limited, PUBLISH_PROBLEM, token, input=problem_input("Third"))
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert refused.headers["x-ratelimit-resource"] == "publications"
        # Adoption stages, outcome reports and endorsements draw on the same budget: the
        # charge is made before the resolver runs, so even an invalid one is refused here.
        for record in (
            'adoptSolution(input: {solutionId: "x", stage: INTERESTED}) { userErrors { code } }',
            'endorseSolution(input: {solutionId: "x", kind: USEFUL}) { userErrors { code } }',
        ):
            refused = await post(limited, f"mutation {{ {record} }}", token)
            assert refused.status_code == 429, record
            assert refused.headers["x-ratelimit-resource"] == "publications"

        comment = {"subjectId": problem_id, "body": "We see this too."}
        for _ in range(3):
            assert (await post(limited, ADD_COMMENT, token, input=comment)).status_code == 200
        # Aliases count one each: two comments in one document are over the last one left.
        many = "mutation($input: AddCommentInput!) { a: addComment(input: $input) { comment { id } } b: addComment(input: $input) { comment { id } } }"  # noqa: E501
        refused = await post(limited, many, token, input=comment)
        assert refused.status_code == 429
        assert refused.headers["x-ratelimit-resource"] == "comments"
        total = await limited.data(
            "query($id: ID!) { node(id: $id) { ... on Problem { comments { totalCount } } } }",
            {"id": problem_id},
            token=token,
        )
        assert total["node"]["comments"]["totalCount"] == 3
        # Another city writes on.
        lagos = await limited.token("lagos")
        response = await post(limited, PUBLISH_PROBLEM, lagos, input=problem_input("Lagos"))
        assert response.json()["data"]["publishProblem"]["userErrors"] == []


async def test_requests_without_a_token_are_throttled_per_address(api: Api) -> None:
    async with replica(api, anonymous_per_minute=5) as limited:
        for _ in range(5):
            response = await post(limited, "{ viewer { subject } }", None)
            assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        response = await post(limited, "{ viewer { subject } }", None)
        assert response.status_code == 429
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert int(response.headers["retry-after"]) >= 1
        # A caller with a token is not held up by the address's anonymous budget.
        token = await limited.token("rotterdam")
        assert (await post(limited, "{ viewer { subject } }", token)).status_code == 200


def test_budgets_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {"CITYEXCHANGE_RATE_LIMIT_POINTS": "20000", "CITYEXCHANGE_COMMENTS_PER_HOUR": "50"}
    )
    assert (settings.rate_limit_points, settings.comments_per_hour) == (20_000, 50)


def test_tables_stay_bounded_and_end_their_windows() -> None:
    moment = [0.0]
    limiter = RateLimiter(
        {Resource.ANONYMOUS: Budget(5, 60), Resource.GRAPHQL: Budget(100, 3600)},
        clock=lambda: moment[0],
    )
    for i in range(MAX_TRACKED + 500):
        limiter.charge(Resource.ANONYMOUS, f"address-{i}", 1)
    assert len(limiter._tables[Resource.ANONYMOUS]) <= MAX_TRACKED  # pyright: ignore[reportPrivateUsage]
    moment[0] = 61.0  # the minute has ended: its windows go as new ones come
    limiter.charge(Resource.ANONYMOUS, "address-new", 1)
    assert len(limiter._tables[Resource.ANONYMOUS]) == 1  # pyright: ignore[reportPrivateUsage]


async def test_a_socket_pays_for_each_of_its_operations(api: Api) -> None:
    """One context serves every operation of a socket: a refused document settles its own
    charge, never the one before it."""
    limiter = RateLimiter(budgets(api.settings))
    principal = Principal("rotterdam", "tester", frozenset({"read"}), "tests")
    socket = Context(
        db=api.db, request_id="ws", principal=principal, auth_error=None, limiter=limiter
    )
    schema = build_schema(production=False)
    refused = "{ " + " ".join(f"a{i}: viewer {{ subject }}" for i in range(16)) + " }"
    for _ in range(3):
        await schema.execute(PAGE, context_value=socket)
        await schema.execute(refused, context_value=socket)
    assert socket.rate is not None
    assert socket.rate.used == 3 * (21 + 1)
