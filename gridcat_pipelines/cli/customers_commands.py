"""``gridcat customers discover``: the client accounts under the Google Ads manager account,
printed or merged into the customer config (``--write config/customers.yaml``).

The Google Ads settings are the library's ``GOOGLE_ADS_*`` variables (and
``GOOGLE_ADS_CONFIGURATION_FILE_PATH``), as resolved by :class:`gridcat_pipelines.config.Settings`.
"""

from __future__ import annotations

import argparse
import sys

from gridcat_pipelines.cli.output import print_json, print_table
from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import FAILED_PRECONDITION, UNAVAILABLE, GridcatError
from gridcat_pipelines.sources.base import SourceError, TransientSourceError
from gridcat_pipelines.state.keys import normalize_customer_id

COLUMNS = ["customer_id", "name", "time_zone", "currency", "status", "manager"]


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``customers`` group."""
    customers = commands.add_parser("customers", help="Google Ads customer accounts")
    sub = customers.add_subparsers(dest="customers_command", metavar="COMMAND", required=True)
    discover = sub.add_parser(
        "discover",
        help="list the client accounts under the manager account",
        description="List the client accounts under the Google Ads manager account (customer_client): id, "
        "name, time zone, currency, status, manager flag. Managers, cancelled/closed and hidden accounts are "
        "skipped unless asked. --write merges them into a customers file, keeping the tags set by hand. "
        "Credentials: the google-ads library's GOOGLE_ADS_* variables or GOOGLE_ADS_CONFIGURATION_FILE_PATH.",
    )
    discover.add_argument(
        "--login-customer-id", metavar="ID", help="the manager account (default: GOOGLE_ADS_LOGIN_CUSTOMER_ID)"
    )
    discover.add_argument(
        "--write", metavar="PATH", help="merge the accounts into this customers file (e.g. config/customers.yaml)"
    )
    discover.add_argument("--include-managers", action="store_true", help="list manager accounts too")
    discover.add_argument("--include-hidden", action="store_true", help="list hidden accounts too")
    discover.add_argument("--include-cancelled", action="store_true", help="list cancelled and closed accounts too")
    discover.add_argument("--json", action="store_true", help="print JSON")
    discover.set_defaults(handler=cmd_discover)


def cmd_discover(args: argparse.Namespace, settings: Settings) -> int:
    """List (and with ``--write`` merge) the accounts under the manager."""
    from gridcat_pipelines.sources.google_ads import GoogleAdsApiSource, SourceConfigError
    from gridcat_pipelines.sources.google_ads_customers import discover_customers, merge_into_file

    login = normalize_customer_id(args.login_customer_id) if args.login_customer_id else None
    values = dict(getattr(settings, "google_ads", None) or {})
    configuration_file = values.pop("configuration_file_path", None)
    if login:
        values["login_customer_id"] = login
    source = GoogleAdsApiSource(settings=values, configuration_file=configuration_file)
    try:
        customers = discover_customers(
            source,
            login,
            include_managers=args.include_managers,
            include_hidden=args.include_hidden,
            include_cancelled=args.include_cancelled,
        )
    except SourceConfigError as exc:
        raise GridcatError(exc.code, str(exc)) from None
    except TransientSourceError as exc:
        raise GridcatError(UNAVAILABLE, str(exc)) from None
    except SourceError as exc:
        raise GridcatError(FAILED_PRECONDITION, str(exc)) from None
    summary = merge_into_file(args.write, customers) if args.write else None
    if args.json:
        payload: dict = {"customers": customers}
        if summary is not None:
            payload["written"] = {"path": args.write, **summary}
        print_json(payload)
        return 0
    print_table(customers, COLUMNS)
    if summary is not None:
        line = (
            f"wrote {args.write}: {len(summary['added'])} added, {len(summary['updated'])} updated, "
            f"{len(summary['unchanged'])} unchanged"
        )
        if summary["not_discovered"]:
            line += f"; kept, not under the manager: {', '.join(summary['not_discovered'])}"
        sys.stdout.write(line + "\n")
    return 0
