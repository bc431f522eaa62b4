"""The `cityexchange` command line: serve, migrate, demo load, city add, token issue, schema,
and realm administration."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Generator, Sequence
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from auth.oauth_store import INDEXES as OAUTH_INDEXES
from auth.oauth_store import OAuthStore
from auth.realms import RealmRegistry
from auth.tokens import MAX_ACCESS_TOKEN_TTL_SECONDS, issue_access_token, parse_scopes
from cityexchange import embedded, logs, realm_commands
from cityexchange.settings import Secret, Settings, SettingsError
from services import cities
from services.errors import ServiceError
from services.models import City, Contact, GeoPoint, ResilienceProfile
from services.store.database import Database
from services.store.indexes import ensure_indexes
from services.taxonomy import Hazard

T = TypeVar("T")
DEFAULT_DATA_DIR = ".cityexchange"
WEBSOCKET_MESSAGE_MAX = 64 * 1024  # BRIEF §7
log = logging.getLogger("cityexchange")


class CommandError(Exception):
    """A command cannot do what was asked; the message says why."""


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(type(value).__name__)


def print_json(value: object) -> None:
    print(json.dumps(value, default=_json_default, indent=2, ensure_ascii=False))


@contextlib.contextmanager
def _database_uri(settings: Settings, data_dir: Path) -> Generator[str]:
    """Where admin commands find the database: the configured URI, the embedded database a
    running `serve` uses on `data_dir`, or one started just for this command."""
    if settings.mongodb_uri is not None:
        yield settings.mongodb_uri.value
        return
    running = embedded.running(data_dir)
    if running is not None:
        yield running.uri
        return
    with embedded.EmbeddedDatabase(data_dir) as database:
        yield database.uri


def with_db(settings: Settings, data_dir: Path, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run an async admin action against the database `data_dir` or the settings name."""
    with _database_uri(settings, data_dir) as uri:

        async def run() -> T:
            db = Database.connect(
                uri,
                settings.db_name,
                server_selection_timeout_ms=settings.server_selection_timeout_ms,
                timeout_ms=max(settings.operation_timeout_ms, 30_000),
            )
            try:
                await ensure_indexes(
                    db,
                    OAUTH_INDEXES,
                    event_retention_seconds=settings.event_retention_days * 86_400,
                )
                return await work(db)
            finally:
                await db.close()

        return asyncio.run(run())


def with_store(settings: Settings, data_dir: Path, work: Callable[[OAuthStore], T]) -> T:
    """Run a realm-administration action with the authorization server's store."""
    with _database_uri(settings, data_dir) as uri:
        store = OAuthStore.connect(
            uri, settings.db_name,
            server_selection_timeout_ms=settings.server_selection_timeout_ms,
            timeout_ms=max(settings.operation_timeout_ms, 30_000),
        )  # fmt: skip
        try:
            return work(store)
        finally:
            store.close()


def _city_add(args: argparse.Namespace, settings: Settings) -> None:
    location = None
    if args.latitude is not None or args.longitude is not None:
        if args.latitude is None or args.longitude is None:
            raise CommandError("give both --latitude and --longitude")
        location = GeoPoint(longitude=args.longitude, latitude=args.latitude)
    try:
        hazards = tuple(Hazard(h.upper()) for h in args.hazard)
    except ValueError as exc:
        raise CommandError(f"{exc}; hazards are: {', '.join(Hazard)}") from None
    city = City(
        slug=args.slug,
        name=args.name,
        country=args.country.upper(),
        created_at=datetime.min,
        region=args.region,
        population=args.population,
        location=location,
        timezone=args.timezone,
        languages=tuple(args.language),
        climate_zone=args.climate_zone,
        profile=ResilienceProfile(hazards, args.strategy, args.strategy_year),
        contact=Contact(args.contact_name, args.contact_email, args.contact_url)
        if args.contact_email or args.contact_name or args.contact_url
        else None,
        networks=tuple(args.network),
    )

    async def work(db: Database) -> City:
        return await cities.add_city(db=db, city=city)

    added = with_db(settings, Path(args.data_dir), work)
    registry_issuer = f"{settings.public_url}/realms/{added.slug}"
    print_json({**dataclasses.asdict(added), "issuer": registry_issuer})


