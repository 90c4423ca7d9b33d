-- Indexes for the hourly cleanups, which otherwise read whole tables:
-- webhook deliveries past their retention, and one-time tokens expired or
-- used (the delete's "expires_at < ? OR used_at < ?" reads one index per
-- side, so both need one).

-- +goose Up
CREATE INDEX webhook_deliveries_created_at_idx ON webhook_deliveries (created_at);
CREATE INDEX one_time_tokens_used_at_idx ON one_time_tokens (used_at);

-- +goose Down
DROP INDEX one_time_tokens_used_at_idx;
DROP INDEX webhook_deliveries_created_at_idx;
