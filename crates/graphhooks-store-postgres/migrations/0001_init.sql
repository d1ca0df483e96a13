-- graphhooks PostgreSQL schema, version 1.

CREATE TABLE settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE object_types (
    name       text PRIMARY KEY,
    grant_mode text NOT NULL
);

CREATE TABLE fields (
    object_type text NOT NULL REFERENCES object_types(name),
    name        text NOT NULL,
    permission  text,
    sample      text NOT NULL,
    PRIMARY KEY (object_type, name)
);

CREATE TABLE apps (
    id                    text PRIMARY KEY,
    name                  text NOT NULL,
    mode                  text NOT NULL,
    secret                text NOT NULL,
    previous_secret       text,
    previous_secret_until bigint,
    created_time          bigint NOT NULL
);

CREATE TABLE roles (
    app_id  text NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    user_id text NOT NULL,
    role    text NOT NULL,
    PRIMARY KEY (app_id, user_id)
);

-- Keyed by object first: fan-out looks grants up per changed object.
CREATE TABLE grants (
    object_type text NOT NULL,
    object_id   text NOT NULL,
    app_id      text NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    permissions text[] NOT NULL,
    subscribed_fields text[], -- for apps installed through subscribed_apps
    PRIMARY KEY (object_type, object_id, app_id)
);
CREATE INDEX grants_by_app ON grants (app_id);

CREATE TABLE subscriptions (
    app_id                     text NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    object_type                text NOT NULL,
    callback_url               text NOT NULL,
    verify_token               text NOT NULL,
    include_values             boolean NOT NULL,
    include_client_certificate boolean NOT NULL,
    standard_webhooks          boolean NOT NULL,
    status                     text NOT NULL,
    fields                     jsonb NOT NULL, -- field name -> API version
    failing_since              bigint,
    PRIMARY KEY (app_id, object_type)
);
CREATE INDEX subscriptions_by_type ON subscriptions (object_type);

CREATE TABLE changes (
    id          bigserial PRIMARY KEY,
    object_type text NOT NULL,
    object_id   text NOT NULL,
    field       text NOT NULL,
    value       text NOT NULL, -- compact JSON, already escaped the Meta way
    actor       text,
    time        bigint NOT NULL,
    received_ms bigint NOT NULL
);
-- Replay reads changes by event time.
CREATE INDEX changes_by_time ON changes (time);


-- Changes not fanned out yet. Sequence values are not committed in order when several nodes
-- ingest at once, so a cursor over ids could skip a change that commits late; a queue cannot.
CREATE TABLE change_queue (
    change_id bigint PRIMARY KEY
);

CREATE TABLE deliveries (
    id               bigserial PRIMARY KEY,
    app_id           text NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    object_type      text NOT NULL,
    state            text NOT NULL,
    created_time     bigint NOT NULL,
    body             text NOT NULL,
    change_ids       bigint[] NOT NULL,
    first_change_id  bigint,
    last_change_id   bigint,
    object_ids       text[] NOT NULL,
    test             boolean NOT NULL,
    due_ms           bigint NOT NULL,
    claimed_by       text,
    attempt_count    integer NOT NULL DEFAULT 0,
    first_attempt_ms bigint
);
-- The queue: only rows that can be claimed (claimed and finished rows leave these indexes, so
-- they stay as small as the backlog). Claims read one lane (subscription) at a time in due
-- order, so a lane with a deep backlog costs nothing when it is not asked for; the second index
-- answers "when is anything due next".
CREATE INDEX deliveries_lane_due ON deliveries (app_id, object_type, due_ms, id) WHERE state = 'pending' AND claimed_by IS NULL;
CREATE INDEX deliveries_claimed ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;
-- The app's delivery log, newest first, and explain's "which delivery carried change N".
CREATE INDEX deliveries_by_app ON deliveries (app_id, id);
CREATE INDEX deliveries_by_change ON deliveries (app_id, object_type, first_change_id);
-- Queue metrics: pending and paused deliveries.
CREATE INDEX deliveries_open ON deliveries (state, created_time) WHERE state IN ('pending', 'paused');

CREATE TABLE attempts (
    delivery_id bigint NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    number      integer NOT NULL,
    time_ms     bigint NOT NULL,
    status      integer,
    error       text,
    latency_ms  integer NOT NULL,
    response    text,
    PRIMARY KEY (delivery_id, number)
);

-- Nodes sharing this database and their leases.
CREATE TABLE nodes (
    id           text PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL
);

-- Subscriptions with work (pending or paused deliveries), and which node sends each: one at a
-- time, so a callback's concurrency limit and per-object order hold across nodes. A row is
-- added whenever a delivery is stored; node_id is NULL while no node owns the lane.
CREATE TABLE lanes (
    app_id      text NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    object_type text NOT NULL,
    node_id     text,
    PRIMARY KEY (app_id, object_type)
);
CREATE INDEX lanes_by_node ON lanes (node_id);
