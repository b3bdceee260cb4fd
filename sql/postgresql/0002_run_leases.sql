-- Leases (seed 001's query leases): a reader pins the authoritative run of each partition it
-- reads until it ends the lease or the lease expires; retention never deletes a pinned run.

CREATE TABLE run_lease (
    lease_id   TEXT PRIMARY KEY,
    status     TEXT NOT NULL CHECK (status IN ('ACTIVE', 'ENDED_COMMIT', 'ENDED_ABORT')),
    holder     TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    ended_at   TIMESTAMPTZ
);

CREATE TABLE run_lease_pin (
    lease_id     TEXT NOT NULL REFERENCES run_lease (lease_id),
    source       TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    query_name   TEXT NOT NULL,
    logical_date DATE NOT NULL,
    run_id       TEXT NOT NULL,
    PRIMARY KEY (lease_id, source, customer_id, query_name, logical_date)
);

CREATE INDEX run_lease_pin_run_idx
    ON run_lease_pin (source, customer_id, query_name, logical_date, run_id);
