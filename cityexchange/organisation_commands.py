"""Organisations on the command line: `organisation add`, and the part of `migrate` that turns
people's free-text affiliations into organisations."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cityexchange.services import organisations
from cityexchange.services.models import Organisation, OrganisationDraft, PublicContact
from cityexchange.services.store.database import Database
from cityexchange.services.taxonomy import Hazard, OrganisationKind, Sector
from cityexchange.settings import Settings


def _choice(enum: Any, value: str, option: str) -> Any:
    from cityexchange.cli import CommandError

    try:
        return enum(value.upper())
    except ValueError:
        raise CommandError(f"{option}: one of {', '.join(enum)}") from None


def _add(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import CommandError, print_json, with_db

    if (args.city is None) == (not args.international):
        raise CommandError("give either --city or --international")
    contact = PublicContact(email=args.email, url=args.url, phone=args.phone)
    draft = OrganisationDraft(
        city=args.city,
        name=args.name,
        kind=_choice(OrganisationKind, args.kind, "--kind"),
        sectors=tuple(_choice(Sector, s, "--sector") for s in args.sector),
        hazards=tuple(_choice(Hazard, h, "--hazard") for h in args.hazard),
        description=args.description,
        contact=contact if args.email or args.url or args.phone else None,
    )

    async def work(db: Database) -> Organisation:
        return await organisations.add_organisation(db=db, draft=draft)

    print_json(dataclasses.asdict(with_db(settings, Path(args.data_dir), work)))


async def migrate(db: Database) -> organisations.Migrated:
    """`migrate`'s organisations step, its counts on stderr (stdout stays the indexes' JSON)."""
    migrated = await organisations.migrate_affiliations(db=db)
    print(
        f"migrate: organisations: {migrated.organisations_added} added, "
        f"{migrated.people_linked} people linked, {migrated.people_skipped} skipped",
        file=sys.stderr,
        flush=True,
    )
    return migrated


def add_parsers(commands: Any, data_dir_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """`organisation add`."""
    organisation = commands.add_parser("organisation", help="a city's organisations")
    subcommands = organisation.add_subparsers(dest="organisation_command", required=True)
    add = subcommands.add_parser("add", help="add an organisation (prints it as JSON)")
    where = add.add_mutually_exclusive_group()
    where.add_argument("--city", help="the city (slug) it belongs to")
    where.add_argument(
        "--international", action="store_true", help="an international organisation (no city)"
    )
    add.add_argument("--name", required=True, help="unique within its city")
    add.add_argument(
        "--kind", required=True, help=f"one of {', '.join(k.value for k in OrganisationKind)}"
    )
    add.add_argument("--sector", action="append", default=[], help="a sector (repeatable)")
    add.add_argument("--hazard", action="append", default=[], help="a hazard (repeatable)")
    add.add_argument("--description", help="what it does, at most 1000 characters")
    add.add_argument("--email", help="its public e-mail address")
    add.add_argument("--url", help="its public web page")
    add.add_argument("--phone", help="its public phone number")
    add.set_defaults(run=_add)
    data_dir_option(add)
