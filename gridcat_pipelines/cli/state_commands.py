"""``gridcat states get|list|record|history|set-authoritative``.

``record`` is operator tooling over the same write path the validators use.
"""

from __future__ import annotations

import argparse
from typing import Any

from gridcat_pipelines.cli.output import print_fields, print_json, print_table
from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.state import PartitionKey, StateFilter, StateStore, ValidationResult
from gridcat_pipelines.state.keys import DEFAULT_SOURCE, parse_tag_pairs

LIST_COLUMNS = [
    "customer_id",
    "query_name",
    "logical_date",
    "status",
    "current_run_id",
    "record_count",
    "attempt_count",
    "version",
]


def open_store(settings: Settings) -> StateStore:
    """The state store named by the settings; says how to migrate when the schema is behind."""
    return StateStore.open(settings.db_url)


def parse_int(value: str | None, field: str) -> int | None:
    """An optional integer option, checked by gridcat (``INVALID_ARGUMENT``), not argparse."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise invalid_argument(f"{field} {value!r} is not an integer") from None


def parse_filter_pairs(pairs: list[str] | None) -> list[dict[str, Any]] | None:
    """``--filter key=value`` options as the tag-facet contract filters ``{key, op: EQ, value: {stringValue}}``."""
    if not pairs:
        return None
    filters = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise invalid_argument(f"filter {pair!r} must be written key=value")
        filters.append({"key": key, "op": "EQ", "value": {"stringValue": value}})
    return filters


def _add_key_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customer", required=True, help="customer id (digits; 123-456-7890 accepted)")
    parser.add_argument("--query", required=True, help="GAQL query (feed) name, e.g. campaign")
    parser.add_argument("--date", required=True, help="logical date, YYYY-MM-DD (UTC)")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="source (default google_ads)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _key(args: argparse.Namespace) -> PartitionKey:
    return PartitionKey.parse(args.customer, args.query, args.date, args.source)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``states`` command group."""
    states = commands.add_parser("states", help="read and write partition state")
    sub = states.add_subparsers(dest="states_command", metavar="COMMAND", required=True)

    get = sub.add_parser("get", help="the state of one partition (pending when no row exists)")
    _add_key_args(get)
    get.set_defaults(handler=cmd_get)

    lst = sub.add_parser("list", help="list states, filtered, one page at a time")
    lst.add_argument("--status", help="pending, success or failed")
    lst.add_argument("--customer", help="customer id")
    lst.add_argument("--query", help="query name")
    lst.add_argument("--source", help="source")
    lst.add_argument("--from", dest="from_date", help="first logical date, YYYY-MM-DD")
    lst.add_argument("--to", dest="to_date", help="last logical date, YYYY-MM-DD")
    lst.add_argument("--page-size", help="rows per page (default 20, max 1000)")
    lst.add_argument("--page-token", default="", help="next_page_token of the previous page")
    lst.add_argument(
        "--filter",
        action="append",
        metavar="K=V",
        dest="filters",
        help="tag facet filter key=value (repeat); the key must be a promoted facet",
    )
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(handler=cmd_list)

    rec = sub.add_parser(
        "record",
        help="record a validation result (operator tooling; the validators' write path)",
        description="Offer a validation result for one run of a partition. A result for a run "
        "older than the current one is recorded as superseded; the same result again is replayed.",
    )
    _add_key_args(rec)
    rec.add_argument("--run-id", required=True, help="the run's UUIDv7")
    rec.add_argument("--status", required=True, help="success or failed")
    rec.add_argument("--record-count", help="rows in the run")
    rec.add_argument("--schema-version", help="schema version from the run's metadata.json")
    rec.add_argument("--error", help="what failed (required with --status failed)")
    rec.add_argument("--tag", action="append", metavar="K=V", help="tag (repeat); replaces the state's tags")
    rec.add_argument("--idempotency-key", help="retrying with the same key returns the first response")
    rec.set_defaults(handler=cmd_record)

    hist = sub.add_parser("history", help="every result offered for a partition and every re-point")
    _add_key_args(hist)
    hist.set_defaults(handler=cmd_history)

    sa_ = sub.add_parser(
        "set-authoritative",
        help="re-point the authoritative run (operator), guarded by the row version",
    )
    _add_key_args(sa_)
    sa_.add_argument("--run-id", required=True, help="a run with a recorded result for this partition")
    sa_.add_argument("--expected-version", required=True, help="the state's current version")
    sa_.add_argument("--idempotency-key", help="retrying with the same key returns the first response")
    sa_.set_defaults(handler=cmd_set_authoritative)


def cmd_get(args: argparse.Namespace, settings: Settings) -> int:
    """Print one state."""
    key = _key(args)
    state = open_store(settings).get(key)
    if args.json:
        print_json(state.to_json())
    else:
        print_fields(state.to_json())
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print one page of states and the next page token."""
    state_filter = StateFilter.parse(
        status=args.status,
        customer_id=args.customer,
        query_name=args.query,
        source=args.source,
        from_date=args.from_date,
        to_date=args.to_date,
    )
    page_size = parse_int(args.page_size, "page size")
    page = open_store(settings).list_states(
        state_filter,
        page_size=page_size,
        page_token=args.page_token or None,
        filters=parse_filter_pairs(args.filters),
    )
    if args.json:
        print_json(page.to_json())
    else:
        print_table([s.to_json() for s in page.states], LIST_COLUMNS)
        if page.applied_facets is not None:
            print(
                f"applied facets: {', '.join(page.applied_facets) or '-'}; "
                f"from tags: {', '.join(page.non_facet_filters or []) or '-'}"
            )
        if page.next_page_token:
            print(f"next page: --page-token {page.next_page_token}")
    return 0


def cmd_record(args: argparse.Namespace, settings: Settings) -> int:
    """Record one validation result and print the outcome."""
    result = ValidationResult.parse(
        customer_id=args.customer,
        query_name=args.query,
        logical_date=args.date,
        source=args.source,
        run_id=args.run_id,
        status=args.status,
        schema_version=args.schema_version,
        record_count=parse_int(args.record_count, "record count"),
        error_message=args.error,
        tags=parse_tag_pairs(args.tag),
        idempotency_key=args.idempotency_key,
    )
    outcome = open_store(settings).record_result(result)
    if args.json:
        print_json(outcome.to_json())
    else:
        print(f"outcome: {outcome.outcome}")
        print_fields(outcome.state.to_json())
    return 0


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    """Print a partition's history, oldest first."""
    entries = open_store(settings).history(_key(args))
    rows: list[dict[str, Any]] = [e.to_json() for e in entries]
    if args.json:
        print_json({"history": rows})
    else:
        print_table(
            rows, ["id", "recorded_at", "run_id", "outcome", "status", "record_count", "state_version", "error_message"]
        )
    return 0


def cmd_set_authoritative(args: argparse.Namespace, settings: Settings) -> int:
    """Re-point the authoritative run and print the new state."""
    key = _key(args)
    expected = parse_int(args.expected_version, "expected version")
    state = open_store(settings).set_authoritative(key, args.run_id, expected, idempotency_key=args.idempotency_key)
    if args.json:
        print_json(state.to_json())
    else:
        print_fields(state.to_json())
    return 0
