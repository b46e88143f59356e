-- Which node writes each app (issue 11): a routing hint so that the nodes of a deployment send
-- an app's writes to one of them, whose group commit then takes them together. Operational
-- state: never an event, kept by a replay. Correctness never depends on it (row locks do).
CREATE TABLE write_leases (
    app_id     BIGINT PRIMARY KEY,
    node       TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
