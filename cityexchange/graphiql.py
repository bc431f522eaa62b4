"""GraphiQL, served from the package: the page and the assets it loads (static/graphiql/,
pinned builds from the npm registry) come from this server only, so the IDE works offline.
Development only: in production the view renders no IDE and the app mounts no assets."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

ASSETS_PATH = "/graphiql"
ASSETS_DIRECTORY = Path(__file__).parent / "static" / "graphiql"
STYLES = ("graphiql.min.css",)
# In load order: the UMD builds set the globals page.js uses (React, ReactDOM, GraphiQL,
# graphqlWs).
SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphql-ws.min.js",
    "page.js",
)
# Nothing from another origin; GraphiQL sets inline styles and its CSS embeds its fonts and
# icons as data: URLs. 'self' in connect-src covers ws:/wss: to this host (CSP Level 3).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Peer City Exchange · GraphiQL</title>
    <meta name="viewport" content="width=device-width, initial-scale=1">
{styles}
    <style>
      body {{ margin: 0; height: 100vh; display: flex; flex-direction: column;
              font-family: system-ui, sans-serif; }}
      #token-help {{ padding: 6px 12px; font-size: 14px; background: #fdf6e3;
                     border-bottom: 1px solid #ddd; }}
      #graphiql {{ flex: 1; min-height: 0; }}
    </style>
  </head>
  <body>
    <div id="token-help">
      Send a token in the <b>Headers</b> pane:
      <code>{{"Authorization": "Bearer &lt;token&gt;"}}</code>.
      <code>./dev serve --demo</code> prints one per demo city;
      <code>./dev token issue --city rotterdam</code> mints another.
    </div>
    <div id="graphiql">Loading GraphiQL…</div>
{scripts}
  </body>
</html>
"""


def asset_urls() -> list[str]:
    """The paths of every asset the page loads, in order: styles first."""
    return [f"{ASSETS_PATH}/{name}" for name in (*STYLES, *SCRIPTS)]


def page() -> str:
    """The GraphiQL page: only this server's assets."""
    styles = "\n".join(
        f'    <link rel="stylesheet" href="{ASSETS_PATH}/{name}">' for name in STYLES
    )
    scripts = "\n".join(f'    <script src="{ASSETS_PATH}/{name}"></script>' for name in SCRIPTS)
    return _PAGE.format(styles=styles, scripts=scripts)


def response() -> HTMLResponse:
    """The page, with a policy that forbids loading anything from elsewhere."""
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(page(), headers=headers)


def assets() -> Mount:
    """The route of the assets (mount it only outside production)."""
    return Mount(ASSETS_PATH, app=StaticFiles(directory=ASSETS_DIRECTORY), name="graphiql")
