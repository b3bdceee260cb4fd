"""The platform's facet types and their JSON Schemas.

Mandatory (always present, always enabled, platform-owned): ``structural`` (TABLE,
ATTRIBUTE), ``descriptive`` (SCHEMA, TABLE, ATTRIBUTE), ``relation`` (TABLE). Optional,
enabled by default: ``concept`` (CONCEPT), ``value-mapping`` (ATTRIBUTE).
"""

from __future__ import annotations

from gridcat_pipelines.facet_types.model import FacetTypeDescriptor, TargetType

PLATFORM_VERSION = "1.0"

_STRUCTURAL_SCHEMA = {
    "type": "object",
    "properties": {
        "physicalName": {"type": "string", "minLength": 1},
        "tableType": {"enum": ["TABLE", "VIEW"]},
        "location": {"type": "string"},
        "primaryKey": {"type": "array", "items": {"type": "string"}},
        "partitionColumns": {"type": "array", "items": {"type": "string"}},
        "schemaVersion": {"type": "string"},
        "sourceResource": {"type": "string"},
        "arrowType": {"enum": ["int64", "double", "string", "date32", "bool"]},
        "nullable": {"type": "boolean"},
        "isPrimaryKey": {"type": "boolean"},
        "ordinal": {"type": "integer", "minimum": 0},
        "sourceField": {"type": "string"},
    },
    "required": ["physicalName"],
}

_DESCRIPTIVE_SCHEMA = {
    "type": "object",
    "properties": {
        "displayName": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "concepts": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    },
    "required": ["displayName"],
}

_RELATION_SCHEMA = {
    "type": "object",
    "properties": {
        "relations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "target": {"type": "string", "minLength": 1},
                    "cardinality": {"enum": ["MANY_TO_ONE", "ONE_TO_MANY", "ONE_TO_ONE", "MANY_TO_MANY"]},
                    "joinColumns": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "properties": {"source": {"type": "string"}, "target": {"type": "string"}},
                            "required": ["source", "target"],
                        },
                    },
                },
                "required": ["target", "joinColumns"],
            },
        }
    },
    "required": ["relations"],
}

_CONCEPT_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "definition": {"type": "string"},
        "unit": {"type": "string"},
        "attributes": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    },
    "required": ["name"],
}

_VALUE_MAPPING_SCHEMA = {
    "type": "object",
    "properties": {
        "source": {"type": "string"},
        "values": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "value": {"type": ["string", "integer", "boolean", "null"]},
                    "label": {"type": "string"},
                },
                "required": ["value"],
            },
        },
    },
    "required": ["values"],
}


def _platform(key, name, description, targets, schema, mandatory) -> FacetTypeDescriptor:
    return FacetTypeDescriptor(
        type_key=key,
        mandatory=mandatory,
        enabled=True,
        display_name=name,
        description=description,
        applicable_to=frozenset(targets),
        version=PLATFORM_VERSION,
        content_schema=schema,
        created_by="platform",
        updated_by="platform",
    )


T = TargetType
PLATFORM_TYPES: dict[str, FacetTypeDescriptor] = {
    d.type_key: d
    for d in (
        _platform(
            "structural",
            "Structural",
            "Physical layout: names, types, keys.",
            [T.TABLE, T.ATTRIBUTE],
            _STRUCTURAL_SCHEMA,
            True,
        ),
        _platform(
            "descriptive",
            "Descriptive",
            "Display names, descriptions, business concepts.",
            [T.SCHEMA, T.TABLE, T.ATTRIBUTE],
            _DESCRIPTIVE_SCHEMA,
            True,
        ),
        _platform("relation", "Relation", "How a table joins other tables.", [T.TABLE], _RELATION_SCHEMA, True),
        _platform(
            "concept",
            "Concept",
            "A business concept and the attributes that carry it.",
            [T.CONCEPT],
            _CONCEPT_SCHEMA,
            False,
        ),
        _platform(
            "value-mapping",
            "Value Mapping",
            "The values an attribute takes (an enum).",
            [T.ATTRIBUTE],
            _VALUE_MAPPING_SCHEMA,
            False,
        ),
    )
}
MANDATORY_TYPE_KEYS = frozenset(k for k, d in PLATFORM_TYPES.items() if d.mandatory)
OPTIONAL_PLATFORM_TYPE_KEYS = frozenset(k for k, d in PLATFORM_TYPES.items() if not d.mandatory)
