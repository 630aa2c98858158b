-- The supervisor's page (issue 14): spot-checks (抽检) of callback records
-- and a calls index for searches by date alone. The PostgreSQL twin is
-- migrations/postgres/20261208000000_spot_checks.sql (same names, same rules).
--
-- A month's sample is drawn once, with a random seed kept here, so that an
-- inspector can re-derive it years later with any tool (src/domain/sample.rs
-- says how): the records of that month whose outcome was `reached`, at the
-- percentage in force when it was drawn.
CREATE TABLE spot_check_draws (
    month       TEXT PRIMARY KEY NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]'),
    seed        TEXT NOT NULL CHECK (length(seed) = 64 AND seed NOT GLOB '*[^0-9a-f]*'),
    percent     INTEGER NOT NULL CHECK (percent BETWEEN 1 AND 100),
    drawn_at    TEXT NOT NULL CHECK (drawn_at = strftime('%Y-%m-%dT%H:%M:%fZ', drawn_at)),
    drawn_by    TEXT NOT NULL CHECK (length(drawn_by) > 0)
) STRICT;

-- One check per sampled record, by someone who did not make it; never
-- changed afterwards.
CREATE TABLE spot_checks (
    record_id   TEXT PRIMARY KEY NOT NULL REFERENCES callback_records (id),
    month       TEXT NOT NULL REFERENCES spot_check_draws (month),
    checker_id  TEXT NOT NULL CHECK (length(checker_id) > 0),
    verdict     TEXT NOT NULL CHECK (verdict IN ('pass', 'fail')),
    note        TEXT,
    checked_at  TEXT NOT NULL CHECK (checked_at = strftime('%Y-%m-%dT%H:%M:%fZ', checked_at))
) STRICT;

CREATE TRIGGER spot_checks_no_update BEFORE UPDATE ON spot_checks
BEGIN SELECT RAISE(ABORT, 'a spot-check is never changed or removed'); END;
CREATE TRIGGER spot_checks_no_delete BEFORE DELETE ON spot_checks
BEGIN SELECT RAISE(ABORT, 'a spot-check is never changed or removed'); END;
CREATE TRIGGER spot_check_draws_no_update BEFORE UPDATE ON spot_check_draws
BEGIN SELECT RAISE(ABORT, 'a spot-check draw is never changed or removed'); END;
CREATE TRIGGER spot_check_draws_no_delete BEFORE DELETE ON spot_check_draws
BEGIN SELECT RAISE(ABORT, 'a spot-check draw is never changed or removed'); END;

-- A supervisor's search names no client or agent: by start time.
CREATE INDEX calls_by_start ON calls (started_at, id);
