-- Audit rows are linked into the chain after their transaction commits.
--
-- Before, CreateAuditLog took the chain's advisory lock inside the
-- transaction that wrote the row and held it until that transaction ended,
-- so every sign-in on every instance waited for the one before it to commit
-- (and a lock taken mid-transaction, after row locks, could deadlock with
-- them). Now the row is inserted with seq 0 and no hashes (it exists exactly
-- when its change committed), and right after the commit a short
-- transaction of its own takes the lock, reads the head, and gives every
-- waiting row, oldest first, its seq, prev_hash and hash. A periodic job
-- links rows whose writer died between the two steps.
--
-- So seq 0 now means "not linked yet": the unique index on seq leaves those
-- out, a partial index finds them, and the append-only trigger allows
-- exactly one UPDATE of a row, the one that links it, changing nothing but
-- seq, prev_hash and hash. Pruning never deletes an unlinked row.

-- +goose Up
DROP INDEX audit_logs_seq_idx;
CREATE UNIQUE INDEX audit_logs_seq_idx ON audit_logs (seq) WHERE seq > 0;
CREATE INDEX audit_logs_unlinked_idx ON audit_logs (created_at, id) WHERE seq = 0;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq > 0
       AND OLD.seq <= coalesce(nullif(current_setting('gatehouse.audit_prune_through', true), '')::bigint, 0) THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.seq = 0 AND OLD.hash = '' AND NEW.seq > 0 AND NEW.hash <> ''
       AND (NEW.id, NEW.actor_id, NEW.user_id, NEW.action, NEW.resource, NEW.ip_address, NEW.user_agent,
            NEW.metadata, NEW.risk_score, NEW.created_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.actor_id, OLD.user_id, OLD.action, OLD.resource, OLD.ip_address, OLD.user_agent,
            OLD.metadata, OLD.risk_score, OLD.created_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', TG_OP
        USING HINT = 'audit rows are removed only by the retention job (GATEHOUSE_AUDIT_RETENTION)';
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq <= coalesce(nullif(current_setting('gatehouse.audit_prune_through', true), '')::bigint, 0) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', TG_OP
        USING HINT = 'audit rows are removed only by the retention job (GATEHOUSE_AUDIT_RETENTION)';
END
$$;
-- +goose StatementEnd
DROP INDEX audit_logs_unlinked_idx;
DROP INDEX audit_logs_seq_idx;
CREATE UNIQUE INDEX audit_logs_seq_idx ON audit_logs (seq);
