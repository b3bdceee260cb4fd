"""``gridcat facet-types list|get|apply|delete`` and ``gridcat entities sync|list|get|validate|export``.

The facet type catalog (the facet-type catalog spec), not the tag facets of ``gridcat facets``. ``--json`` prints
the facet-type catalog spec's field names; errors are the usual one JSON line on stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import sys

from gridcat_pipelines.cli.output import print_fields, print_json, print_table
from gridcat_pipelines.cli.state_commands import parse_int
from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import failed_precondition
from gridcat_pipelines.facet_types import CatalogServices, open_catalog
from gridcat_pipelines.facet_types.feed_sync import sync_entities
from gridcat_pipelines.facet_types.model import check_type_key
from gridcat_pipelines.facet_types.yaml_io import dump_yaml, export_catalog, import_catalog, read_document
from gridcat_pipelines.feeds.loader import load_pipeline_config


def _open(settings: Settings) -> CatalogServices:
    return open_catalog(settings.db_url, actor="cli")


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``facet-types`` and ``entities`` command groups."""
    ft = commands.add_parser("facet-types", help="the facet type catalog (the facet-type catalog spec)")
    sub = ft.add_subparsers(dest="facet_types_command", metavar="COMMAND", required=True)
    lst = sub.add_parser("list", help="every facet type of this deployment")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(handler=cmd_types_list)
    get = sub.add_parser("get", help="one facet type's descriptor, schema included")
    get.add_argument("type_key", metavar="TYPE_KEY")
    get.add_argument("--json", action="store_true", help="print JSON")
    get.set_defaults(handler=cmd_types_get)
    apply = sub.add_parser("apply", help="create or update the facet types of a YAML file (and its entities)")
    apply.add_argument(
        "-f", "--file", required=True, metavar="FILE", help="YAML with facet-types: (and optionally entities:)"
    )
    apply.add_argument("--json", action="store_true", help="print JSON")
    apply.set_defaults(handler=cmd_types_apply)
    delete = sub.add_parser("delete", help="delete a custom facet type (platform types cannot be deleted)")
    delete.add_argument("type_key", metavar="TYPE_KEY")
    delete.add_argument("--expected-revision", help="fail unless the type is at this revision")
    delete.add_argument("--json", action="store_true", help="print JSON")
    delete.set_defaults(handler=cmd_types_delete)

    ent = commands.add_parser("entities", help="catalog entities described by facets")
    esub = ent.add_subparsers(dest="entities_command", metavar="COMMAND", required=True)
    sync = esub.add_parser("sync", help="build the entities from the feed config (what catalog/entities runs)")
    sync.add_argument("--json", action="store_true", help="print JSON")
    sync.set_defaults(handler=cmd_entities_sync)
    elist = esub.add_parser("list", help="list entities, one page at a time")
    elist.add_argument("--type", dest="entity_type", help="CATALOG, SCHEMA, TABLE, ATTRIBUTE or CONCEPT")
    elist.add_argument("--parent", help="only children of this entity id")
    elist.add_argument("--page-size", help="entities per page (default 50, max 1000)")
    elist.add_argument("--page-token", default="", help="next_page_token of the previous page")
    elist.add_argument("--json", action="store_true", help="print JSON")
    elist.set_defaults(handler=cmd_entities_list)
    eget = esub.add_parser("get", help="one entity with its facets")
    eget.add_argument("entity_id", metavar="ENTITY_ID")
    eget.add_argument("--json", action="store_true", help="print JSON")
    eget.set_defaults(handler=cmd_entities_get)
    val = esub.add_parser("validate", help="validate one entity or all (exit 1 when any is invalid)")
    val.add_argument("entity_id", metavar="ENTITY_ID", nargs="?")
    val.add_argument("--json", action="store_true", help="print JSON")
    val.set_defaults(handler=cmd_entities_validate)
    exp = esub.add_parser("export", help="the whole catalog as YAML (facet-types: and entities:)")
    exp.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    exp.set_defaults(handler=cmd_entities_export)


def cmd_types_list(args: argparse.Namespace, settings: Settings) -> int:
    """``facet-types list``."""
    services = _open(settings)
    try:
        types = services.catalog.all()
    finally:
        services.close()
    if args.json:
        print_json({"facetTypes": [d.to_json() for d in types]})
    else:
        rows = [
            {
                **d.to_json(),
                "applicableTo": ",".join(d.to_json()["applicableTo"] or ["ANY"]),
                "contentSchema": "yes" if d.content_schema is not None else "no",
            }
            for d in types
        ]
        print_table(rows, ["typeKey", "mandatory", "enabled", "applicableTo", "version", "contentSchema", "revision"])
    return 0


