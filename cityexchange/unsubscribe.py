"""The links digests mail (services/digests.py): `/digests/confirm?token=...` in the message
that asks an address's owner to confirm it, `/digests/unsubscribe?token=...` in every digest.

GET shows a page that asks, with a button, in the digest's language: a link checker or a
mail filter that follows links must neither confirm nor unsubscribe anyone. POST acts: the
page's button, or for unsubscribing the mail client's one-click (RFC 8058, a POST with the
body `List-Unsubscribe=One-Click`), which needs no page and no sign-in. The token can do
nothing but confirm or stop that one digest.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from cityexchange.resources import Current
from cityexchange.services import digests
from cityexchange.services.digest_texts import TEXTS

_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; style-src 'unsafe-inline'",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Frame-Options": "DENY",
}


def _page(language: str, message: str, *, button: str | None, status: int) -> Response:
    e = html.escape
    form = (
        f'<form method="post"><button type="submit">{e(button)}</button></form>' if button else ""
    )
    body = (
        f'<!doctype html><html lang="{e(language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>Peer City Exchange</title></head><body style="font-family: sans-serif; '
        f'max-width: 40rem; margin: 2rem auto; padding: 0 1rem"><h1>Peer City Exchange</h1>'
        f"<p>{e(message)}</p>{form}</body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


def routes(current: Current) -> list[Route]:
    async def unsubscribe(request: Request) -> Response:
        token = request.query_params.get("token", "")
        db = current().db
        language = await digests.language_of_token(db, token)
        if request.method == "POST":
            stopped = await digests.unsubscribe(db, token)
            t = TEXTS[language or "en"]
            # Already stopped is as good as stopped: a second click, or a retried POST.
            return _page(language or "en", t.done if stopped else t.gone, button=None, status=200)
        if language is None:
            return _page("en", TEXTS["en"].gone, button=None, status=404)
        t = TEXTS[language]
        return _page(language, t.confirm, button=t.unsubscribe, status=200)

    async def confirm(request: Request) -> Response:
        token = request.query_params.get("token", "")
        db = current().db
        language = await digests.language_of_token(db, token)
        if language is None:
            return _page("en", TEXTS["en"].gone, button=None, status=404)
        t = TEXTS[language]
        if request.method == "POST":
            await digests.confirm(db, token)
            return _page(language, t.confirmed, button=None, status=200)
        return _page(language, t.ask_page, button=t.ask_button, status=200)

    return [
        Route(digests.UNSUBSCRIBE_PATH, unsubscribe, methods=["GET", "POST"]),
        Route(digests.CONFIRM_PATH, confirm, methods=["GET", "POST"]),
    ]
