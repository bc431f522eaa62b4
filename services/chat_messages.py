"""Webhook bodies for chat channels: an event told as a short message with a link back to the
web app, for Slack's incoming webhooks and Microsoft Teams' Workflows webhooks.

A message is built when its delivery is attempted, from what the webhook's city may see then:
the title of the problem or solution an event is about appears only while that city may read
it, and an event that took it away (WITHDRAWN) never carries it. Text from cities (titles,
city names) is never read as markup: Slack's control characters are escaped and its title
goes in plain text; Teams gets text runs, which Adaptive Cards do not parse as Markdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cityexchange.services.ids import global_id
from cityexchange.services.models import Event, EventType
from cityexchange.services.store import cities as city_store
from cityexchange.services.store import problems as problem_store
from cityexchange.services.store import solutions as solution_store
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Urgency, label
from cityexchange.services.visibility import Viewer

# Slack's limit for a section's text (Block Kit reference, section block).
SLACK_TEXT_MAX = 3000
OPEN = "Open in Peer City Exchange"

_DONE: dict[EventType, str] = {
    EventType.PROBLEM_PUBLISHED: "published a problem",
    EventType.PROBLEM_UPDATED: "updated a problem",
    EventType.PROBLEM_ANSWERED: "answered a problem with a solution",
    EventType.PROBLEM_FACED_TOO: "faces this problem too",
    EventType.SOLUTION_PUBLISHED: "published a solution",
    EventType.SOLUTION_ADAPTED: "adapted a solution",
    EventType.SOLUTION_UPDATED: "updated a solution",
    EventType.COMMENT_ADDED: "commented",
    EventType.COMMENT_EDITED: "edited a comment",
    EventType.COMMENT_DELETED: "deleted a comment",
    EventType.COMMENT_HIDDEN: "hid a comment",
    EventType.FOLLOWED_BY_CITY: "follows",
    EventType.ADOPTION_CHANGED: "changed its adoption of a solution",
    EventType.OUTCOME_REPORTED: "reported an outcome of a solution",
    EventType.SOLUTION_ENDORSED: "endorsed a solution",
    EventType.HELP_OFFERED: "offered help with a problem",
}
_PATHS = {"Problem": "problems", "Solution": "solutions"}


@dataclass(frozen=True, slots=True)
class Message:
    headline: str  # "Rotterdam published a problem"
    title: str | None  # the problem's or solution's, when the receiving city may read it
    link: str  # its page in the web app, or the app's start page
    labels: tuple[str, ...]  # urgency and hazards, for a line of context


async def message_of(db: Database, event: Event, *, city: str, app_url: str) -> Message:
    """`event` as told to `city`'s channel; `app_url` is the web app's base URL."""
    labels = tuple(label(h.value) for h in event.hazards)
    if event.urgency is Urgency.ACTIVE_CRISIS:
        labels = ("Active crisis", *labels)
    if event.type is EventType.WITHDRAWN:
        return Message(
            "A problem or solution is no longer shared with your city", None, app_url, ()
        )
    (acting,) = await city_store.cities_by_slugs(db, [event.city])
    headline = f"{acting.name if acting else event.city} {_DONE[event.type]}"
    thread = await _thread(db, event, Viewer.of_city(city))
    if thread is None:
        return Message(headline, None, app_url, labels)
    kind, title = thread
    return Message(
        headline, title, f"{app_url}/{_PATHS[kind]}/{global_id(kind, event.thread_id)}", labels
    )


async def _thread(db: Database, event: Event, viewer: Viewer) -> tuple[str, str] | None:
    """The kind and title of the problem or solution `event` is about, if `viewer` may see it.
    An event about a comment, adoption or outcome does not say which kind its thread is: ids
    are unique across collections, so the problem is looked for first, then the solution."""
    if not event.thread_id:
        return None
    if event.subject_kind != "Solution":
        (problem,) = await problem_store.problems_by_ids(db, [event.thread_id], viewer=viewer)
        if problem is not None:
            return "Problem", problem.title
    if event.subject_kind != "Problem":
        (solution,) = await solution_store.solutions_by_ids(db, [event.thread_id], viewer=viewer)
        if solution is not None:
            return "Solution", solution.title
    return None


def slack(message: Message) -> dict[str, Any]:
    """A Slack incoming-webhook body: `text` for notifications, blocks for the channel."""
    headline = _slack_escaped(message.headline)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}}
    ]
    if message.title:
        title = _cut(message.title, SLACK_TEXT_MAX)
        blocks.append({"type": "section", "text": {"type": "plain_text", "text": title}})
    if message.labels:
        context = {"type": "plain_text", "text": " · ".join(message.labels)}
        blocks.append({"type": "context", "elements": [context]})
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": OPEN},
        "url": message.link,
    }
    blocks.append({"type": "actions", "elements": [button]})
    told = message.headline + (f": {message.title}" if message.title else "")
    # Cut before escaping, so that no entity is cut in half; escaping at most quintuples.
    return {"text": _slack_escaped(_cut(told, SLACK_TEXT_MAX // 5)), "blocks": blocks}


def teams(message: Message) -> dict[str, Any]:
    """A Teams Workflows webhook body: one message carrying an Adaptive Card (version 1.4)."""
    body: list[dict[str, Any]] = [_runs(message.headline, weight="Bolder")]
    if message.title:
        body.append(_runs(message.title, size="Medium"))
    if message.labels:
        body.append(_runs(" · ".join(message.labels), isSubtle=True))
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": OPEN, "url": message.link}],
    }
    attachment = {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": card,
    }
    return {"type": "message", "attachments": [attachment]}


def _runs(text: str, **style: object) -> dict[str, Any]:
    """A RichTextBlock of one TextRun: plain text, never read as Markdown."""
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text, **style}]}


def _slack_escaped(text: str) -> str:
    """Slack reads &, < and > as control characters (links, mentions such as <!channel>)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