def cmd_types_get(args: argparse.Namespace, settings: Settings) -> int:
    """``facet-types get TYPE_KEY``."""
    check_type_key(args.type_key)
    services = _open(settings)
    try:
        descriptor = services.catalog.require(args.type_key)
    finally:
        services.close()
    (print_json if args.json else print_fields)(descriptor.to_json())
    return 0


def cmd_types_apply(args: argparse.Namespace, settings: Settings) -> int:
    """``facet-types apply -f FILE``: all types checked before any is stored."""
    doc = read_document(args.file)
    services = _open(settings)
    try:
        applied, report = import_catalog(doc, services.catalog, services.entities, where=args.file)
    finally:
        services.close()
    payload = {
        "applied": [{"typeKey": d.type_key, "outcome": outcome, "revision": d.revision} for d, outcome in applied],
        "entities": report.to_json(),
    }
    if args.json:
        print_json(payload)
    else:
        print_table(payload["applied"], ["typeKey", "outcome", "revision"])
        if doc.get("entities"):
            print_fields(payload["entities"])
    return 0


def cmd_types_delete(args: argparse.Namespace, settings: Settings) -> int:
    """``facet-types delete TYPE_KEY``."""
    check_type_key(args.type_key)
    expected = parse_int(args.expected_revision, "--expected-revision")
    services = _open(settings)
    try:
        deleted = services.catalog.delete(args.type_key, expected_revision=expected)
    finally:
        services.close()
    payload = {"deleted": deleted.type_key, "revision": deleted.revision}
    (print_json if args.json else print_fields)(payload)
    return 0


def cmd_entities_sync(args: argparse.Namespace, settings: Settings) -> int:
    """``entities sync``: the entities of the feed config, idempotent."""
    config = load_pipeline_config(settings.feeds_path, settings.customers_path)
    services = _open(settings)
    try:
        report = sync_entities(services.entities, config)
        total = len(services.entities.repository.revisions())
    finally:
        services.close()
    payload = {**report.to_json(), "entities": total}
    (print_json if args.json else print_fields)(payload)
    return 0


def cmd_entities_list(args: argparse.Namespace, settings: Settings) -> int:
    """``entities list``: paged like ``states list``."""
    size = parse_int(args.page_size, "--page-size")
    services = _open(settings)
    try:
        entities, token = services.entities.list(
            entity_type=args.entity_type, parent_id=args.parent, page_size=size, page_token=args.page_token or None
        )
    finally:
        services.close()
    if args.json:
        print_json({"entities": [e.to_json() for e in entities], "next_page_token": token})
    else:
        rows = [
            {"id": e.id, "type": e.type.value, "parent_id": e.parent_id, "facets": ",".join(sorted(e.facets))}
            for e in entities
        ]
        print_table(rows, ["id", "type", "parent_id", "facets"])
        if token:
            sys.stdout.write(f"next_page_token: {token}\n")
    return 0


def cmd_entities_get(args: argparse.Namespace, settings: Settings) -> int:
    """``entities get ENTITY_ID``."""
    services = _open(settings)
    try:
        entity = services.entities.get(args.entity_id)
    finally:
        services.close()
    (print_json if args.json else print_fields)(entity.to_json())
    return 0


def cmd_entities_validate(args: argparse.Namespace, settings: Settings) -> int:
    """``entities validate [ENTITY_ID]``: exit 1 (``FAILED_PRECONDITION``) when any entity is invalid."""
    services = _open(settings)
    try:
        checked, issues = services.entities.validate(args.entity_id)
    finally:
        services.close()
    invalid = sorted({i.entity_id for i in issues if i.entity_id})
    payload = {
        "valid": not issues,
        "checked": checked,
        "invalid": len(invalid),
        "issues": [i.to_json() for i in issues],
    }
    if args.json:
        print_json(payload)
    else:
        print_fields({"valid": payload["valid"], "checked": checked, "invalid": len(invalid)})
        print_table(
            [i.to_json() for i in issues], ["entityId", "typeKey", "scope", "path", "code", "message"]
        ) if issues else None
    if issues:
        raise failed_precondition(
            f"{len(invalid)} of {checked} entities are invalid ({len(issues)} issues)",
            *[i.to_json() for i in issues[:100]],
        )
    return 0


def cmd_entities_export(args: argparse.Namespace, settings: Settings) -> int:
    """``entities export [-o FILE]``: the catalog document ``facet-types apply -f`` reads back."""
    services = _open(settings)
    try:
        text = dump_yaml(export_catalog(services.catalog, services.entities))
    finally:
        services.close()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0
