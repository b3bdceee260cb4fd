"""The facet type catalog (the facet-type catalog spec): its verification points on SQLite and PostgreSQL, and the
mandatory-type protections under arbitrary sequences of writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridcat_pipelines.errors import FAILED_PRECONDITION, INVALID_ARGUMENT, GridcatError
from gridcat_pipelines.facet_types import (
    CatalogEntity,
    DeploymentConfig,
    FacetTypeCatalog,
    FacetTypeDescriptor,
    InMemoryFacetTypeRepository,
    TargetType,
    YamlFacetTypeRepository,
    open_catalog,
)
from gridcat_pipelines.facet_types.db_repository import DbFacetTypeRepository
from gridcat_pipelines.facet_types.entities import CatalogEntities
from gridcat_pipelines.facet_types.platform import MANDATORY_TYPE_KEYS, PLATFORM_TYPES

FIXTURE = Path(__file__).parent / "fixtures" / "customer_audit.yaml"


@pytest.fixture
def services(db_url):
    s = open_catalog(db_url)
    yield s
    s.close()


def _audit(services) -> FacetTypeDescriptor:
    return YamlFacetTypeRepository(FIXTURE).get("customer-audit")


def _table(facets: dict, entity_id: str = "moneta.customers", type_: TargetType = TargetType.TABLE) -> CatalogEntity:
    return CatalogEntity(id=entity_id, type=type_, name=entity_id, facets={k: {"global": v} for k, v in facets.items()})


def _rows(engine, sql: str) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).all()


def _code(call) -> str:
    with pytest.raises(GridcatError) as err:
        call()
    return err.value.code


# 1. FacetTypeDescriptor can be loaded from YAML and persisted.
def test_1_descriptor_loads_from_yaml_and_persists(services):
    descriptor = _audit(services)
    assert descriptor.applicable_to == frozenset({TargetType.TABLE})
    assert descriptor.content_schema["required"] == ["lastAuditDate", "status"]
    services.catalog.register(descriptor)
    stored = DbFacetTypeRepository(services.engine).get("customer-audit")
    assert stored.definition() == descriptor.definition()
    assert stored.revision == 1 and stored.created_at is not None and stored.created_by == "gridcat"
    row = _rows(
        services.engine,
        "SELECT applicable_to, content_schema, version FROM facet_type WHERE type_key = 'customer-audit'",
    )[0]
    assert row.version == "1.0"
    assert "TABLE" in (row.applicable_to if isinstance(row.applicable_to, (list, str)) else [])
    # the platform types are in the database too
    keys = {r.type_key for r in _rows(services.engine, "SELECT type_key FROM facet_type")}
    assert set(PLATFORM_TYPES) | {"customer-audit"} == keys


# 2. Platform mandatory facets cannot be disabled or deleted.
@pytest.mark.parametrize("key", sorted(MANDATORY_TYPE_KEYS))
def test_2_mandatory_types_cannot_be_disabled_deleted_or_made_optional(services, key):
    catalog = services.catalog
    before = _rows(services.engine, "SELECT * FROM facet_type ORDER BY type_key")
    current = catalog.require(key)
    assert _code(lambda: catalog.update(current.with_changes(enabled=False))) == FAILED_PRECONDITION
    assert _code(lambda: catalog.update(current.with_changes(mandatory=False))) == FAILED_PRECONDITION
    assert _code(lambda: catalog.update(current.with_changes(content_schema={"type": "object"}))) == FAILED_PRECONDITION
    assert _code(lambda: catalog.delete(key)) == FAILED_PRECONDITION
    assert _code(lambda: catalog.apply([current.with_changes(enabled=False)])) == FAILED_PRECONDITION
    assert _rows(services.engine, "SELECT * FROM facet_type ORDER BY type_key") == before
    # the display name may change; the type stays mandatory and enabled
    renamed = catalog.update(current.with_changes(display_name="Renamed"))
    assert (renamed.display_name, renamed.mandatory, renamed.enabled, renamed.revision) == ("Renamed", True, True, 2)
    # deployment config cannot disable them either
    configured = FacetTypeCatalog(catalog.repository, DeploymentConfig.from_mapping({"disabled": [key, "concept"]}))
    assert configured.require(key).enabled and not configured.require("concept").enabled


# 3. Custom facet types can be registered via YAML or the API; a bad contentSchema is rejected.
def test_3_custom_types_register_via_yaml_and_api(services):
    from gridcat_pipelines.facet_types.yaml_io import import_catalog, read_document

    applied, report = import_catalog(read_document(FIXTURE), services.catalog, services.entities)
    assert [(d.type_key, o) for d, o in applied] == [("customer-audit", "created")]
    assert report.created == ("moneta.customers",)
    again, _ = import_catalog(read_document(FIXTURE), services.catalog, services.entities)
    assert again[0][1] == "unchanged" and again[0][0].revision == 1

    api = services.catalog.register(FacetTypeDescriptor("lineage", display_name="Lineage"))
    assert api.revision == 1 and api.applicable_to is None and not api.mandatory
    assert _code(lambda: services.catalog.register(FacetTypeDescriptor("lineage"))) == "ALREADY_EXISTS"
    assert _code(lambda: services.catalog.register(FacetTypeDescriptor("structural"))) == "ALREADY_EXISTS"
    assert _code(lambda: services.catalog.register(FacetTypeDescriptor("sneaky", mandatory=True))) == INVALID_ARGUMENT
    with pytest.raises(GridcatError) as err:
        services.catalog.register(FacetTypeDescriptor("broken", content_schema={"type": "objekt", "required": "x"}))
    assert err.value.code == INVALID_ARGUMENT and "not a valid JSON Schema" in err.value.message
    assert services.catalog.get("broken") is None and services.catalog.get("sneaky") is None
    # updates carry an expected revision
    assert (
        _code(lambda: services.catalog.update(api.with_changes(description="x"), expected_revision=7))
        == FAILED_PRECONDITION
    )
    updated = services.catalog.update(api.with_changes(description="x"), expected_revision=1)
    assert updated.revision == 2 and updated.description == "x"
    services.catalog.delete("lineage", expected_revision=2)
    assert services.catalog.get("lineage") is None


# 4. `_type` is auto-injected on write and present in stored data; checked on read.
def test_4_type_marker_injected_stored_and_checked(services):
    services.entities.save(_table({"descriptive": {"displayName": "Customers"}, "my-notes": {"text": "hi"}}))
    rows = _rows(services.engine, "SELECT type_key, content FROM catalog_entity_facet ORDER BY type_key")
    import json

    stored = {r.type_key: (r.content if isinstance(r.content, dict) else json.loads(r.content)) for r in rows}
    assert stored["descriptive"]["_type"] == "descriptive" and stored["my-notes"]["_type"] == "my-notes"
    assert services.entities.get("moneta.customers").facets["descriptive"]["global"]["_type"] == "descriptive"
    # a marker that disagrees with its key is rejected on write, and nothing changes
    with pytest.raises(GridcatError) as err:
        services.entities.save(_table({"descriptive": {"_type": "structural", "displayName": "X"}}))
    assert err.value.code == INVALID_ARGUMENT
    assert any(d["code"] == "TYPE_MARKER_MISMATCH" for d in err.value.details)
    assert services.entities.get("moneta.customers").revision == 1
    # the database itself refuses a disagreeing marker
    with pytest.raises(sa.exc.IntegrityError), services.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE catalog_entity_facet SET content = :c WHERE type_key = 'my-notes'"),
            {"c": '{"_type": "other"}'},
        )

    # on read, a disagreeing marker is an error, not silently accepted
    class Tampered:
        def get(self, entity_id):
            return _table({"descriptive": {"_type": "structural", "displayName": "X"}})

    reader = CatalogEntities(services.catalog, Tampered())  # type: ignore[arg-type]
    with pytest.raises(GridcatError) as err:
        reader.get("moneta.customers")
    assert err.value.code == FAILED_PRECONDITION and "_type" in err.value.message


# 5. Target type validation rejects mismatched facets when applicableTo is defined.
def test_5_target_type_mismatch_rejected(services):
    catalog = services.catalog
    assert catalog.is_applicable_to("structural", "TABLE")
    assert not catalog.is_applicable_to("structural", "CONCEPT")
    concept = _table({"structural": {"physicalName": "X"}}, "concept.x", TargetType.CONCEPT)
    result = catalog.validate_entity(concept)
    assert [i.code for i in result.issues] == ["NOT_APPLICABLE"]
    attribute = _table({"relation": {"relations": []}}, "t.a", TargetType.ATTRIBUTE)
    assert [i.code for i in catalog.validate_entity(attribute).issues] == ["NOT_APPLICABLE"]
    for bad in (concept, attribute):
        assert _code(lambda: services.entities.save(bad)) == INVALID_ARGUMENT
    assert _rows(services.engine, "SELECT count(*) FROM catalog_entity")[0][0] == 0
    assert [d.type_key for d in catalog.for_target_type("TABLE")] == ["descriptive", "relation", "structural"]


# 6. Target type validation is skipped when applicableTo is not defined.
def test_6_target_check_skipped_without_applicable_to(services):
    services.catalog.register(FacetTypeDescriptor("owner", display_name="Owner"))
    for entity_type in TargetType:
        if entity_type is not TargetType.ANY:
            assert services.catalog.is_applicable_to("owner", entity_type)
    saved = services.entities.save(_table({"owner": {"team": "core"}}, "concept.spend", TargetType.CONCEPT))
    assert saved.facets["owner"]["global"] == {"_type": "owner", "team": "core"}
    assert "owner" in [d.type_key for d in services.catalog.for_target_type("ANY")]


# 7. Content validation rejects invalid content when contentSchema is defined (every error, with its path).
def test_7_content_validation_reports_every_error_with_path(services):
    services.catalog.register(_audit(services))
    bad = {"lastAuditDate": "2026-13-45", "auditor": 7, "status": "maybe"}
    result = services.catalog.validate_content("customer-audit", bad, target="TABLE")
    assert sorted(result.paths()) == ["$.auditor", "$.lastAuditDate", "$.status"]
    with pytest.raises(GridcatError) as err:
        services.entities.save(_table({"customer-audit": bad}))
    assert err.value.code == INVALID_ARGUMENT
    assert sorted(d["path"] for d in err.value.details) == ["$.auditor", "$.lastAuditDate", "$.status"]
    assert _rows(services.engine, "SELECT count(*) FROM catalog_entity")[0][0] == 0


# 8. Content validation is skipped when contentSchema is not defined; unknown types are untyped bags.
def test_8_content_unchecked_without_schema_and_unknown_types_are_bags(services):
    services.catalog.register(FacetTypeDescriptor("free-form", applicable_to=frozenset({TargetType.TABLE})))
    weird = {"anything": [1, {"nested": None}], "status": 42}
    assert services.catalog.validate_content("free-form", weird, target="TABLE").valid
    assert services.catalog.validate_content("never-registered", weird, target="CONCEPT").valid
    saved = services.entities.save(_table({"free-form": weird, "never-registered": weird}))
    assert saved.facets["never-registered"]["global"]["anything"] == [1, {"nested": None}]
    assert services.catalog.is_allowed("never-registered")


# 9. No global registry: catalogs are plain objects over their repository and config.
def test_9_no_global_registry(services):
    import gridcat_pipelines.facet_types as package

    assert not hasattr(package, "FacetRegistry")
    other = FacetTypeCatalog(InMemoryFacetTypeRepository())
    other.register(FacetTypeDescriptor("only-here"))
    assert other.get("only-here") is not None and services.catalog.get("only-here") is None


# 10./11. A disabled type is rejected; the deployed catalog is listed from the store.
def test_10_disabled_type_rejected_and_deployment_listing(services):
    catalog = services.catalog
    catalog.update(catalog.require("value-mapping").with_changes(enabled=False))
    attribute = _table({"value-mapping": {"values": [{"value": "A"}]}}, "t.a", TargetType.ATTRIBUTE)
    assert [i.code for i in catalog.validate_entity(attribute).issues] == ["DISABLED_TYPE"]
    assert not catalog.is_allowed("value-mapping")
    assert [d.type_key for d in catalog.enabled()] == ["concept", "descriptive", "relation", "structural"]
    assert [d.type_key for d in catalog.mandatory()] == ["descriptive", "relation", "structural"]
    configured = FacetTypeCatalog(catalog.repository, DeploymentConfig.from_mapping({"enabled": ["value-mapping"]}))
    assert configured.is_allowed("value-mapping")
    with pytest.raises(GridcatError):
        DeploymentConfig.from_mapping({"enabled": ["x"], "disabled": ["x"]})


def test_yaml_repository_is_read_only_unless_writable(tmp_path):
    path = tmp_path / "types.yaml"
    path.write_text(FIXTURE.read_text())
    ro = FacetTypeCatalog(YamlFacetTypeRepository(path))
    assert {d.type_key for d in ro.all()} == set(PLATFORM_TYPES) | {"customer-audit"}
    assert _code(lambda: ro.register(FacetTypeDescriptor("x"))) == FAILED_PRECONDITION
    rw = FacetTypeCatalog(YamlFacetTypeRepository(path, writable=True))
    rw.ensure_platform_types()
    rw.register(FacetTypeDescriptor("x", display_name="X"))
    assert "entities:" in path.read_text()  # other sections survive
    assert YamlFacetTypeRepository(path).get("x").revision == 1
    assert {d.type_key for d in YamlFacetTypeRepository(path).get_all()} == set(PLATFORM_TYPES) | {
        "customer-audit",
        "x",
    }


# ---------------------------------------------------------------- no sequence of writes bypasses the guard

_KEYS = sorted(PLATFORM_TYPES) + ["custom-a", "custom-b"]
_SCHEMAS = [None, {"type": "object"}, {"type": "objekt"}, PLATFORM_TYPES["structural"].content_schema]
_TARGETS = [None, frozenset({TargetType.CONCEPT}), frozenset({TargetType.TABLE, TargetType.ATTRIBUTE})]

_descriptors = st.builds(
    FacetTypeDescriptor,
    type_key=st.sampled_from(_KEYS),
    mandatory=st.booleans(),
    enabled=st.booleans(),
    display_name=st.sampled_from([None, "A", "B"]),
    applicable_to=st.sampled_from(_TARGETS),
    version=st.sampled_from([None, "1.0", "2.0"]),
    content_schema=st.sampled_from(_SCHEMAS),
)
_ops = st.one_of(
    st.tuples(st.just("register"), _descriptors),
    st.tuples(st.just("update"), _descriptors),
    st.tuples(st.just("apply"), st.lists(_descriptors, max_size=3)),
    st.tuples(st.just("delete"), st.sampled_from(_KEYS)),
    st.tuples(st.just("tamper"), _descriptors),  # a raw repository write that skips the catalog
)


def _run_ops(catalog: FacetTypeCatalog, ops) -> None:
    for op, arg in ops:
        try:
            if op == "register":
                catalog.register(arg)
            elif op == "update":
                catalog.update(arg)
            elif op == "apply":
                catalog.apply(arg)
            elif op == "delete":
                catalog.delete(arg)
            else:
                catalog.repository.write(puts=[arg.with_changes(revision=1)])
        except GridcatError:
            pass
        _assert_mandatory_intact(catalog)


def _assert_mandatory_intact(catalog: FacetTypeCatalog) -> None:
    listed = {d.type_key: d for d in catalog.all()}
    for key in MANDATORY_TYPE_KEYS:
        d = catalog.get(key)
        platform = PLATFORM_TYPES[key]
        assert d is not None and d.mandatory and d.enabled, (key, d)
        assert (d.applicable_to, d.content_schema, d.version) == (
            platform.applicable_to,
            platform.content_schema,
            platform.version,
        )
        assert listed[key].enabled and catalog.is_allowed(key) and catalog.is_mandatory(key)
    assert {d.type_key for d in catalog.mandatory()} == MANDATORY_TYPE_KEYS
    assert MANDATORY_TYPE_KEYS <= {d.type_key for d in catalog.enabled()}


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(_ops, max_size=25), disabled=st.sets(st.sampled_from(_KEYS)))
def test_mandatory_guard_holds_for_any_sequence_in_memory(ops, disabled):
    catalog = FacetTypeCatalog(InMemoryFacetTypeRepository(), DeploymentConfig(disabled=frozenset(disabled)))
    catalog.ensure_platform_types()
    _run_ops(catalog, ops)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_ops.filter(lambda op: op[0] != "tamper"), max_size=12))
def test_mandatory_guard_holds_for_any_sequence_in_the_database(services, ops):
    _run_ops(services.catalog, ops)
    rows = _rows(services.engine, "SELECT type_key, mandatory, enabled FROM facet_type")
    stored = {r.type_key: (bool(r.mandatory), bool(r.enabled)) for r in rows}
    assert all(stored[k] == (True, True) for k in MANDATORY_TYPE_KEYS)
