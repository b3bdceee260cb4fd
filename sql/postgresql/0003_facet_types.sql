-- gridcat state store, schema v2 (PostgreSQL): the facet type catalog (seed 003).
-- facet_type: one descriptor per type key; applicable_to NULL means ANY; content_schema is a
--   JSON Schema document (NULL = content not validated); version is the seed's schema version
--   string ("1.0"); revision is the row version that expected-revision updates check.
-- catalog_entity: the entities the catalog describes (CATALOG, SCHEMA, TABLE, ATTRIBUTE,
--   CONCEPT), a tree through parent_id.
-- catalog_entity_facet: facet instances keyed by (entity, type key, scope); content carries
--   the "_type" marker, equal to type_key (the CHECK keeps a disagreeing marker out).

CREATE TABLE facet_type (
    type_key        TEXT        PRIMARY KEY,
    mandatory       BOOLEAN     NOT NULL DEFAULT FALSE,
    enabled         BOOLEAN     NOT NULL DEFAULT TRUE,
    display_name    TEXT,
    description     TEXT,
    applicable_to   TEXT[],
    version         TEXT,
    content_schema  JSONB,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    created_by      TEXT,
    updated_by      TEXT,
    revision        BIGINT      NOT NULL CHECK (revision > 0)
);

CREATE TABLE catalog_entity (
    id              TEXT        PRIMARY KEY,
    type            TEXT        NOT NULL CHECK (type IN ('CATALOG', 'SCHEMA', 'TABLE', 'ATTRIBUTE', 'CONCEPT')),
    parent_id       TEXT,
    name            TEXT        NOT NULL,
    schema_name     TEXT,
    table_name      TEXT,
    attribute_name  TEXT,
    origin          TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    created_by      TEXT,
    updated_by      TEXT,
    revision        BIGINT      NOT NULL CHECK (revision > 0)
);

CREATE INDEX catalog_entity_type_idx ON catalog_entity (type, id);
CREATE INDEX catalog_entity_parent_idx ON catalog_entity (parent_id, id);

CREATE TABLE catalog_entity_facet (
    entity_id       TEXT        NOT NULL REFERENCES catalog_entity (id) ON DELETE CASCADE,
    type_key        TEXT        NOT NULL,
    scope           TEXT        NOT NULL,
    content         JSONB       NOT NULL CHECK (content ->> '_type' = type_key),
    PRIMARY KEY (entity_id, type_key, scope)
);

CREATE INDEX catalog_entity_facet_type_idx ON catalog_entity_facet (type_key, entity_id);
