-- gridcat state store, schema v1 (SQLite). Same tables as sql/postgresql/0001; dates are
-- ISO text (YYYY-MM-DD), timestamps ISO text in UTC, JSON as text. SQLite serialises
-- writers, so the change counter only has to keep seqs dense and ordered.

CREATE TABLE partition_state (
    source          TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    query_name      TEXT    NOT NULL,
    logical_date    DATE    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'success', 'failed')),
    current_run_id  TEXT,
    schema_version  TEXT,
    record_count    BIGINT  CHECK (record_count >= 0),
    updated_at      TEXT    NOT NULL,
    error_message   TEXT,
    attempt_count   INTEGER NOT NULL DEFAULT 0,
    tags            JSON    NOT NULL DEFAULT '{}',
    version         BIGINT  NOT NULL CHECK (version > 0),
    PRIMARY KEY (source, customer_id, query_name, logical_date)
);

CREATE INDEX partition_state_status_idx
    ON partition_state (status, source, customer_id, query_name, logical_date);
CREATE INDEX partition_state_query_date_idx
    ON partition_state (query_name, logical_date);

CREATE TABLE partition_state_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    source          TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    query_name      TEXT    NOT NULL,
    logical_date    DATE    NOT NULL,
    run_id          TEXT    NOT NULL,
    outcome         TEXT    NOT NULL CHECK (outcome IN ('applied', 'superseded', 'replayed', 'repointed')),
    status          TEXT    NOT NULL CHECK (status IN ('success', 'failed')),
    schema_version  TEXT,
    record_count    BIGINT,
    error_message   TEXT,
    tags            JSON,
    result_hash     TEXT    NOT NULL,
    state_version   BIGINT  NOT NULL,
    change_seq      BIGINT,
    recorded_at     TEXT    NOT NULL,
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
    scope           TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    response        JSON NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);

CREATE TABLE gridcat_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
