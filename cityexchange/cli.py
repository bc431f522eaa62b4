"""The `cityexchange` command line: serve, migrate, reindex, demo load, city add, token issue,
schema, and realm administration."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Generator, Sequence
from datetime import date, datetime
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from cityexchange import (
    document_commands,
    embedded,
    library_commands,
    organisation_commands,
    realm_commands,
    serve,
)
from cityexchange.auth.oauth_store import INDEXES as OAUTH_INDEXES
from cityexchange.auth.oauth_store import OAuthStore
from cityexchange.auth.tokens import MAX_ACCESS_TOKEN_TTL_SECONDS, issue_access_token, parse_scopes
from cityexchange.resources import Resources, open_resources
from cityexchange.serve import proxy_options
from cityexchange.services import cities
from cityexchange.services.errors import ServiceError
from cityexchange.services.models import City, Contact, GeoPoint, ResilienceProfile
from cityexchange.services.store.database import Database
from cityexchange.services.store.indexes import ensure_indexes
from cityexchange.services.taxonomy import Hazard, IncomeGroup
from cityexchange.settings import Secret, Settings, SettingsError

T = TypeVar("T")
DEFAULT_DATA_DIR = ".cityexchange"
ADMIN_TIMEOUT_MS = 30_000  # an admin command waits longer than a request would
log = logging.getLogger("cityexchange")
__all__ = ["main", "print_json", "proxy_options", "with_db", "with_resources", "with_store"]


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


def with_resources(
    settings: Settings,
    data_dir: Path,
    work: Callable[[Resources], Awaitable[T]],
    *,
    indexes: bool = True,
) -> T:
    """Run an async admin action with the service's resources (cityexchange/resources.py)
    on the database `data_dir` or the settings name, its indexes brought up to date first."""
    with _database_uri(settings, data_dir) as uri:
        admin = dataclasses.replace(
            settings,
            mongodb_uri=Secret(uri),
            operation_timeout_ms=max(settings.operation_timeout_ms, ADMIN_TIMEOUT_MS),
        )

        async def run() -> T:
            async with open_resources(admin) as resources:
                if indexes:
                    await ensure_indexes(
                        resources.db,
                        OAUTH_INDEXES,
                        event_retention_seconds=settings.event_retention_days * 86_400,
                    )
                return await work(resources)

        return asyncio.run(run())


def with_db(settings: Settings, data_dir: Path, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run an async admin action against the database `data_dir` or the settings name."""
    return with_resources(settings, data_dir, lambda resources: work(resources.db))


def with_store(settings: Settings, data_dir: Path, work: Callable[[OAuthStore], T]) -> T:
    """Run a realm-administration action with the authorization server's (synchronous)
    store, in a thread."""
    return with_resources(
        settings,
        data_dir,
        lambda resources: asyncio.to_thread(work, resources.oauth),
        indexes=False,
    )


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
        coastal=args.coastal,
        rivers=tuple(args.river),
        income_group=IncomeGroup(args.income_group.upper()) if args.income_group else None,
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

    async def work(resources: Resources) -> dict[str, Any]:
        await cities.require_city(db=resources.db, slug=args.city)
        registry = resources.registry
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

    print_json(with_resources(settings, Path(args.data_dir), work))


def _migrate(args: argparse.Namespace, settings: Settings) -> None:
    """Create or update the indexes, and turn people's affiliations into organisations
    (idempotent); run before a rollout."""

    async def work(db: Database) -> str:
        await organisation_commands.migrate(db)  # with_db has brought the indexes up to date
        return db.db.name

    name = with_db(settings, Path(args.data_dir), work)
    print_json({"database": name, "indexes": "up to date"})


def _reindex(args: argparse.Namespace, settings: Settings) -> None:
    """Rebuild the search index from the collections, printing progress on stderr."""
    from cityexchange.services import reindex

    def progress(kind: str, done: int) -> None:
        print(f"reindex: {kind}: {done}", file=sys.stderr, flush=True)

    async def work(db: Database) -> dict[str, int]:
        return await reindex.reindex(db=db, batch_size=args.batch_size, progress=progress)

    print_json({"indexed": with_db(settings, Path(args.data_dir), work)})


