"""The hand-written baseline: plain Starlette + PyMongo answering the benchmark's requests.

It answers exactly two documents, with the JSON the service gives for them, the way a careful
hand-written handler would: the same ES256 access-token check (joserfc, keys read from the
realm's key collection, the denylist kept in memory), and the nested page in one batched
query per level, each projecting only the fields it shows. It imports nothing of the project:
it is what the service is measured against.

    .venv/bin/python bench/baseline.py --port 8001 --uri mongodb://... --db bench_edge
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import contextvars
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

# The documents the bench sends; the baseline knows them the way a handler knows its route.
NESTED_PAGE = """query Page($problems: Int!, $solutions: Int!, $comments: Int!) {
  problems(first: $problems) { edges { node { id title
    solutions(first: $solutions) { edges { node { id title
      comments(first: $comments) { edges { node { id body author { name } } } } } } } } } } }"""
VIEWER = "{ viewer { subject } }"
TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
LEEWAY_SECONDS = 30
MAX_LIFETIME_SECONDS = 7 * 86_400
Document = dict[str, Any]
FREE = {"requested": 0, "actual": 0}  # no list, no long text

_in_request: contextvars.ContextVar[bool] = contextvars.ContextVar("in_request", default=False)


class CommandCounter(monitoring.CommandListener):
    """Database round trips sent while answering a request (not the denylist refresh)."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if _in_request.get():
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def global_id(kind: str, id: object) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{id}".encode()).decode().rstrip("=")


