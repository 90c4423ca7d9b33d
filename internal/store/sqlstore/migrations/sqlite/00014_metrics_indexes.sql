-- Indexes for the gauges counted at scrape time (cached for a few
-- seconds): active sessions (unrevoked, not yet expired) and users with an
-- activated second factor. Both are partial, so they hold only the rows
-- the counts read and stay small.

-- +goose Up
CREATE INDEX sessions_active_idx ON sessions (expires_at) WHERE revoked_at IS NULL;
CREATE INDEX mfa_factors_active_user_idx ON mfa_factors (user_id) WHERE activated_at IS NOT NULL;

-- +goose Down
DROP INDEX mfa_factors_active_user_idx;
DROP INDEX sessions_active_idx;
