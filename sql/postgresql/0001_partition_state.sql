-- gridcat state store, schema v1 (PostgreSQL).
-- partition_state: seed 002's v1 columns plus tags, the row version.
-- partition_state_history: append-only, one row per offered result or operator re-point;
--   rows that changed the state carry change_seq, which is the change feed.
-- state_change_counter: one row; taking a seq locks it until commit, so change_seq order is
--   commit order and a feed reader never skips a change committed later with a lower seq.

CREATE TABLE partition_state (
    source          TEXT        NOT NULL,
    customer_id     TEXT        NOT NULL,
    query_name      TEXT        NOT NULL,
    logical_date    DATE        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'success', 'failed')),
    current_run_id  TEXT,
    schema_version  TEXT,
    record_count    BIGINT      CHECK (record_count >= 0),
    updated_at      TIMESTAMPTZ NOT NULL,
    error_message   TEXT,
    attempt_count   INTEGER     NOT NULL DEFAULT 0,
    tags            JSONB       NOT NULL DEFAULT '{}'::jsonb,
    version         BIGINT      NOT NULL CHECK (version > 0),
    PRIMARY KEY (source, customer_id, query_name, logical_date)
);

CREATE INDEX partition_state_status_idx
    ON partition_state (status, source, customer_id, query_name, logical_date);
CREATE INDEX partition_state_query_date_idx
    ON partition_state (query_name, logical_date);

CREATE TABLE partition_state_history (
    id              BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source          TEXT        NOT NULL,
    customer_id     TEXT        NOT NULL,
    query_name      TEXT        NOT NULL,
    logical_date    DATE        NOT NULL,
    run_id          TEXT        NOT NULL,
    outcome         TEXT        NOT NULL CHECK (outcome IN ('applied', 'superseded', 'replayed', 'repointed')),
    status          TEXT        NOT NULL CHECK (status IN ('success', 'failed')),
    schema_version  TEXT,
    record_count    BIGINT,
    error_message   TEXT,
    tags            JSONB,
    result_hash     TEXT        NOT NULL,
    state_version   BIGINT      NOT NULL,
    change_seq      BIGINT,
    recorded_at     TIMESTAMPTZ NOT NULL,
    idempotency_key TEXT
);

CREATE INDEX partition_state_history_run_idx
    ON partition_state_history (source, customer_id, query_name, logical_date, run_id, id);
CREATE UNIQUE INDEX partition_state_history_change_seq_idx
    ON partition_state_history (change_seq) WHERE change_seq IS NOT NULL;

CREATE TABLE state_change_counter (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT  NOT NULL
);
INSERT INTO state_change_counter (id, last_seq) VALUES (1, 0);

CREATE TABLE idempotency_record (
    scope           TEXT        NOT NULL,
    idempotency_key TEXT        NOT NULL,
    request_hash    TEXT        NOT NULL,
    response        JSONB       NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);

CREATE TABLE gridcat_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
