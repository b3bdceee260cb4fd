-- Idempotency records of the HTTP API (seed 001): one row per (principal, Idempotency-Key).
-- IN_FLIGHT while the first request runs (a second one gets 409 aborted), then DONE with the
-- first response, which every replay returns. request_hash binds the key to one request.

CREATE TABLE api_idempotency (
    principal     TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('IN_FLIGHT', 'DONE')),
    status_code   INTEGER,
    response_body TEXT,
    created_at    TEXT NOT NULL,
    completed_at  TEXT,
    PRIMARY KEY (principal, idem_key)
);

CREATE INDEX api_idempotency_created_idx ON api_idempotency (created_at);
