"""`cityexchange serve`: the embedded database (unless one is configured), the listening
socket, the demo or the next steps, then uvicorn, in this process or in N workers.

Without CITYEXCHANGE_PUBLIC_URL the service advertises the address it listens on (issuers,
OAuth endpoints), and writes it to `serving.json` in the data directory, so that admin
commands run with the same `--data-dir` issue tokens for it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shlex
import signal
import socket
import tempfile
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from cityexchange import embedded, logs, runtime
from cityexchange.settings import Secret, Settings

SERVING_FILE = "serving.json"
WEBSOCKET_MESSAGE_MAX = 64 * 1024
APP_FACTORY = "cityexchange.app:app_from_env"


class ServeError(Exception):
    """`serve` cannot start as asked; the message says why."""


class Stopped(SystemExit):
    """SIGTERM arrived: unwind (stopping the embedded database) and exit. A SystemExit, so
    that asyncio re-raises it from a callback instead of logging and swallowing it."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped


def run(args: argparse.Namespace, settings: Settings) -> None:
    """The `serve` command."""
    logs.configure(production=settings.production, level=settings.log_level)
    console = logs.Console(production=settings.production)
    if args.demo and settings.production:
        raise ServeError("--demo is for development (CITYEXCHANGE_ENV=dev)")
    if args.workers < 1:
        raise ServeError("--workers must be 1 or more")
    # Until uvicorn installs its own handlers, SIGTERM unwinds like Ctrl-C, so the embedded
    # database below is always stopped.
    signal.signal(signal.SIGTERM, _raise_stopped)
    data_dir = Path(args.data_dir)
    database: embedded.EmbeddedDatabase | None = None
    try:
        if settings.mongodb_uri is None:
            database = embedded.EmbeddedDatabase(data_dir)
            where = str(data_dir.resolve())
            console.say(
                f"Starting the embedded database (data in {where}) ...",
                "starting the embedded database",
                data_dir=where,
            )
            settings = dataclasses.replace(settings, mongodb_uri=Secret(database.start()))
            database.supervise()  # restarted on the same port should it die; see embedded.py
        listener = _listen(args.host, args.port)
        host, port = listener.getsockname()[:2]
        url = f"http://{_bracketed(host)}:{port}/graphql"
        if not settings.public_url_configured:
            settings = dataclasses.replace(settings, public_url=advertised_url(host, port))
        with _serving_file(data_dir, settings.public_url):
            _introduce(console, args, settings, url)
            _run_uvicorn(args, settings, listener, console, metrics_dir=_metrics_dir(database))
            console.say("Stopped serving.", "stopped serving")
    finally:
        if database is not None:
            console.say("Stopping the embedded database ...", "stopping the embedded database")
            database.stop()
            console.say("The embedded database stopped.", "the embedded database stopped")


def _listen(host: str, port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc}") from None
    return listener


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def advertised_url(host: str, port: int) -> str:
    """The public URL of a service listening on host:port: a wildcard address is reached on
    loopback from this machine."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - matched only
    return f"http://{_bracketed(shown)}:{port}"


@contextlib.contextmanager
def _serving_file(data_dir: Path, public_url: str) -> Generator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SERVING_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"pid": os.getpid(), "public_url": public_url}))
    temporary.replace(path)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def follow_running(settings: Settings, data_dir: Path) -> Settings:
    """An admin command's settings: without CITYEXCHANGE_PUBLIC_URL, the public URL of the
    `serve` running on `data_dir`, if one is (its tokens must name that issuer)."""
    if settings.public_url_configured:
        return settings
    try:
        state = json.loads((data_dir / SERVING_FILE).read_text())
        pid, public_url = int(state["pid"]), str(state["public_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return settings
    if not embedded.alive(pid):
        return settings
    return dataclasses.replace(settings, public_url=public_url)


def _introduce(
    console: logs.Console, args: argparse.Namespace, settings: Settings, url: str
) -> None:
    """The demo's tokens, or on an empty database what to do next; then the URL."""
    from cityexchange import demo

    if args.demo:
        secret = demo.password(Path(args.data_dir))
        tokens = asyncio.run(demo.load(settings, people_password=secret))
        print("\nDemo tokens (valid for 8 hours; send as 'Authorization: Bearer <token>'):")
        for slug, token in tokens.items():
            print(f"  {slug:<14} {token}")
        print(
            "The library's other member cities have no demo people; a token for any of them:"
            f"\n  ./dev token issue --city <slug> --data-dir {shlex.quote(args.data_dir)}"
        )
        people = ", ".join(f"{city}/{username}" for city, username, _ in demo.sign_ins()[:4])
        print(
            f"\nThe web app: {settings.public_url}/app - pick a city and sign in as one of its"
            f" demo people ({people}, ...) with the password {secret}"
        )
    elif asyncio.run(demo.is_empty(settings)):
        steps = next_steps(args.data_dir, url)
        console.say(
            "\n".join(steps),
            "the database has no member cities yet",
            next_steps=[step.strip() for step in steps],
        )
    console.say(f"\nGraphQL endpoint: {url}\n", "serving", url=url, workers=args.workers)


