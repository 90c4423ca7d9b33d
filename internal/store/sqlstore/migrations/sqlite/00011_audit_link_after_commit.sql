-- Audit rows are linked into the chain after their transaction commits on
-- PostgreSQL (see the PostgreSQL migration of the same number). SQLite
-- takes its write lock at BEGIN, so its transactions are serialized already
-- and CreateAuditLog keeps linking the row as it inserts it: nothing waits
-- on a lock of the chain's own. This version exists so that both engines
-- carry the same migration numbers.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
