-- gridcat state store, schema v3 (PostgreSQL): tag facets (seed 000 StateFacetService).
-- tag_facet: the registry of tag keys promoted to projection columns of partition_state.
--   The projection columns themselves are added by DDL at promote time (validated, quoted
--   identifiers), never here. A disabled facet keeps its row and its column; promoting the
--   key again reuses both. `projecting` is what the projector in the state write path reads:
--   it is switched on under a SHARE lock on partition_state (see tag_facets/projector.py).
-- tag_facet_backfill_job: batched, checkpointed projector runs (keyset over the primary key).

CREATE TABLE tag_facet (
    facet_id                  UUID        PRIMARY KEY,
    key_name                  TEXT        NOT NULL UNIQUE,
    column_name               TEXT        NOT NULL UNIQUE,
    status                    TEXT        NOT NULL
        CHECK (status IN ('PROMOTING', 'BACKFILLING', 'ENABLED', 'DISABLED', 'FAILED')),
    projecting                BOOLEAN     NOT NULL DEFAULT FALSE,
    create_index              BOOLEAN     NOT NULL,
    index_name                TEXT,
    error                     TEXT,
    reason                    TEXT,
    promotion_started_at      TIMESTAMPTZ NOT NULL,
    last_refresh_started_at   TIMESTAMPTZ,
    last_refresh_succeeded_at TIMESTAMPTZ,
    disabled_at               TIMESTAMPTZ,
    created_at                TIMESTAMPTZ NOT NULL,
    updated_at                TIMESTAMPTZ NOT NULL
);

CREATE TABLE tag_facet_backfill_job (
    job_id         UUID        PRIMARY KEY,
    facet_id       UUID        NOT NULL REFERENCES tag_facet (facet_id),
    mode           TEXT        NOT NULL CHECK (mode IN ('FULL', 'MISSING_ONLY')),
    batch_size     INTEGER     NOT NULL CHECK (batch_size > 0),
    status         TEXT        NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED')),
    rows_total     BIGINT,
    rows_processed BIGINT      NOT NULL DEFAULT 0,
    rows_updated   BIGINT      NOT NULL DEFAULT 0,
    failures       INTEGER     NOT NULL DEFAULT 0,
    batches        INTEGER     NOT NULL DEFAULT 0,
    checkpoint     TEXT,
    error          TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    started_at     TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ
);

CREATE INDEX tag_facet_backfill_job_status_idx ON tag_facet_backfill_job (status, created_at);
CREATE INDEX tag_facet_backfill_job_facet_idx ON tag_facet_backfill_job (facet_id, status);
