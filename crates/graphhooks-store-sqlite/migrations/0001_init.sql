-- graphhooks SQLite schema, version 1.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE object_types (
    name       TEXT PRIMARY KEY,
    grant_mode TEXT NOT NULL
);

CREATE TABLE fields (
    object_type TEXT NOT NULL REFERENCES object_types(name),
    name        TEXT NOT NULL,
    permission  TEXT,
    sample      TEXT NOT NULL,
    PRIMARY KEY (object_type, name)
);

CREATE TABLE apps (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    mode                  TEXT NOT NULL,
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until INTEGER,
    created_time          INTEGER NOT NULL
);

CREATE TABLE roles (
    app_id  TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    role    TEXT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);

-- Keyed by object first: fan-out looks grants up per changed object.
CREATE TABLE grants (
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    permissions TEXT NOT NULL, -- JSON array of strings
    subscribed_fields TEXT,    -- JSON array, for apps installed through subscribed_apps
    PRIMARY KEY (object_type, object_id, app_id)
);
CREATE INDEX grants_by_app ON grants(app_id);

CREATE TABLE subscriptions (
    app_id                     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    object_type                TEXT NOT NULL,
    callback_url               TEXT NOT NULL,
    verify_token               TEXT NOT NULL,
    include_values             INTEGER NOT NULL,
    include_client_certificate INTEGER NOT NULL,
    standard_webhooks          INTEGER NOT NULL,
    status                     TEXT NOT NULL,
    fields                     TEXT NOT NULL, -- JSON object: field name -> API version
    failing_since              INTEGER,
    PRIMARY KEY (app_id, object_type)
);
CREATE INDEX subscriptions_by_type ON subscriptions(object_type);

CREATE TABLE changes (
    id          INTEGER PRIMARY KEY,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    field       TEXT NOT NULL,
    value       TEXT NOT NULL, -- compact JSON, already escaped the Meta way
    actor       TEXT,
    time        INTEGER NOT NULL,
    received_ms INTEGER NOT NULL
);
-- Replay reads changes by event time.
CREATE INDEX changes_by_time ON changes(time);


-- The id of the last change fan-out has processed.
CREATE TABLE fanout_cursor (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    last_change_id INTEGER NOT NULL
);
INSERT INTO fanout_cursor (id, last_change_id) VALUES (1, 0);

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    app_id           TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    object_type      TEXT NOT NULL,
    state            TEXT NOT NULL,
    created_time     INTEGER NOT NULL,
    body             TEXT NOT NULL,
    change_ids       TEXT NOT NULL, -- comma list, ascending
    first_change_id  INTEGER,
    last_change_id   INTEGER,
    object_ids       TEXT NOT NULL, -- JSON array of the entries' object ids
    test             INTEGER NOT NULL,
    due_ms           INTEGER NOT NULL,
    claimed_by       TEXT,
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    first_attempt_ms INTEGER
);
-- The queue: only rows that can be claimed. Claims read one lane (subscription) at a time, in
-- due order, so a lane with a deep backlog costs nothing when it is not asked for. "When is
-- anything due next" is the earliest of each lane's first entry.
CREATE INDEX deliveries_lane_due ON deliveries(app_id, object_type, due_ms, id) WHERE state = 'pending' AND claimed_by IS NULL;
CREATE INDEX deliveries_claimed ON deliveries(claimed_by) WHERE claimed_by IS NOT NULL;
-- The app's delivery log, newest first, and explain's "which delivery carried change N".
CREATE INDEX deliveries_by_app ON deliveries(app_id, id);
CREATE INDEX deliveries_by_change ON deliveries(app_id, object_type, first_change_id);
-- Queue metrics: pending and paused deliveries.
CREATE INDEX deliveries_open ON deliveries(state, created_time) WHERE state IN ('pending', 'paused');

CREATE TABLE attempts (
    delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    time_ms     INTEGER NOT NULL,
    status      INTEGER,
    error       TEXT,
    latency_ms  INTEGER NOT NULL,
    response    TEXT,
    PRIMARY KEY (delivery_id, number)
) WITHOUT ROWID;

-- Nodes and their leases (the engine only heartbeats on shared stores; kept here so both
-- backends behave the same under the conformance suite).
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    heartbeat_ms INTEGER NOT NULL
);

-- Subscriptions with work (pending or paused deliveries), and which node sends each: one at a
-- time, so a callback's concurrency limit and per-object order hold across nodes. A row is
-- added whenever a delivery is stored; node_id is NULL while no node owns the lane.
CREATE TABLE lanes (
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    object_type TEXT NOT NULL,
    node_id     TEXT,
    PRIMARY KEY (app_id, object_type)
);
CREATE INDEX lanes_by_node ON lanes(node_id);
