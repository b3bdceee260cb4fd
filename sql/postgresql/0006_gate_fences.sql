-- The gate's bookkeeping next to the states it guards.
-- raw_run_tombstone: one row per raw run retention deleted (or is deleting: the row commits
--   before the files go), written in the transaction that re-checked, under the partition's
--   state row lock, that the run is neither authoritative nor pinned. A re-point to a run at
--   or below a tombstone of its partition is refused, so no tombstoned run becomes current.
-- warehouse_load: per partition, what the warehouse loader last committed (run and state
--   version, written under the same lock as the commit) and the failures since, for
--   reconcile and `warehouse status` reasons; due_at is when reconcile may ask again
--   (backoff). The warehouse itself stays the truth: a row that lags it only causes a
--   reload, which the fence makes harmless.

CREATE TABLE raw_run_tombstone (
    source       TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    query_name   TEXT NOT NULL,
    logical_date DATE NOT NULL,
    run_id       TEXT NOT NULL,
    path         TEXT NOT NULL,
    deleted_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, customer_id, query_name, logical_date, run_id)
);

CREATE TABLE warehouse_load (
    source          TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    query_name      TEXT    NOT NULL,
    logical_date    DATE    NOT NULL,
    loaded_run_id   TEXT,
    loaded_version  BIGINT,
    loaded_rows     BIGINT,
    loaded_at       TIMESTAMPTZ,
    last_outcome    TEXT    NOT NULL CHECK (last_outcome IN ('loaded', 'failed', 'skipped_superseded', 'requested')),
    last_error      TEXT,
    failures        INTEGER NOT NULL DEFAULT 0,
    requests        INTEGER NOT NULL DEFAULT 0,
    due_at          TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, customer_id, query_name, logical_date)
);

-- The API's idempotency claims carry a token: a request whose in-flight claim was taken over
-- (after in_flight_timeout) can no longer store its late response over the new claimer's.
ALTER TABLE api_idempotency ADD COLUMN claim_id TEXT;