def next_steps(data_dir: str, url: str) -> list[str]:
    """What to run on an empty database, with the same data directory."""
    where = f" --data-dir {shlex.quote(data_dir)}"
    return [
        "\nThe database has no member cities yet. Next steps, in another terminal:",
        f"  cityexchange city add --slug rotterdam --name Rotterdam --country NL{where}",
        f'  cityexchange token issue --city rotterdam --scope "read publish comment"{where}',
        f"  then send the access_token as 'Authorization: Bearer <token>' to {url}",
        "(or start with `cityexchange serve --demo` for eight demo cities)",
    ]


def _metrics_dir(database: embedded.EmbeddedDatabase | None) -> Path | None:
    return database.data_dir / "metrics" if database is not None else None


def _run_uvicorn(
    args: argparse.Namespace,
    settings: Settings,
    listener: socket.socket,
    console: logs.Console,
    *,
    metrics_dir: Path | None,
) -> None:
    import uvicorn

    options: dict[str, Any] = {
        "log_level": "info",
        "log_config": None,  # logs.configure has set up every logger
        "access_log": False,  # the app logs one line per request, with its request id
        "lifespan": "on",
        "ws_max_size": WEBSOCKET_MESSAGE_MAX,
        "ws_per_message_deflate": False,  # see docs/performance.md
        **proxy_options(args.forwarded_allow_ips or settings.trusted_proxies),
    }
    if args.workers == 1:
        from cityexchange.app import create_app
        from cityexchange.tracing import start_if_enabled

        app = create_app(settings, handle_sigterm=True, tracing=start_if_enabled())
        server = uvicorn.Server(uvicorn.Config(app, **options))
        runtime.tune_collector()
        # uvicorn re-raises the signal it shut down on; the stop was orderly.
        with contextlib.suppress(KeyboardInterrupt, Stopped):
            server.run(sockets=[listener])
        return
    from uvicorn.supervisors import Multiprocess

    with _multiprocess_metrics(metrics_dir) as directory:
        # Each worker is a fresh interpreter that builds the app from the environment
        # (app_from_env) and runs its own lifespan; they share this database and socket.
        assert settings.mongodb_uri is not None
        os.environ.update(
            CITYEXCHANGE_MONGODB_URI=settings.mongodb_uri.value,
            CITYEXCHANGE_PUBLIC_URL=settings.public_url,
            PROMETHEUS_MULTIPROC_DIR=str(directory),
        )
        config = uvicorn.Config(APP_FACTORY, factory=True, workers=args.workers, **options)
        with contextlib.suppress(KeyboardInterrupt, Stopped):
            Multiprocess(config, sockets=[listener]).run()
        console.say("The workers stopped.", "the workers stopped")


@contextlib.contextmanager
def _multiprocess_metrics(directory: Path | None) -> Generator[Path]:
    """PROMETHEUS_MULTIPROC_DIR for the workers, emptied first (values of an earlier run
    would be summed in): in the data directory, else a temporary one."""
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="cityexchange-metrics-") as temporary:
            yield Path(temporary)
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    yield directory


def proxy_options(trusted: str | Sequence[str]) -> dict[str, Any]:
    """uvicorn's proxy settings for `serve`: X-Forwarded-For/-Proto are believed only from
    `trusted` peers, and from none when it is empty (uvicorn itself would trust 127.0.0.1,
    or whatever FORWARDED_ALLOW_IPS says)."""
    peers = [p.strip() for p in trusted.split(",")] if isinstance(trusted, str) else trusted
    peers = [p for p in peers if p]
    if not peers:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(peers)}
