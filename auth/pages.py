"""The realm's server-rendered pages: sign-in, first-time consent, errors. Plain HTML, every
value escaped; no scripts, so a strict Content-Security-Policy holds."""

from __future__ import annotations

from html import escape

SECURITY_HEADERS = {
    # No form-action: browsers apply it to the redirect that follows the form (to the app's
    # redirect URI), which would block the very end of the flow. CSRF tokens guard the forms.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}"
    "label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem}"
    "button{margin-top:1rem;padding:.5rem 1rem}.error{color:#a00}"
)


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def sign_in(
    *, city_name: str, client_name: str, action: str, csrf: str, error: str | None = None
) -> str:
    """The sign-in form: `username` and `password`, posted (never in the URL)."""
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _page(
        f"Sign in to {city_name}",
        (
            f"<h1>{escape(city_name)}</h1>"
            f"<p>Sign in to continue to <strong>{escape(client_name)}</strong>.</p>{message}"
            f'<form method="post" action="{escape(action)}">'
            f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">'
            f'<label for="username">Username</label>'
            f'<input id="username" name="username" autocomplete="username" required>'
            f'<label for="password">Password</label>'
            f'<input id="password" name="password" type="password" '
            f'autocomplete="current-password" required>'
            f'<button type="submit">Sign in</button></form>'
        ),
    )


def consent(
    *, city_name: str, client_name: str, scopes: list[str], action: str, csrf: str, ticket: str
) -> str:
    """First-time consent: what the application asks to do on the person's behalf."""
    items = "".join(f"<li>{escape(scope)}</li>" for scope in scopes)
    return _page(
        f"Allow {client_name}?",
        (
            f"<h1>{escape(city_name)}</h1>"
            f"<p><strong>{escape(client_name)}</strong> asks to act for you with these "
            f"permissions:</p><ul>{items}</ul>"
            f'<form method="post" action="{escape(action)}">'
            f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">'
            f'<input type="hidden" name="ticket" value="{escape(ticket)}">'
            f'<button type="submit" name="decision" value="allow">Allow</button> '
            f'<button type="submit" name="decision" value="deny">Deny</button></form>'
        ),
    )


def error(*, title: str, detail: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(detail)}</p>")


def invitation(*, city_name: str, action: str, csrf: str, error: str | None = None) -> str:
    """Set a first password with the invitation code a city admin handed over."""
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _page(
        f"Join {city_name}",
        (
            f"<h1>{escape(city_name)}</h1><p>Choose your password to finish your invitation.</p>"
            f'{message}<form method="post" action="{escape(action)}">'
            f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">'
            f'<label for="username">Username</label>'
            f'<input id="username" name="username" autocomplete="username" required>'
            f'<label for="code">Invitation code</label>'
            f'<input id="code" name="code" autocomplete="one-time-code" required>'
            f'<label for="password">New password (at least 10 characters)</label>'
            f'<input id="password" name="password" type="password" autocomplete="new-password" '
            f'minlength="10" required><button type="submit">Set password</button></form>'
        ),
    )


def done(*, title: str, detail: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(detail)}</p>")