def _token_issue(args: argparse.Namespace, settings: Settings) -> None:
    try:
        scopes = parse_scopes(args.scope)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not 60 <= args.ttl <= MAX_ACCESS_TOKEN_TTL_SECONDS:
        raise CommandError("--ttl must be between 60 seconds and 7 days")

    async def work(db: Database) -> dict[str, Any]:
        await cities.require_city(db=db, slug=args.city)
        registry = RealmRegistry(db, settings.public_url)
        token = await issue_access_token(
            registry,
            registry.realm(args.city),
            subject=args.sub,
            scopes=scopes,
            client_id=args.client_id,
            audience=settings.audience,
            ttl_seconds=args.ttl,
        )
        return {
            "access_token": token.access_token,
            "token_type": "Bearer",
            "expires_in": token.expires_in,
            "scope": token.scope,
            "issuer": token.issuer,
        }

    print_json(with_db(settings, Path(args.data_dir), work))


def _migrate(args: argparse.Namespace, settings: Settings) -> None:
    """Create or update the indexes (idempotent); run before a rollout."""

    async def work(db: Database) -> str:
        return db.db.name  # with_db has brought the indexes up to date

    name = with_db(settings, Path(args.data_dir), work)
    print_json({"database": name, "indexes": "up to date"})


def _demo_load(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange import demo

    with _database_uri(settings, Path(args.data_dir)) as uri:
        tokens = asyncio.run(demo.load(dataclasses.replace(settings, mongodb_uri=Secret(uri))))
    print_json({"tokens": tokens, "valid_hours": 8})


def _schema(_: argparse.Namespace, __: Settings) -> None:
    from schema.root import build_schema

    print(build_schema(production=False).as_str())


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from cityexchange import demo
    from cityexchange.app import create_app
    from cityexchange.tracing import start_if_enabled

    logs.configure(production=settings.production, level=settings.log_level)
    # Until uvicorn installs its own handlers, SIGTERM unwinds like Ctrl-C, so the embedded
    # database below is always stopped.
    signal.signal(signal.SIGTERM, _raise_stopped)
    data_dir = Path(args.data_dir)
    database: embedded.EmbeddedDatabase | None = None
    try:
        if settings.mongodb_uri is None:
            database = embedded.EmbeddedDatabase(data_dir)
            print(f"Starting the embedded database (data in {data_dir.resolve()}) ...", flush=True)
            settings = dataclasses.replace(settings, mongodb_uri=Secret(database.start()))
            database.supervise()  # restarted on the same port should it die; see embedded.py
        listener = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((args.host, args.port))
        except OSError as exc:
            raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
        host, port = listener.getsockname()[:2]
        url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/graphql"
        if args.demo:
            tokens = asyncio.run(demo.load(settings))
            print("\nDemo tokens (valid for 8 hours; send as 'Authorization: Bearer <token>'):")
            for slug, token in tokens.items():
                print(f"  {slug:<14} {token}")
        print(f"\nGraphQL endpoint: {url}\n", flush=True)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, handle_sigterm=True, tracing=start_if_enabled()),
                log_level="info",
                log_config=None,  # logs.configure has set up every logger
                access_log=False,  # the app logs one line per request, with its request id
                lifespan="on",
                ws_max_size=WEBSOCKET_MESSAGE_MAX,
                ws_per_message_deflate=False,  # see docs/performance.md
                **proxy_options(args.forwarded_allow_ips or settings.trusted_proxies),
            )
        )
        # uvicorn re-raises the signal it shut down on; the stop was orderly.
        with contextlib.suppress(KeyboardInterrupt, _Stopped):
            server.run(sockets=[listener])
    finally:
        if database is not None:
            database.stop()