@dataclass
class Verifier:
    """RFC 9068 access tokens of our realms: alg, typ, kid, signature, claims, denylist."""

    db: AsyncDatabase[Document]
    realms_url: str
    audience: str
    keys: dict[str, tuple[str, ECKey]] = field(default_factory=dict[str, tuple[str, ECKey]])
    denied: dict[str, datetime] = field(default_factory=dict[str, datetime])
    keys_at: float = float("-inf")

    async def load_keys(self) -> None:
        async for doc in self.db["realm_keys"].find({}):
            self.keys[doc["_id"]] = (doc["city"], ECKey.import_key(doc["jwk"]))
        self.keys_at = time.monotonic()

    async def load_denylist(self) -> None:
        self.denied = {d["_id"]: d["revokedAt"] async for d in self.db["revocations"].find({})}

    async def verify(self, authorization: str) -> dict[str, Any] | None:
        """The token's claims and city, or None when it must be refused."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token or len(token) > 8192:
            return None
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError):
            return None
        if header.get("alg") != "ES256" or str(header.get("typ", "")).lower() not in TOKEN_TYPES:
            return None
        kid = header.get("kid")
        if kid not in self.keys and time.monotonic() - self.keys_at > 0.2:
            await self.load_keys()  # a key rotated a moment ago
        found = self.keys.get(kid) if isinstance(kid, str) else None
        if found is None:
            return None
        city, key = found
        try:
            claims = jwt.decode(token, key, algorithms=["ES256"]).claims
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": f"{self.realms_url}/{city}"},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                iat={"essential": True},
                sub={"essential": True},
                jti={"essential": True},
                client_id={"essential": True},
            ).validate(claims)
        except JoseError:
            return None
        if int(claims["exp"]) - int(claims["iat"]) > MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
            return None
        if f"jti:{city}:{claims['jti']}" in self.denied:
            return None
        for revoked in (f"client:{city}:{claims['client_id']}", f"person:{city}:{claims['sub']}"):
            at = self.denied.get(revoked)
            if at is not None and at.timestamp() >= int(claims["iat"]):
                return None
        return {**claims, "city": city}


async def nested_page(db: AsyncDatabase[Document], sizes: dict[str, int]) -> Document:
    """problems -> solutions -> comments -> author: one query per level, `$in` on the parents."""
    problems = (
        await db["problems"]
        .find({}, {"title": 1})
        .sort([("createdAt", -1), ("_id", -1)])
        .limit(sizes["problems"])
        .to_list(None)
    )
    problem_ids = [p["_id"] for p in problems]
    solutions = await _top_children(
        db, "solutions", "problemIds", problem_ids, {}, sizes["solutions"], -1, {"title": 1}
    )
    solution_ids = [s["_id"] for group in solutions.values() for s in group]
    comments = await _top_children(
        db,
        "comments",
        "subjectId",
        solution_ids,
        {"parentId": None},
        sizes["comments"],
        1,
        {"body": 1, "authorId": 1, "deletedAt": 1, "hidden": 1},
    )
    author_ids = {
        c["authorId"]
        for group in comments.values()
        for c in group
        if c.get("authorId") and not c.get("deletedAt")
    }
    names = {
        p["_id"]: p["name"]
        async for p in db["people"].find({"_id": {"$in": list(author_ids)}}, {"name": 1})
    }

    def comment(c: Document) -> Document:
        gone = c.get("deletedAt") is not None
        author = names.get(c.get("authorId")) if not gone else None
        return {
            "id": global_id("Comment", c["_id"]),
            "body": None if gone or c.get("hidden") else c["body"],
            "author": {"name": author} if author is not None else None,
        }

    def solution(s: Document) -> Document:
        threads = [{"node": comment(c)} for c in comments.get(s["_id"], [])]
        return {
            "id": global_id("Solution", s["_id"]),
            "title": s["title"],
            "comments": {"edges": threads},
        }

    edges = [
        {
            "node": {
                "id": global_id("Problem", p["_id"]),
                "title": p["title"],
                "solutions": {
                    "edges": [{"node": solution(s)} for s in solutions.get(p["_id"], [])]
                },
            }
        }
        for p in problems
    ]
    return {"problems": {"edges": edges}}


async def _top_children(
    db: AsyncDatabase[Document],
    collection: str,
    parent_field: str,
    parents: list[Any],
    match: Document,
    first: int,
    direction: int,
    fields: Document,
) -> dict[Any, list[Document]]:
    """The first `first` children of each parent by (createdAt, _id), in one aggregate."""
    output = {"_id": "$_id", **{name: f"${name}" for name in fields}}
    pipeline: list[Document] = [
        {"$match": {parent_field: {"$in": parents}, **match}},
        {"$unwind": f"${parent_field}"},  # an array of parents (solutions) counts under each
        {"$match": {parent_field: {"$in": parents}}},
        {
            "$group": {
                "_id": f"${parent_field}",
                "docs": {
                    "$topN": {
                        "n": first,
                        "sortBy": {"createdAt": direction, "_id": direction},
                        "output": output,
                    }
                },
            }
        },
    ]
    groups = await (await db[collection].aggregate(pipeline)).to_list(None)
    return {g["_id"]: g["docs"] for g in groups}


def cost(sizes: dict[str, int], data: object) -> dict[str, int]:
    """The service's `extensions.cost` (docs/security.md, "Query cost"): what the page may
    hold (a point per list item, four per comment body of up to 10,000 characters), and
    what it holds (a point per object in a list, one per 2,500 characters of text)."""
    requested = sizes["problems"] * (1 + sizes["solutions"] * (1 + sizes["comments"] * 5))
    actual, stack = 0, [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())  # type: ignore[arg-type]
        elif isinstance(value, list):
            actual += sum(isinstance(item, dict) for item in value)  # type: ignore[misc]
            stack.extend(value)  # type: ignore[arg-type]
        elif isinstance(value, str):
            actual += len(value) // 2500
    return {"requested": requested, "actual": actual}


def create_app(uri: str, db_name: str, realms_url: str, audience: str) -> Starlette:
    counter = CommandCounter()
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncGenerator[None]:
        client: AsyncMongoClient[Document] = AsyncMongoClient(uri, event_listeners=[counter])
        verifier = Verifier(client[db_name], realms_url, audience)
        await verifier.load_keys()
        await verifier.load_denylist()

        async def refresh() -> None:
            while True:
                await asyncio.sleep(2)
                await verifier.load_denylist()

        task = asyncio.create_task(refresh())
        state.update(db=client[db_name], verifier=verifier)
        try:
            yield
        finally:
            task.cancel()
            await client.close()

    async def graphql(request: Request) -> Response:
        token = _in_request.set(True)
        try:
            body = await request.json()
            query = body.get("query")
            if query not in (NESTED_PAGE, VIEWER):
                return JSONResponse({"errors": [{"message": "unknown document"}]}, 400)
            claims = await state["verifier"].verify(request.headers.get("authorization", ""))
            if claims is None:
                return JSONResponse({"errors": [{"message": "unauthenticated"}]}, 401)
            if query == VIEWER:
                data = {"viewer": {"subject": claims["sub"]}}
                return JSONResponse({"data": data, "extensions": {"cost": FREE}})
            if "read" not in str(claims.get("scope", "")).split():
                return JSONResponse({"errors": [{"message": "forbidden"}]}, 403)
            variables: dict[str, Any] = body.get("variables") or {}
            sizes = {k: int(variables[k]) for k in ("problems", "solutions", "comments")}
            data = await nested_page(state["db"], sizes)
            return JSONResponse({"data": data, "extensions": {"cost": cost(sizes, data)}})
        finally:
            _in_request.reset(token)

    async def commands(_: Request) -> Response:
        return JSONResponse({"commands": counter.count})

    async def ready(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/graphql", graphql, methods=["POST"]),
            Route("/commands", commands),
            Route("/readyz", ready),
        ],
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--realms-url", default="http://127.0.0.1:8000/realms")
    parser.add_argument("--audience", default="cityexchange")
    args = parser.parse_args()
    app = create_app(args.uri, args.db, args.realms_url, args.audience)
    # The same server settings as `cityexchange serve`.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        ws_max_size=64 * 1024,
        ws_per_message_deflate=False,
    )


if __name__ == "__main__":
    main()
