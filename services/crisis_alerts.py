"""Crisis alerts: a problem asked as an ACTIVE_CRISIS reaches, at once, the cities that can
help — every city that follows one of its hazards for the whole city, and every close peer of
the asking city (services/peers.py: a score of at least CLOSE_PEER_SCORE). Each such city
that may see the problem is alerted once per problem:

- its people's `viewer.feed` and `viewerEvents` carry the event (services/follows.interests);
- each of its webhooks registered with `crisisAlerts` gets a delivery of it, whatever its
  filter, in its format;
- its CRO team contact (City.contact.email) gets an email, when mail is configured.

One loop per process follows the event log from a position shared by the replicas; an
alert is claimed per (problem, city) by the event that raised it, and its deliveries and
email are queued under keys of their own, so neither two replicas nor a restart alert a city
twice about one crisis. Responses are `offerHelp` (services/problems.py)."""

from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass

from cityexchange.services import mail, peers, polling
from cityexchange.services.alert_texts import texts_for
from cityexchange.services.clock import now
from cityexchange.services.ids import global_id
from cityexchange.services.models import CRISIS_ASKS, City, Event, Mail, Problem, is_crisis_ask
from cityexchange.services.store import cities as city_store
from cityexchange.services.store import crisis_alerts as store
from cityexchange.services.store import events as event_store
from cityexchange.services.store import follows as follow_store
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store import webhooks as webhook_store
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Urgency, label
from cityexchange.services.visibility import SYSTEM_VIEWER, Viewer

log = logging.getLogger("cityexchange.crisis")

CLOSE_PEER_SCORE = 0.5
POLL_SECONDS = 1.0
BATCH = 100  # crisis events read per round trip
CRISIS_QUERY = {
    "urgency": Urgency.ACTIVE_CRISIS.value,
    "type": {"$in": [t.value for t in CRISIS_ASKS]},
}


async def close_peers(db: Database, city: str) -> frozenset[str]:
    """The member cities at least CLOSE_PEER_SCORE alike to `city`. The score is symmetric,
    so these are also the cities `city` is a close peer of."""
    (asking,) = await city_store.cities_by_slugs(db, [city])
    if asking is None:
        return frozenset()
    found: set[str] = set()
    after: str | None = None
    while True:
        members = await city_store.cities_after(db, after, limit=peers.BATCH)
        found |= {m.slug for m in members if peers.match(asking, m).score >= CLOSE_PEER_SCORE}
        if len(members) < peers.BATCH:
            return frozenset(found)
        after = members[-1].slug


FOLLOWS, CLOSE_PEER = "follows", "close-peer"  # why a city is reached


async def reached(db: Database, event: Event) -> dict[str, str]:
    """The cities `event`'s crisis reaches, each with why (FOLLOWS its hazards or a
    CLOSE_PEER of the asking city); only cities that may see the problem, and never the
    asking city itself."""
    why: dict[str, str] = {}
    hazards = [h.value for h in event.hazards]
    for city in await follow_store.cities_following(db, kind="HAZARD", values=hazards):
        why[city] = FOLLOWS
    for city in sorted(await close_peers(db, event.subject_city)):
        why.setdefault(city, CLOSE_PEER)
    return {
        city: reason
        for city, reason in why.items()
        if city != event.subject_city
        and Viewer.of_city(city).may_read(event.audience, event.withheld)
    }


@dataclass(slots=True)
class CrisisAlerts:
    """Follows the event log and alerts the cities each crisis reaches."""

    db: Database
    app_url: str  # the web app's base URL, for the alert's link
    send_mail: bool  # whether mail is configured (cityexchange/mail.py)
    poll_seconds: float = POLL_SECONDS

    async def run(self, stopping: asyncio.Event) -> None:
        paused = "crisis alerts paused: the database is unreachable"
        await polling.every(self.poll_seconds, stopping, self.alert_new, log=log, paused=paused)

    async def alert_new(self) -> None:
        """Alert for every crisis event since the shared position."""
        latest = await event_store.latest_seq(self.db)
        position = await store.position(self.db, default=latest)
        while True:
            found = await event_store.events_after(
                self.db, CRISIS_QUERY, after=position, limit=BATCH, viewer=SYSTEM_VIEWER
            )
            for event in found:
                await self.alert(event)
                position = event.seq
                await store.advance(self.db, position)
            if len(found) < BATCH:
                break
        if latest > position:  # no crisis since: the next look starts from here
            await store.advance(self.db, latest)

    async def alert(self, event: Event) -> None:
        if not is_crisis_ask(event):
            return
        (problem,) = await problem_store.problems_by_ids(
            self.db, [event.subject_id], viewer=SYSTEM_VIEWER
        )
        if problem is None:
            return
        reasons = await reached(self.db, event)
        if not reasons:
            return
        hooks = [h for h in await webhook_store.active(self.db) if h.crisis_alerts]
        asking = await _city(self.db, problem.city)
        for city in await city_store.cities_by_slugs(self.db, sorted(reasons)):
            if city is None:
                continue
            claimed = await store.claim(
                self.db, problem=problem.id, city=city.slug, event_seq=event.seq, at=now()
            )
            if not claimed:
                continue  # alerted to this crisis before, by an earlier event
            for hook in hooks:
                if hook.city == city.slug:
                    await webhook_store.enqueue(
                        self.db, hook, event_seq=event.seq, event_at=event.occurred_at
                    )
            email = city.contact.email if city.contact else None
            if self.send_mail and email:
                alert = alert_mail(problem, asking, city, email, reasons[city.slug], self.app_url)
                await mail.queue(self.db, f"crisis:{problem.id}:{city.slug}", alert)
            log.info("crisis %s of %s: alerted %s", problem.id, problem.city, city.slug)


async def _city(db: Database, slug: str) -> City | None:
    (city,) = await city_store.cities_by_slugs(db, [slug])
    return city


def alert_mail(
    problem: Problem, asking: City | None, city: City, to: str, why: str, app_url: str
) -> Mail:
    """The email to `city`'s CRO team contact about `problem`, in the first of the city's
    languages the alert texts have (services/alert_texts.py), else English; `why` is
    FOLLOWS or CLOSE_PEER."""
    language, t = texts_for(city.languages)
    name = asking.name if asking else problem.city
    link = f"{app_url}/problems/{global_id('Problem', problem.id)}"
    hazards = ", ".join(label(h.value) for h in problem.hazards)
    because = t.follows.format(hazards=hazards) if why == FOLLOWS else t.close_peer
    footer = t.why.format(city=city.name, why=because)
    asks = t.asks.format(name=name)
    text = "\n".join(
        [
            f"{asks} {problem.title}",
            "",
            problem.summary,
            "",
            f"{t.hazards}: {hazards}",
            f"{t.open}: {link}",
            t.offer,
            "",
            footer,
        ]
    )
    e = html.escape
    body = (
        f'<html lang="{language}"><body>'
        f"<p><strong>{e(asks)}</strong> {e(problem.title)}</p><p>{e(problem.summary)}</p>"
        f"<p>{e(t.hazards)}: {e(hazards)}</p>"
        f'<p><a href="{e(link)}">{e(t.open_html)}</a> {e(t.offer_html)}</p>'
        f"<p><small>{e(footer)}</small></p></body></html>"
    )
    subject = t.subject.format(name=name, title=problem.title)
    return Mail(to=to, subject=subject, text=text, html=body)