def proxy_options(trusted: str | Sequence[str]) -> dict[str, Any]:
    """uvicorn's proxy settings for `serve`: X-Forwarded-For/-Proto are believed only from
    `trusted` peers, and from none when it is empty (uvicorn itself would trust 127.0.0.1,
    or whatever FORWARDED_ALLOW_IPS says)."""
    peers = [p.strip() for p in trusted.split(",")] if isinstance(trusted, str) else trusted
    peers = [p for p in peers if p]
    if not peers:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(peers)}


class _Stopped(SystemExit):
    """SIGTERM arrived: unwind (stopping the embedded database) and exit. A SystemExit, so
    that asyncio re-raises it from a callback instead of logging and swallowing it."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cityexchange", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def data_dir_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            default=DEFAULT_DATA_DIR,
            help=f"where the embedded database keeps its data (default: {DEFAULT_DATA_DIR})",
        )

    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--forwarded-allow-ips",
        metavar="ADDRESSES",
        help="comma-separated proxy addresses or networks whose X-Forwarded-For is believed "
        "(default: CITYEXCHANGE_TRUSTED_PROXIES, else none: the peer's own address counts)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="load demo cities if the database is empty; print their tokens",
    )
    data_dir_option(serve)
    serve.set_defaults(run=_serve)

    city = commands.add_parser("city", help="member cities").add_subparsers(
        dest="city_command", required=True
    )
    add = city.add_parser("add", help="register a member city (prints it as JSON)")
    add.add_argument("--slug", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--country", required=True, help="ISO 3166-1 alpha-2 code")
    add.add_argument("--region")
    add.add_argument("--population", type=int)
    add.add_argument("--latitude", type=float)
    add.add_argument("--longitude", type=float)
    add.add_argument("--timezone")
    add.add_argument("--language", action="append", default=[])
    add.add_argument("--climate-zone")
    add.add_argument("--hazard", action="append", default=[])
    add.add_argument("--strategy")
    add.add_argument("--strategy-year", type=int)
    add.add_argument("--contact-name")
    add.add_argument("--contact-email")
    add.add_argument("--contact-url")
    add.add_argument("--network", action="append", default=[])
    data_dir_option(add)
    add.set_defaults(run=_city_add)
    realm_commands.add_trust_issuer(city, data_dir_option)

    token = commands.add_parser("token", help="access tokens").add_subparsers(
        dest="token_command", required=True
    )
    issue = token.add_parser("issue", help="print an access token of a city's realm (JSON)")
    issue.add_argument("--city", required=True)
    issue.add_argument("--scope", default="read", help='e.g. "read publish comment"')
    issue.add_argument("--sub", default="operator", help="the token's subject")
    issue.add_argument("--client-id", default="cityexchange-cli")
    issue.add_argument(
        "--ttl",
        type=int,
        default=None,
        help="lifetime in seconds (default: the access-token lifetime)",
    )
    data_dir_option(issue)
    issue.set_defaults(run=_token_issue)

    realm_commands.add_parsers(commands, data_dir_option)

    migrate = commands.add_parser(
        "migrate", help="create or update the database's indexes, then exit (idempotent)"
    )
    data_dir_option(migrate)
    migrate.set_defaults(run=_migrate)

    demo = commands.add_parser("demo", help="the demo cities").add_subparsers(
        dest="demo_command", required=True
    )
    load = demo.add_parser(
        "load", help="load the demo cities into an empty database; print a token per city"
    )
    data_dir_option(load)
    load.set_defaults(run=_demo_load)

    schema = commands.add_parser("schema", help="print the GraphQL SDL")
    schema.set_defaults(run=_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if getattr(args, "ttl", 0) is None:
            args.ttl = settings.access_token_ttl_seconds
        args.run(args, settings)
    except (SettingsError, CommandError, embedded.EmbeddedDatabaseError) as exc:
        print(f"cityexchange: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"cityexchange: {exc}", file=sys.stderr)
        return 1
    except _Stopped:
        return 0  # SIGTERM: an orderly stop, even when it came during start-up
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
