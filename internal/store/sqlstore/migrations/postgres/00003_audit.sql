-- Audit trail. Rows are written in the transaction of the change they
-- record and never updated; they outlive the accounts they mention, so
-- user_id and actor_id are plain columns without a foreign key (deleting a
-- user must neither cascade into its history nor be refused by it).
--
-- Reads are "newest first" (ORDER BY id DESC: ids are UUIDv7, so id order
-- is creation order), a page at a time (id < cursor), filtered by any mix
-- of user, action, time window and minimum risk. An index whose leading
-- column is matched by equality and whose next column is id hands rows
-- over already in page order: the engine walks it from the cursor, checks
-- the other filters row by row and stops after LIMIT matches, with no sort,
-- whatever the table's size. Ranges (time, risk) cannot do that: the rows
-- of a range come in time or risk order and must be sorted by id.
--
-- * (user_id, id DESC): "what happened to this account", the common query,
--   alone or with any other filter: a user has few rows (even an account
--   under attack has a few percent of the table), so walking them and
--   checking action, time and risk on each is the cheapest plan there is.
--   Measured at a million rows: under a millisecond on both engines.
-- * (action, id DESC): "every user.login_failed", across users. PostgreSQL
--   walks the primary key instead when the action is common enough that a
--   page turns up within the newest rows anyway.
-- * (risk_score, id DESC): "at least this risky". A range, so it serves
--   when high scores are rare (read the band, sort it; ties on one score
--   are already in id order); otherwise walking the primary key and
--   filtering finds a page sooner, and the planners choose between them.
-- * (created_at): time windows, and retention jobs deleting by age. Which
--   is faster, reading the window and sorting it or walking newest first
--   until a page of the window turns up, depends on how many rows the
--   window holds and how many are newer than it. The planners cannot tell
--   (they do not know ids and times rise together), so the store counts
--   the window's rows (index only, capped) and picks; see
--   sqlstore/audit.go.
-- * The primary key (id) serves the unfiltered list and the cursor.
-- No index covers two filters: each combination is served by its most
-- selective single index plus a filter, which keeps every audited write
-- (it pays for each index) cheaper than an index per combination.

-- +goose Up
CREATE TABLE audit_logs (
    id         TEXT PRIMARY KEY,
    -- Who did it: the user themself, an administrator, or NULL for the
    -- system (a job, a lockout).
    actor_id   TEXT,
    -- Whose account it concerns; NULL when none (e.g. a login attempt for
    -- an unknown email).
    user_id    TEXT,
    action     TEXT NOT NULL,
    resource   TEXT NOT NULL DEFAULT '',
    ip_address TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    metadata   JSONB NOT NULL DEFAULT '{}',
    risk_score INTEGER NOT NULL DEFAULT 0 CHECK (risk_score BETWEEN 0 AND 100),
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX audit_logs_user_id_id_idx ON audit_logs (user_id, id DESC);
CREATE INDEX audit_logs_action_id_idx ON audit_logs (action, id DESC);
CREATE INDEX audit_logs_risk_score_id_idx ON audit_logs (risk_score, id DESC);
CREATE INDEX audit_logs_created_at_idx ON audit_logs (created_at);

-- +goose Down
DROP TABLE audit_logs;
