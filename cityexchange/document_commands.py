"""`cityexchange documents register FILE`: register a build's persisted documents (trusted
documents) from an Apollo or a Relay manifest, each validated against the schema first."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphql import GraphQLError, GraphQLSchema, GraphQLSyntaxError, parse, specified_rules
from strawberry.schema.schema import validate_document

from cityexchange.schema.limits import MAX_TOKENS, check
from cityexchange.schema.root import CityExchangeSchema, build_schema
from cityexchange.services import persisted_documents
from cityexchange.services.persisted_documents import InvalidManifest, Registration
from cityexchange.services.store.database import Database
from cityexchange.settings import Settings


def document_errors(registrations: list[Registration]) -> dict[str, list[str]]:
    """Per id, what keeps a document from being registered: an id that is not its text's
    SHA-256, a text that does not parse, is over the document limits or does not validate."""
    schema = build_schema(production=False)
    graphql_schema = schema._schema  # pyright: ignore[reportPrivateUsage]
    found: dict[str, list[str]] = {}
    for registration in registrations:
        errors = persisted_documents.problems(registration)
        if not errors:
            errors = _validation_errors(schema, graphql_schema, registration.text)
        if errors:
            found[registration.id] = errors
    return found


def _validation_errors(
    schema: CityExchangeSchema, graphql_schema: GraphQLSchema, text: str
) -> list[str]:
    try:
        document = parse(text, max_tokens=MAX_TOKENS)
    except GraphQLSyntaxError as error:
        return [error.message]
    figures = schema.gate.figures(graphql_schema, text, document, None, {})
    refused = check(figures)
    if refused is not None:
        return [str(refused)]
    invalid: list[GraphQLError] = validate_document(
        graphql_schema, document, tuple(specified_rules)
    )
    return [error.message for error in invalid]


def _register(args: argparse.Namespace, settings: Settings) -> None:
    from cityexchange.cli import CommandError, print_json, with_db

    path = Path(args.file)
    try:
        registrations = persisted_documents.parse_manifest(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except (InvalidManifest, UnicodeDecodeError) as exc:
        raise CommandError(f"{path} is not a persisted-query manifest: {exc}") from None
    counts = Counter(registration.id for registration in registrations)
    duplicates = sorted(id for id, count in counts.items() if count > 1)
    errors = document_errors(registrations)
    for id in duplicates:
        errors.setdefault(id, []).append("the id appears more than once")
    if errors:
        print_json(
            {
                "registered": 0,
                "errors": [
                    {"id": r.id, "name": r.name, "errors": errors[r.id]}
                    for r in registrations
                    if r.id in errors
                ],
            }
        )
        raise CommandError(f"{len(errors)} of {len(registrations)} operations have errors")

    async def work(db: Database) -> dict[str, str]:
        return await persisted_documents.register(db=db, registrations=registrations)

    outcomes = with_db(settings, Path(args.data_dir), work)
    print_json(
        {
            "registered": len(registrations),
            "operations": [
                {"id": r.id, "name": r.name, "outcome": outcomes[r.id]} for r in registrations
            ],
        }
    )


def add_parsers(commands: Any, data_dir_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """`documents register`."""
    documents = commands.add_parser(
        "documents", help="persisted documents (trusted documents)"
    ).add_subparsers(dest="documents_command", required=True)
    register = documents.add_parser(
        "register",
        help="register the operations of an Apollo persisted-query-manifest.json or a Relay "
        "persisted_queries.json (idempotent); prints the outcome per operation as JSON",
    )
    register.add_argument("file", help="the manifest")
    register.set_defaults(run=_register)
    data_dir_option(register)
