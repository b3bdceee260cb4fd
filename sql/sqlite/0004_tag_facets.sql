-- gridcat state store, schema v3 (SQLite): tag facets. Same tables as sql/postgresql/0003;
-- uuids as text, timestamps ISO text in UTC, booleans 0/1. SQLite serialises writers, so the
-- projector reading the registry inside the write transaction is always current.

CREATE TABLE tag_facet (
    facet_id                  TEXT    PRIMARY KEY,
    key_name                  TEXT    NOT NULL UNIQUE,
    column_name               TEXT    NOT NULL UNIQUE,
    status                    TEXT    NOT NULL
        CHECK (status IN ('PROMOTING', 'BACKFILLING', 'ENABLED', 'DISABLED', 'FAILED')),
    projecting                BOOLEAN NOT NULL DEFAULT 0,
    create_index              BOOLEAN NOT NULL,
    index_name                TEXT,
    error                     TEXT,
    reason                    TEXT,
    promotion_started_at      TEXT    NOT NULL,
    last_refresh_started_at   TEXT,
    last_refresh_succeeded_at TEXT,
    disabled_at               TEXT,
    created_at                TEXT    NOT NULL,
    updated_at                TEXT    NOT NULL
);

CREATE TABLE tag_facet_backfill_job (
    job_id         TEXT    PRIMARY KEY,
    facet_id       TEXT    NOT NULL REFERENCES tag_facet (facet_id),
    mode           TEXT    NOT NULL CHECK (mode IN ('FULL', 'MISSING_ONLY')),
    batch_size     INTEGER NOT NULL CHECK (batch_size > 0),
    status         TEXT    NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED')),
    rows_total     BIGINT,
    rows_processed BIGINT  NOT NULL DEFAULT 0,
    rows_updated   BIGINT  NOT NULL DEFAULT 0,
    failures       INTEGER NOT NULL DEFAULT 0,
    batches        INTEGER NOT NULL DEFAULT 0,
    checkpoint     TEXT,
    error          TEXT,
    created_at     TEXT    NOT NULL,
    started_at     TEXT,
    updated_at     TEXT    NOT NULL,
    finished_at    TEXT
);

CREATE INDEX tag_facet_backfill_job_status_idx ON tag_facet_backfill_job (status, created_at);
CREATE INDEX tag_facet_backfill_job_facet_idx ON tag_facet_backfill_job (facet_id, status);
