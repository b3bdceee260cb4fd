-- gridcat state store, schema v2 (SQLite): the facet type catalog (seed 003). Same tables as
-- sql/postgresql/0002; applicable_to is a comma-separated list (NULL = ANY), JSON as text,
-- timestamps ISO text in UTC.

CREATE TABLE facet_type (
    type_key        TEXT    PRIMARY KEY,
    mandatory       BOOLEAN NOT NULL DEFAULT 0,
    enabled         BOOLEAN NOT NULL DEFAULT 1,
    display_name    TEXT,
    description     TEXT,
    applicable_to   TEXT,
    version         TEXT,
    content_schema  JSON,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    created_by      TEXT,
    updated_by      TEXT,
    revision        BIGINT  NOT NULL CHECK (revision > 0)
);

CREATE TABLE catalog_entity (
    id              TEXT    PRIMARY KEY,
    type            TEXT    NOT NULL CHECK (type IN ('CATALOG', 'SCHEMA', 'TABLE', 'ATTRIBUTE', 'CONCEPT')),
    parent_id       TEXT,
    name            TEXT    NOT NULL,
    schema_name     TEXT,
    table_name      TEXT,
    attribute_name  TEXT,
    origin          TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    created_by      TEXT,
    updated_by      TEXT,
    revision        BIGINT  NOT NULL CHECK (revision > 0)
);

CREATE INDEX catalog_entity_type_idx ON catalog_entity (type, id);
CREATE INDEX catalog_entity_parent_idx ON catalog_entity (parent_id, id);

CREATE TABLE catalog_entity_facet (
    entity_id       TEXT    NOT NULL REFERENCES catalog_entity (id) ON DELETE CASCADE,
    type_key        TEXT    NOT NULL,
    scope           TEXT    NOT NULL,
    content         JSON    NOT NULL CHECK (json_extract(content, '$._type') = type_key),
    PRIMARY KEY (entity_id, type_key, scope)
);

CREATE INDEX catalog_entity_facet_type_idx ON catalog_entity_facet (type_key, entity_id);
