"""Webhooks: signed deliveries to a receiver on loopback, retries, the log, and no loss
across a restart."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityexchange.app import create_app
from cityexchange.services import problems
from cityexchange.services.principal import Principal
from cityexchange.services.taxonomy import Hazard
from cityexchange.settings import Settings
from tests.conftest import Api, add_city
from tests.live_support import on_loopback

REGISTER = """mutation($input: RegisterWebhookInput!) { registerWebhook(input: $input) {
    webhook { id url secret } userErrors { code field message } } }"""
LOG = """{ webhooks { id disabledAt deliveries { id state attempts { status error } } } }"""
WRITER = Principal("rotterdam", "cro", frozenset({"read", "publish"}), "tests")


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers with the statuses it is given, in turn."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def hook(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return Response(status_code=self.statuses.pop(0) if self.statuses else 200)


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    async with on_loopback(app) as base:
        receiver.url = f"{base}/hook"
        yield receiver


@asynccontextmanager
async def service(settings: Settings, api: Api) -> AsyncIterator[Api]:
    """The app with fast retries; its deliverer runs for as long as the block."""
    app = create_app(dataclasses.replace(settings, webhook_retry_seconds=0.1))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as http,
    ):
        yield Api(http=http, db=api.db, settings=settings)


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, as a receiver would do it."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, s.split(",", 1)[1])
        for s in headers["webhook-signature"].split()
    )


async def _publish(api: Api, title: str, hazard: Hazard = Hazard.FLOOD) -> None:
    await problems.publish(
        db=api.db,
        actor=WRITER,
        draft=problems.ProblemDraft(title=title, summary="s", hazards=[hazard]),
    )


async def _until(condition: object, seconds: float = 15) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def _register(api: Api, url: str) -> dict[str, str]:
    token = await api.token("rotterdam")
    data = await api.data(
        REGISTER,
        {"input": {"url": url, "description": "floods", "filter": {"hazards": ["FLOOD"]}}},
        token=token,
    )
    hook: dict[str, str] = data["registerWebhook"]["webhook"]
    assert hook["secret"].startswith("whsec_")
    return hook


async def test_a_delivery_is_signed_and_retried_until_it_succeeds(
    api: Api, settings: Settings
) -> None:
    await add_city(api.db, "rotterdam")
    async with (
        receiving(Receiver(statuses=[500, 500, 200])) as receiver,
        service(settings, api) as app,
    ):
        hook = await _register(app, receiver.url)
        await _publish(app, "Heat, not for this hook", Hazard.HEAT_WAVE)
        await _publish(app, "River floods")
        await _until(lambda: len(receiver.received) == 3)
        headers, body = receiver.received[-1]
        assert verify(hook["secret"], headers, body)
        assert headers["webhook-id"] == receiver.received[0][0]["webhook-id"]  # idempotency key
        assert b"River floods" not in body  # ids, not content: receivers query what they need
        token = await app.token("rotterdam")

        async def state() -> list[dict[str, object]]:
            return (await app.data(LOG, token=token))["webhooks"][0]["deliveries"]

        async with asyncio.timeout(10):
            while (await state())[0]["state"] != "delivered":
                await asyncio.sleep(0.05)
        deliveries = await state()
        assert len(deliveries) == 1
        assert [a["status"] for a in deliveries[0]["attempts"]] == [500, 500, 200]  # type: ignore[index]


async def test_no_delivery_is_lost_across_a_restart(api: Api, settings: Settings) -> None:
    await add_city(api.db, "rotterdam")
    async with receiving(Receiver(statuses=[503])) as receiver:
        async with service(settings, api) as app:
            await _register(app, receiver.url)
            await _publish(app, "Before the restart")
            await _until(lambda: len(receiver.received) == 1)  # the first attempt failed
        await _publish(api, "While the service is down")
        async with service(settings, api):
            await _until(lambda: len(receiver.received) == 3)
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert len(set(ids)) == 2  # the retry of the first, and the event from the downtime


async def test_redelivery_on_demand(api: Api, settings: Settings) -> None:
    await add_city(api.db, "rotterdam")
    async with receiving(Receiver()) as receiver, service(settings, api) as app:
        await _register(app, receiver.url)
        await _publish(app, "Once")
        await _until(lambda: len(receiver.received) == 1)
        token = await app.token("rotterdam")
        log = (await app.data(LOG, token=token))["webhooks"][0]["deliveries"]
        redeliver = """mutation($id: String!) { redeliverWebhook(input: {deliveryId: $id}) {
            delivery { state } userErrors { code } } }"""
        data = await app.data(redeliver, {"id": log[0]["id"]}, token=token)
        assert data["redeliverWebhook"]["userErrors"] == []
        await _until(lambda: len(receiver.received) == 2)
        assert receiver.received[0][0]["webhook-id"] == receiver.received[1][0]["webhook-id"]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.5/hook",
        "https://user:pw@example.org/hook",
    ],
)
async def test_production_refuses_insecure_or_private_targets(
    api: Api, settings: Settings, url: str
) -> None:
    await add_city(api.db, "rotterdam")
    prod = dataclasses.replace(settings, env="prod", public_url="https://x.example.org")
    async with service(prod, api) as app:
        token = await app.token("rotterdam")
        data = await app.data(REGISTER, {"input": {"url": url}}, token=token)
        errors = data["registerWebhook"]["userErrors"]
        assert [(e["code"], e["field"]) for e in errors] == [("BAD_USER_INPUT", ["input", "url"])]


async def test_only_a_city_admin_registers_webhooks(api: Api) -> None:
    await add_city(api.db, "rotterdam")
    publisher = await api.token("rotterdam", scopes=("read", "publish"))
    body = await api.gql(REGISTER, {"input": {"url": "http://127.0.0.1:9/hook"}}, token=publisher)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_deleted_webhook_receives_nothing_more(api: Api, settings: Settings) -> None:
    await add_city(api.db, "rotterdam")
    await add_city(api.db, "lagos")
    delete = """mutation($id: ID!) { deleteWebhook(input: {id: $id}) {
        deletedWebhookId userErrors { code } } }"""
    async with receiving(Receiver()) as receiver, service(settings, api) as app:
        hook = await _register(app, receiver.url)
        await _publish(app, "Before")
        await _until(lambda: len(receiver.received) == 1)
        other_city = await app.token("lagos")
        refused = await app.data(delete, {"id": hook["id"]}, token=other_city)
        assert refused["deleteWebhook"]["userErrors"] == [{"code": "NOT_FOUND"}]

        token = await app.token("rotterdam")
        data = await app.data(delete, {"id": hook["id"]}, token=token)
        assert data["deleteWebhook"] == {"deletedWebhookId": hook["id"], "userErrors": []}
        assert (await app.data(LOG, token=token))["webhooks"] == []
        assert await app.db.db["webhook_deliveries"].count_documents({}) == 0
        await _publish(app, "After")
        await _publish(app, "After, again")
        await asyncio.sleep(1)  # retries every 0.1 s: a delivery would have gone out by now
        assert len(receiver.received) == 1
        again = await app.data(delete, {"id": hook["id"]}, token=token)
        assert again["deleteWebhook"]["userErrors"] == [{"code": "NOT_FOUND"}]


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://127.0.0.1:9/hook\r\nX-Injected: 1",  # CR/LF would split the request line
        "http://127.0.0.1:9/ho ok",
        "\thttp://127.0.0.1:9/hook",
        "http://127.0.0.1:9/hook\x00",
        "http://127.0.0.1:9/\u200bhook",  # a format character, invisible
        "http://127.0.0.1:65536/hook",
        "http://127.0.0.1:99999/hook",
        "http://127.0.0.1:0/hook",
        "http://127.0.0.1:8o/hook",
        "http://[::1/x",
        "http://[::1]x/hook",
        "http://[v1.fe]/hook",
        "http://[fe80::1%25eth0]/hook",
        "http://1.2.3/hook",
        "http://exa_mple..org/hook",
        "http://-example.org/hook",
        "http://@example.org/hook",
        "http://user:pw@example.org/hook",
        "http://example.org\\@127.0.0.1/hook",
        "ftp://example.org/hook",
        "/hook",
        "http:///hook",
        "http://example.org/" + "h" * 2000,
    ],
)
async def test_a_malformed_url_is_refused(api: Api, url: str) -> None:
    await add_city(api.db, "rotterdam")
    token = await api.token("rotterdam")
    data = await api.data(REGISTER, {"input": {"url": url}}, token=token)
    assert data["registerWebhook"]["webhook"] is None
    errors = data["registerWebhook"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("BAD_USER_INPUT", ["input", "url"])]
    assert await api.db.db["webhooks"].count_documents({}) == 0


async def test_well_formed_urls_are_registered_as_written(api: Api) -> None:
    await add_city(api.db, "rotterdam")
    token = await api.token("rotterdam")
    for url in [
        "http://127.0.0.1:8080/hook?city=rotterdam#ignored",
        "http://[::1]:65535/hook",
        "https://example.org./hook",
        "https://xn--mnchen-3ya.de/hook",
        "https://münchen.de/haken",
    ]:
        data = await api.data(REGISTER, {"input": {"url": url}}, token=token)
        assert data["registerWebhook"]["userErrors"] == [], url
        assert data["registerWebhook"]["webhook"]["url"] == url
