"""Crisis alerts: an ACTIVE_CRISIS problem reaches, once, every city that follows one of its
hazards and every close peer of the asking city — by email to the CRO team contact (a real
SMTP server on loopback reads what was sent), on webhooks registered for crisis alerts, and
in the feeds of the cities' people; never a city that may not see it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from cityexchange.mail import SmtpMailer
from cityexchange.schema.relay import to_global_id
from cityexchange.services import cities, problems
from cityexchange.services.clock import now
from cityexchange.services.mail import Outbox, queue
from cityexchange.services.models import City, Contact, Mail, ResilienceProfile
from cityexchange.services.principal import Principal
from cityexchange.services.store import mail_outbox
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard, IncomeGroup, Urgency
from cityexchange.services.visibility import Visibility, VisibilityLevel
from cityexchange.settings import Secret, Settings
from tests.conftest import Api
from tests.mail_support import MailServer, mail_server
from tests.test_webhooks import Receiver, receiving

FOLLOW = """mutation { follow(input: {kind: HAZARD, value: "FLOOD", forCity: true}) {
  userErrors { code } } }"""
REGISTER = """mutation($input: RegisterWebhookInput!) { registerWebhook(input: $input) {
  webhook { crisisAlerts } userErrors { code } } }"""
FEED = """{ viewer { feed(first: 20) { edges { node { type
  subject { ... on Problem { title } } } } } } }"""
PUNE = Principal("pune", "cro", frozenset({"read", "publish"}), "tests")


@pytest.fixture
def settings(settings: Settings, mail: MailServer) -> Settings:
    """The test's settings, with mail through `mail` (every app of the test sends through
    it: each runs the crisis-alert loop, and whichever sees a crisis first alerts)."""
    return dataclasses.replace(
        settings,
        smtp_url=Secret(f"smtp://127.0.0.1:{mail.port}"),
        mail_from="Exchange <alerts@exchange.example.org>",
    )


async def _until(condition: Callable[[], bool], seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.05)


DELTA = ResilienceProfile(hazards=(Hazard.FLOOD, Hazard.HEAT_WAVE, Hazard.SEA_LEVEL_RISE))


async def _cities(api: Api) -> None:
    """Pune asks; Mumbai is its close peer; Rotterdam (in Dutch) follows floods; Reykjavik
    neither."""

    def city(slug: str, name: str, country: str, **more: Any) -> City:
        contact = Contact(name=f"{name} CRO team", email=f"cro@{slug}.example.org")
        return City(
            slug=slug, name=name, country=country, created_at=now(), contact=contact, **more
        )

    alike: dict[str, Any] = dict(
        profile=DELTA,
        climate_zone="Aw",
        population=4_000_000,
        coastal=False,
        region="South Asia",
        income_group=IncomeGroup.LOWER_MIDDLE,
    )
    for record in (
        city("pune", "Pune", "IN", **alike),
        city("mumbai", "Mumbai", "IN", **alike),
        city(
            "rotterdam",
            "Rotterdam",
            "NL",
            climate_zone="Cfb",
            population=650_000,
            languages=("fy", "nl"),  # Frisian has no alert texts: the next one, Dutch
        ),
        city("reykjavik", "Reykjavík", "IS", climate_zone="Cfc", population=140_000),
    ):
        await cities.add_city(db=api.db, city=record)


async def _crisis(api: Api, title: str, visibility: Visibility | None = None) -> str:
    problem = await problems.publish(
        db=api.db,
        actor=PUNE,
        draft=problems.ProblemDraft(
            title,
            "Three districts under water",
            [Hazard.FLOOD],
            urgency=Urgency.ACTIVE_CRISIS,
            visibility=visibility,
        ),
    )
    return problem.id


async def test_a_crisis_reaches_followers_and_close_peers_once(
    api: Api, settings: Settings, mail: MailServer
) -> None:
    await _cities(api)
    rotterdam_admin = await api.token("rotterdam", ("read", "publish", "admin"))
    assert (await api.data(FOLLOW, token=rotterdam_admin))["follow"]["userErrors"] == []
    app = api
    async with receiving(Receiver()) as mumbai_hook, receiving(Receiver()) as reykjavik_hook:
        for city, hook in (("mumbai", mumbai_hook), ("reykjavik", reykjavik_hook)):
            # Their filters take only comments: what arrives is the crisis alert.
            variables = {
                "input": {
                    "url": hook.url,
                    "format": "SLACK",
                    "crisisAlerts": True,
                    "filter": {"types": ["COMMENT_ADDED"]},
                }
            }
            admin = await app.token(city, ("read", "admin"))
            data = await app.data(REGISTER, variables, token=admin)
            assert data["registerWebhook"]["webhook"] == {"crisisAlerts": True}
        await problems.publish(
            db=app.db,
            actor=PUNE,
            draft=problems.ProblemDraft("Potholes", "s", [Hazard.FLOOD]),
        )
        crisis = await _crisis(app, "Monsoon floods")
        await _until(lambda: len(mail.received) == 2 and len(mumbai_hook.received) == 1)
        # Asked again (an edit while still a crisis): nobody is alerted twice.
        await problems.update(
            db=app.db,
            actor=PUNE,
            id=crisis,
            version=1,
            changes=problems.ProblemChanges(summary="Four districts under water"),
        )
        await asyncio.sleep(2.5)  # two polls of each loop
        assert len(mail.received) == 2
        assert len(mumbai_hook.received) == 1
        assert reykjavik_hook.received == []
        mumbai = await app.token("mumbai", ("read",), subject="ada")
        mumbai_feed = (await app.data(FEED, token=mumbai))["viewer"]["feed"]["edges"]
        reykjavik = await app.token("reykjavik", ("read",), subject="jon")
        reykjavik_feed = (await app.data(FEED, token=reykjavik))["viewer"]["feed"]["edges"]

    assert sorted(to for to, _ in mail.received) == [
        ["cro@mumbai.example.org"],
        ["cro@rotterdam.example.org"],
    ]
    by_city = {to[0]: message for to, message in mail.received}
    message = by_city["cro@rotterdam.example.org"]
    assert message["Subject"] == "Acute crisis in Pune: Monsoon floods"  # Rotterdam's Dutch
    assert message["From"] == "Exchange <alerts@exchange.example.org>"
    assert message["Auto-Submitted"] == "auto-generated"
    link = f"{settings.public_url}/app/problems/{to_global_id('Problem', crisis)}"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert "omdat uw stad Flood volgt" in text.get_content()
    assert 'lang="nl"' in html.get_content()
    assert link in text.get_content()
    assert f'href="{link}"' in html.get_content()
    peer = by_city["cro@mumbai.example.org"]  # no languages on record: English
    assert peer["Subject"] == "Active crisis in Pune: Monsoon floods"
    peer_text = peer.get_body(("plain",))
    assert peer_text is not None
    assert "because your city is a close peer of the asking city" in peer_text.get_content()

    (alert,) = [json.loads(body) for _, body in mumbai_hook.received]
    assert alert["text"] == "Pune published a problem: Monsoon floods"
    assert [e["node"]["subject"]["title"] for e in mumbai_feed] == ["Monsoon floods"] * 2
    assert [e["node"]["type"] for e in mumbai_feed] == ["PROBLEM_PUBLISHED", "PROBLEM_UPDATED"]
    assert reykjavik_feed == []


async def test_a_crisis_kept_to_its_city_alerts_no_one(api: Api, mail: MailServer) -> None:
    await _cities(api)
    rotterdam_admin = await api.token("rotterdam", ("read", "publish", "admin"))
    await api.data(FOLLOW, token=rotterdam_admin)
    await _crisis(api, "Ours alone", Visibility(VisibilityLevel.CITY))
    await _crisis(api, "For everyone")
    await _until(lambda: len(mail.received) == 2)
    await asyncio.sleep(1.5)
    assert {message["Subject"] for _, message in mail.received} == {
        "Active crisis in Pune: For everyone",  # Mumbai's
        "Acute crisis in Pune: For everyone",  # Rotterdam's, in Dutch
    }


async def test_the_outbox_retries_a_temporary_refusal_and_sends_at_most_once(
    db: Database,
) -> None:
    server = MailServer(replies=["451 4.3.0 try again later", "550 5.1.1 no such mailbox"])
    async with mail_server(server) as outbound:
        outbox = Outbox(
            db,
            SmtpMailer.from_url(f"smtp://127.0.0.1:{outbound.port}"),
            sender="Exchange <alerts@exchange.example.org>",
            domain="exchange.example.org",
            retry_base_seconds=0.05,
        )
        note = Mail("cro@mumbai.example.org", "Subject", "text", "<p>html</p>")
        assert await queue(db, "one", note)
        assert not await queue(db, "one", note)  # queued once per key
        assert await outbox.send_one()  # 451: pending again, due after the backoff
        assert await mail_outbox.of_state(db, "pending") == [("one", "cro@mumbai.example.org")]
        await asyncio.sleep(0.1)
        assert await outbox.send_one()  # 550: permanent, not retried
        assert await mail_outbox.of_state(db, "failed") == [("one", "cro@mumbai.example.org")]
        assert await queue(db, "two", note)
        assert await outbox.send_one()
        assert [to for to, _ in server.received] == [["cro@mumbai.example.org"]]
        assert not await outbox.send_one()  # nothing more is due
        # A sender that died mid-send: once its lease runs out the message is `unknown`,
        # never sent again (the server may have taken it).
        assert await queue(db, "three", note)
        claimed = await mail_outbox.claim(db, worker="gone", at=now(), lease=timedelta(0))
        assert claimed is not None
        assert await mail_outbox.give_up_on_lost(db, at=now() + timedelta(seconds=1)) == 1
        assert not await outbox.send_one()
        assert await mail_outbox.of_state(db, "unknown") == [("three", "cro@mumbai.example.org")]
        assert len(server.received) == 1
