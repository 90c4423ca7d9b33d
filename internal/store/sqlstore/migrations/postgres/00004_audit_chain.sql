-- Audit chain and immutability.
--
-- Every row gets its place in one hash chain: seq numbers rows from 1 in
-- append order, prev_hash is the hash of the row before and hash is
-- SHA-256 over the row's canonical encoding (gatehouse.AuditLog.ChainHash,
-- hex). The store appends under pg_advisory_xact_lock on a fixed key, so
-- two transactions never both extend the same head; the unique index on
-- seq refuses a fork even if something bypassed that lock.
--
-- Rows written before this migration are numbered in id order and keep
-- empty hashes: `gatehouse audit verify` counts them as unchained and
-- starts the chain at the first hashed row.
--
-- The table is append-only: a trigger refuses UPDATE, DELETE and
-- TRUNCATE. The one exception is retention pruning, which exports rows
-- first and then, in one transaction, sets the transaction-local setting
-- gatehouse.audit_prune_through to the highest seq it exported and
-- deletes seq <= that. The trigger allows a DELETE only of a row at or
-- below that bound; the setting vanishes at commit or rollback. This
-- guards against the application (and mistakes), not against a database
-- superuser, who can drop triggers: the hash chain is what shows that.

-- +goose Up
ALTER TABLE audit_logs ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_logs ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_logs ADD COLUMN hash TEXT NOT NULL DEFAULT '';
UPDATE audit_logs SET seq = n.seq
FROM (SELECT id, row_number() OVER (ORDER BY id) AS seq FROM audit_logs) n
WHERE audit_logs.id = n.id;
ALTER TABLE audit_logs ALTER COLUMN seq DROP DEFAULT;
CREATE UNIQUE INDEX audit_logs_seq_idx ON audit_logs (seq);

-- +goose StatementBegin
CREATE FUNCTION audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq <= coalesce(nullif(current_setting('gatehouse.audit_prune_through', true), '')::bigint, 0) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', TG_OP
        USING HINT = 'audit rows are removed only by the retention job (GATEHOUSE_AUDIT_RETENTION)';
END
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_append_only();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_append_only();

-- +goose Down
DROP TRIGGER audit_logs_no_truncate ON audit_logs;
DROP TRIGGER audit_logs_append_only ON audit_logs;
DROP FUNCTION audit_logs_append_only();
DROP INDEX audit_logs_seq_idx;
ALTER TABLE audit_logs DROP COLUMN hash;
ALTER TABLE audit_logs DROP COLUMN prev_hash;
ALTER TABLE audit_logs DROP COLUMN seq;
