"""Webhooks: signed deliveries to a receiver on loopback, retries, the log, and no loss
across a restart."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityexchange.app import create_app
from cityexchange.schema.relay import to_global_id
from cityexchange.services import access, chat_messages, problems, webhooks
from cityexchange.services.models import Event, EventType
from cityexchange.services.principal import Principal
from cityexchange.services.taxonomy import Hazard, Urgency
from cityexchange.services.visibility import Visibility, VisibilityLevel
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


CHAT_REGISTER = """mutation($input: RegisterWebhookInput!) { registerWebhook(input: $input) {
    webhook { id format secret } userErrors { code field message } } }"""
# Slack's and Teams' control characters and Markdown, which must reach the channel as text.
TRICKY = "Quay walls <!channel> & <https://evil.example|click> **now**"


async def _chat_hook(api: Api, city: str, url: str, format: str) -> dict[str, str]:
    token = await api.token(city)
    variables = {"input": {"url": url, "format": format, "filter": {"hazards": ["FLOOD"]}}}
    data = await api.data(CHAT_REGISTER, variables, token=token)
    assert data["registerWebhook"]["userErrors"] == []
    hook: dict[str, str] = data["registerWebhook"]["webhook"]
    assert hook["format"] == format
    return hook


async def _crisis(api: Api, title: str) -> str:
    problem = await problems.publish(
        db=api.db,
        actor=WRITER,
        draft=problems.ProblemDraft(
            title=title, summary="s", hazards=[Hazard.FLOOD], urgency=Urgency.ACTIVE_CRISIS
        ),
    )
    return to_global_id("Problem", problem.id)


async def test_a_slack_endpoint_gets_a_message_that_links_to_the_app(
    api: Api, settings: Settings
) -> None:
    await add_city(api.db, "rotterdam")
    async with receiving(Receiver()) as receiver, service(settings, api) as app:
        hook = await _chat_hook(app, "rotterdam", receiver.url, "SLACK")
        problem_id = await _crisis(app, TRICKY)
        await _until(lambda: len(receiver.received) == 1)
    headers, body = receiver.received[0]
    assert verify(hook["secret"], headers, body)  # signed as every delivery is
    message = json.loads(body)
    escaped = "Quay walls &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt; **now**"
    assert message["text"] == f"Rotterdam published a problem: {escaped}"
    headline, title, context, actions = message["blocks"]
    assert headline["text"] == {"type": "mrkdwn", "text": "*Rotterdam published a problem*"}
    assert title["text"] == {"type": "plain_text", "text": TRICKY}
    assert context["elements"] == [{"type": "plain_text", "text": "Active crisis · Flood"}]
    (button,) = actions["elements"]
    assert button["url"] == f"{settings.public_url}/app/problems/{problem_id}"


async def test_a_teams_endpoint_gets_an_adaptive_card_of_plain_text(
    api: Api, settings: Settings
) -> None:
    await add_city(api.db, "rotterdam")
    async with receiving(Receiver()) as receiver, service(settings, api) as app:
        await _chat_hook(app, "rotterdam", receiver.url, "TEAMS")
        problem_id = await _crisis(app, TRICKY)
        await _until(lambda: len(receiver.received) == 1)
    message = json.loads(receiver.received[0][1])
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    runs = [
        (block["type"], block["inlines"][0]["type"], block["inlines"][0]["text"])
        for block in card["body"]
    ]
    assert runs == [
        ("RichTextBlock", "TextRun", "Rotterdam published a problem"),
        ("RichTextBlock", "TextRun", TRICKY),  # a TextRun is never read as Markdown
        ("RichTextBlock", "TextRun", "Active crisis · Flood"),
    ]
    (action,) = card["actions"]
    assert action["type"] == "Action.OpenUrl"
    assert action["url"] == f"{settings.public_url}/app/problems/{problem_id}"


@dataclass
class Refusing(Receiver):
    """Answers 503 to every body that holds `refused`, 200 to the rest."""

    refused: bytes = b""

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self.received.append((dict(request.headers), body))
        return Response(status_code=503 if self.refused in body else 200)


async def test_a_chat_channel_is_told_only_what_its_city_may_see_now(
    api: Api, settings: Settings
) -> None:
    """Lagos's channel is told of Rotterdam's public problem. It refuses the edit, and before
    the retry Rotterdam keeps the problem to itself: the edit is never retried, and the
    channel hears that the problem was withdrawn, without its title."""
    for slug in ("rotterdam", "lagos"):
        await add_city(api.db, slug)
    admin = Principal("rotterdam", "cro", frozenset({"read", "publish", "admin"}), "tests")
    receiver = Refusing(refused=b"phase 2")
    async with receiving(receiver), service(settings, api) as app:
        await _chat_hook(app, "lagos", receiver.url, "SLACK")
        problem = await problems.publish(
            db=app.db,
            actor=WRITER,
            draft=problems.ProblemDraft(title="Quay walls", summary="s", hazards=[Hazard.FLOOD]),
        )
        await _until(lambda: len(receiver.received) == 1)
        assert b"Quay walls" in receiver.received[0][1]
        edited = await problems.update(
            db=app.db,
            actor=WRITER,
            id=problem.id,
            version=problem.version,
            changes=problems.ProblemChanges(title="Quay walls, phase 2"),
        )
        await _until(lambda: len(receiver.received) == 2)  # refused: retried after a backoff
        await access.set_visibility(
            db=app.db,
            actor=admin,
            kind="Problem",
            id=problem.id,
            version=edited.version,
            visibility=Visibility(VisibilityLevel.CITY),
        )
        token = await app.token("lagos")

        async def log() -> list[dict[str, Any]]:
            return (await app.data(LOG, token=token))["webhooks"][0]["deliveries"]

        async with asyncio.timeout(15):
            while [d["state"] for d in await log()] != ["delivered", "failed", "delivered"]:
                await asyncio.sleep(0.05)
        withdrawn, edit, _ = await log()
        assert (
            edit["attempts"][-1]["error"] == "the event is no longer visible to the webhook's city"
        )
    told = [json.loads(body) for _, body in receiver.received[1:] if b"phase 2" not in body]
    assert [message["text"] for message in told] == [
        "A problem or solution is no longer shared with your city"
    ]
    assert b"Quay" not in json.dumps(told).encode()
    assert withdrawn["attempts"][-1]["status"] == 200


async def test_a_chat_message_names_only_a_thread_its_city_may_read(api: Api) -> None:
    """The message's own check, under the deliverer's: an event about a comment on a problem
    Lagos may not see tells Lagos that Rotterdam commented, not on what."""
    for slug in ("rotterdam", "lagos"):
        await add_city(api.db, slug)
    problem = await problems.publish(
        db=api.db,
        actor=WRITER,
        draft=problems.ProblemDraft(
            "Quay walls", "s", [Hazard.FLOOD], visibility=Visibility(VisibilityLevel.CITY)
        ),
    )
    event = Event(
        type=EventType.COMMENT_ADDED,
        occurred_at=problem.created_at,
        city="rotterdam",
        actor="cro",
        subject_kind="Comment",
        subject_id="c1",
        thread_id=problem.id,
        hazards=(Hazard.FLOOD,),
    )
    app_url = "https://cx.example.org/app"
    own = await chat_messages.message_of(api.db, event, city="rotterdam", app_url=app_url)
    assert (own.title, own.link) == (
        "Quay walls",
        f"{app_url}/problems/{to_global_id('Problem', problem.id)}",
    )
    other = await chat_messages.message_of(api.db, event, city="lagos", app_url=app_url)
    assert other == chat_messages.Message("Rotterdam commented", None, app_url, ("Flood",))


async def test_webhooks_are_standard_unless_asked_and_an_unknown_format_is_refused(
    api: Api,
) -> None:
    await add_city(api.db, "rotterdam")
    token = await api.token("rotterdam")
    url = "http://127.0.0.1:9/hook"
    data = await api.data(CHAT_REGISTER, {"input": {"url": url}}, token=token)
    assert data["registerWebhook"]["webhook"]["format"] == "STANDARD"
    body = await api.gql(CHAT_REGISTER, {"input": {"url": url, "format": "DISCORD"}}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert len((await api.data(LOG, token=token))["webhooks"]) == 1


async def test_a_webhook_takes_a_copy_of_a_saved_filter(api: Api, settings: Settings) -> None:
    await add_city(api.db, "rotterdam")
    token = await api.token("rotterdam")
    save = """mutation($input: SaveFilterInput!) { saveFilter(input: $input) {
        userErrors { code } } }"""
    floods = {"input": {"name": "Floods", "filter": {"hazards": ["FLOOD"]}}}
    assert (await api.data(save, floods, token=token))["saveFilter"]["userErrors"] == []

    async def register(url: str, **more: object) -> dict[str, Any]:
        variables = {"input": {"url": url, **more}}
        found: dict[str, Any] = (await api.data(CHAT_REGISTER, variables, token=token))[
            "registerWebhook"
        ]
        return found

    both = await register("http://127.0.0.1:9/a", savedFilter="Floods", filter={"tags": ["x"]})
    assert [(e["code"], e["field"]) for e in both["userErrors"]] == [
        ("BAD_USER_INPUT", ["input", "savedFilter"])
    ]
    unknown = await register("http://127.0.0.1:9/b", savedFilter="Heat")
    assert [e["code"] for e in unknown["userErrors"]] == ["NOT_FOUND"]
    assert (await api.data(LOG, token=token))["webhooks"] == []
    async with receiving(Receiver()) as receiver, service(settings, api) as app:
        hook = await register(receiver.url, savedFilter="Floods", format="SLACK")
        assert hook["userErrors"] == []
        delete = """mutation { deleteSavedFilter(input: {name: "Floods"}) { deletedName } }"""
        await app.data(delete, token=token)  # the webhook keeps its copy
        await _publish(app, "Heat, not for this hook", Hazard.HEAT_WAVE)
        await _publish(app, "River floods")
        await _until(lambda: len(receiver.received) == 1)
        await asyncio.sleep(0.5)
    (message,) = [json.loads(body) for _, body in receiver.received]
    assert message["text"] == "Rotterdam published a problem: River floods"


async def test_concurrent_registrations_stop_at_the_cap(api: Api) -> None:
    """Counting and inserting race; the cap is held by the write, so a burst of 30 requests
    registers exactly 20 endpoints and refuses the rest with the cap's message."""
    await add_city(api.db, "rotterdam")
    token = await api.token("rotterdam")

    async def register(i: int) -> dict[str, Any]:
        input = {"url": f"http://127.0.0.1:9/hook/{i}"}
        payload: dict[str, Any] = (await api.data(REGISTER, {"input": input}, token=token))[
            "registerWebhook"
        ]
        return payload

    results = await asyncio.gather(*(register(i) for i in range(30)))
    refused = [r["userErrors"][0]["message"] for r in results if r["userErrors"]]
    assert len(refused) == 30 - webhooks.MAX_WEBHOOKS_PER_CITY
    assert set(refused) == {"a city may have at most 20 webhooks"}
    assert len((await api.data(LOG, token=token))["webhooks"]) == webhooks.MAX_WEBHOOKS_PER_CITY