def _demo_load(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange import demo

    secret = demo.password(Path(args.data_dir))
    with _database_uri(settings, Path(args.data_dir)) as uri:
        configured = dataclasses.replace(settings, mongodb_uri=Secret(uri))
        tokens = asyncio.run(demo.load(configured, people_password=secret))
    print_json({"tokens": tokens, "valid_hours": 8, "people_password": secret})


def _schema(_: argparse.Namespace, __: Settings) -> None:
    from cityexchange.schema.root import build_schema

    print(build_schema(production=False).as_str())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cityexchange", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version('cityexchange')}"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def data_dir_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            default=DEFAULT_DATA_DIR,
            help=f"where the embedded database keeps its data (default: {DEFAULT_DATA_DIR})",
        )

    serve_command = commands.add_parser("serve", help="run the service")
    serve_command.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)"
    )
    serve_command.add_argument(
        "--port",
        type=int,
        default=8000,
        help="the port to listen on; 0 picks a free one (default: 8000). Without "
        "CITYEXCHANGE_PUBLIC_URL, issuers and OAuth endpoints name this address and port",
    )
    serve_command.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the socket and the database, each with its own "
        "lifespan; /metrics adds them up (default: 1)",
    )
    serve_command.add_argument(
        "--forwarded-allow-ips",
        metavar="ADDRESSES",
        help="comma-separated proxy addresses or networks whose X-Forwarded-For is believed "
        "(default: CITYEXCHANGE_TRUSTED_PROXIES, else none: the peer's own address counts)",
    )
    serve_command.add_argument(
        "--demo",
        action="store_true",
        help="load demo cities if the database is empty; print their tokens (development only)",
    )
    data_dir_option(serve_command)
    serve_command.set_defaults(run=serve.run)

    city = commands.add_parser("city", help="member cities").add_subparsers(
        dest="city_command", required=True
    )
    add = city.add_parser("add", help="register a member city (prints it as JSON)")
    add.add_argument(
        "--slug", required=True, help="the city's id in URLs and its realm, e.g. rotterdam"
    )
    add.add_argument("--name", required=True, help="the city's display name")
    add.add_argument("--country", required=True, help="ISO 3166-1 alpha-2 code")
    add.add_argument("--region", help="state, province or region")
    add.add_argument("--population", type=int, help="number of inhabitants")
    add.add_argument("--latitude", type=float, help="WGS 84 degrees (with --longitude)")
    add.add_argument("--longitude", type=float, help="WGS 84 degrees (with --latitude)")
    add.add_argument("--timezone", help="IANA time zone, e.g. Europe/Amsterdam")
    add.add_argument("--language", action="append", default=[], help="a language code (repeatable)")
    add.add_argument("--climate-zone", help="e.g. a Köppen code such as Cfb")
    add.add_argument(
        "--hazard",
        action="append",
        default=[],
        help=f"a hazard the city faces (repeatable): {', '.join(h.value.lower() for h in Hazard)}",
    )
    add.add_argument("--strategy", help="the title of the city's resilience strategy")
    add.add_argument("--strategy-year", type=int, help="the year the strategy was adopted")
    add.add_argument("--contact-name", help="who to contact at the city")
    add.add_argument("--contact-email", help="the contact's e-mail address")
    add.add_argument("--contact-url", help="the contact's web page")
    add.add_argument(
        "--network",
        action="append",
        default=[],
        help="a resilience network the city belongs to (repeatable)",
    )
    coast = add.add_mutually_exclusive_group()
    coast.add_argument(
        "--coastal",
        action="store_const",
        const=True,
        default=None,
        help="the city lies on a sea coast (peer cities and the implementing-city filter)",
    )
    coast.add_argument(
        "--inland",
        dest="coastal",
        action="store_const",
        const=False,
        help="the city does not lie on a sea coast (neither flag: not stated)",
    )
    add.add_argument(
        "--river",
        action="append",
        default=[],
        help="a major river the city lies on (repeatable), e.g. 'Nieuwe Maas'",
    )
    add.add_argument(
        "--income-group",
        choices=[g.value.lower() for g in IncomeGroup],
        type=str.lower,
        help="the World Bank income group of the city's country",
    )
    data_dir_option(add)
    add.set_defaults(run=_city_add)
    realm_commands.add_trust_issuer(city, data_dir_option)

    token = commands.add_parser("token", help="access tokens").add_subparsers(
        dest="token_command", required=True
    )
    issue = token.add_parser("issue", help="print an access token of a city's realm (JSON)")
    issue.add_argument("--city", required=True, help="the realm (city slug) that issues it")
    issue.add_argument("--scope", default="read", help='e.g. "read publish comment"')
    issue.add_argument("--sub", default="operator", help="the token's subject")
    issue.add_argument(
        "--client-id",
        default="cityexchange-cli",
        help="the client_id claim (default: cityexchange-cli)",
    )
    issue.add_argument(
        "--ttl",
        type=int,
        default=None,
        help="lifetime in seconds (default: the access-token lifetime)",
    )
    data_dir_option(issue)
    issue.set_defaults(run=_token_issue)

    realm_commands.add_parsers(commands, data_dir_option)
    document_commands.add_parsers(commands, data_dir_option)
    library_commands.add_parsers(commands, data_dir_option)
    organisation_commands.add_parsers(commands, data_dir_option)

    migrate = commands.add_parser(
        "migrate",
        help="create or update the database's indexes and make people's affiliations "
        "organisations, then exit (idempotent)",
    )
    data_dir_option(migrate)
    migrate.set_defaults(run=_migrate)

    reindex = commands.add_parser(
        "reindex",
        help="rebuild the search index from the problems, solutions and comments (after an "
        "upgrade from a version without it); stores the detected language of each text "
        "that has none. Searches see a partial index until it finishes",
    )
    reindex.add_argument(
        "--batch-size",
        type=int,
        default=100,
        help="documents indexed per transaction, 1 to 1000 (default: 100)",
    )
    data_dir_option(reindex)
    reindex.set_defaults(run=_reindex)

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
    settings: Settings | None = None
    try:
        settings = Settings.from_env()
        if getattr(args, "ttl", 0) is None:
            args.ttl = settings.access_token_ttl_seconds
        if args.run is not serve.run and hasattr(args, "data_dir"):
            settings = serve.follow_running(settings, Path(args.data_dir))
        args.run(args, settings)
    except (
        SettingsError,
        CommandError,
        serve.ServeError,
        embedded.EmbeddedDatabaseError,
    ) as exc:
        _report(args, settings, exc)
        return 2
    except ServiceError as exc:
        _report(args, settings, exc)
        return 1
    except serve.Stopped:
        return 0  # SIGTERM: an orderly stop, even when it came during start-up
    except KeyboardInterrupt:
        return 130
    return 0


def _report(args: argparse.Namespace, settings: Settings | None, error: Exception) -> None:
    """An error on stderr; `serve` in production logs it (every line it writes is JSON)."""
    if args.run is serve.run and settings is not None and settings.production:
        log.error("cityexchange: %s", error)
    else:
        print(f"cityexchange: {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
