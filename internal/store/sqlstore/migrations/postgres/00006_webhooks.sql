-- Webhooks: subscriptions owned by a user, one delivery row per event sent
-- to one webhook, and one attempt row per HTTP request of a delivery.
-- Everything goes with its owner (ON DELETE CASCADE): deleting a webhook
-- removes its deliveries, so their queued jobs find nothing and stop.
--
-- The secret is sealed with the master key (internal/secret, bound to the
-- webhook id), never stored in the clear. The payload is the exact JSON
-- body sent, as TEXT so every retry sends (and signs) the same bytes.
-- Deliveries are read newest first per webhook, a page at a time
-- (webhook_id, id DESC; ids are UUIDv7, so id order is creation order).

-- +goose Up
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    -- A JSON array of event types; "*" means every type.
    events        JSONB NOT NULL DEFAULT '[]',
    description   TEXT NOT NULL DEFAULT '',
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    secret_enc    BYTEA NOT NULL,
    -- Receives every user's events (needs webhooks:all).
    all_users     BOOLEAN NOT NULL DEFAULT FALSE,
    -- Start of the current run of failed attempts; NULL while healthy.
    failing_since TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE INDEX webhooks_user_id_id_idx ON webhooks (user_id, id);
-- The fan-out reads the event user's webhooks and the few all-users ones.
CREATE INDEX webhooks_all_users_idx ON webhooks (all_users) WHERE all_users;

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    response_status INTEGER,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ,
    delivered_at    TIMESTAMPTZ
);

CREATE INDEX webhook_deliveries_webhook_id_id_idx ON webhook_deliveries (webhook_id, id DESC);

CREATE TABLE webhook_attempts (
    delivery_id     TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    duration_ms     BIGINT NOT NULL DEFAULT 0,
    response_status INTEGER,
    error           TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, attempt)
);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
