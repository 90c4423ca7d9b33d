-- A one-time token may carry data besides its user: the new address of an
-- email change (purpose change_email), which becomes the account's email
-- only when the link sent to it is opened. Other purposes leave it ''.

-- +goose Up
ALTER TABLE one_time_tokens ADD COLUMN data TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE one_time_tokens DROP COLUMN data;
