-- Audit chain and immutability.
--
-- Every row gets its place in one hash chain: seq numbers rows from 1 in
-- append order, prev_hash is the hash of the row before and hash is
-- SHA-256 over the row's canonical encoding (gatehouse.AuditLog.ChainHash,
-- hex). SQLite transactions take the write lock at BEGIN (IMMEDIATE), so
-- appends are serialized; the unique index on seq refuses a fork anyway.
--
-- Rows written before this migration are numbered in id order and keep
-- empty hashes: `gatehouse audit verify` counts them as unchained and
-- starts the chain at the first hashed row.
--
-- The table is append-only: triggers refuse UPDATE and DELETE. The one
-- exception is retention pruning, which exports rows first and then, in
-- one transaction, sets audit_prune_control.through_seq (a one-row table)
-- to the highest seq it exported, deletes seq <= that, and sets it back to
-- 0 before committing. The trigger allows a DELETE only of a row at or
-- below that bound. This guards against the application (and mistakes),
-- not against someone who can edit the database file: the hash chain is
-- what shows that.

-- +goose Up
ALTER TABLE audit_logs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_logs ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_logs ADD COLUMN hash TEXT NOT NULL DEFAULT '';
UPDATE audit_logs SET seq = n.seq
FROM (SELECT id, row_number() OVER (ORDER BY id) AS seq FROM audit_logs) n
WHERE audit_logs.id = n.id;
CREATE UNIQUE INDEX audit_logs_seq_idx ON audit_logs (seq);

CREATE TABLE audit_prune_control (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    through_seq INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO audit_prune_control (id, through_seq) VALUES (1, 0);

-- +goose StatementBegin
CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only: UPDATE is not allowed');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
WHEN OLD.seq > coalesce((SELECT through_seq FROM audit_prune_control WHERE id = 1), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only: DELETE is not allowed');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER audit_logs_no_delete;
DROP TRIGGER audit_logs_no_update;
DROP TABLE audit_prune_control;
DROP INDEX audit_logs_seq_idx;
ALTER TABLE audit_logs DROP COLUMN hash;
ALTER TABLE audit_logs DROP COLUMN prev_hash;
ALTER TABLE audit_logs DROP COLUMN seq;
