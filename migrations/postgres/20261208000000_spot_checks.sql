-- The supervisor's page (issue 14): spot-checks (抽检) of callback records
-- and a calls index for searches by date alone. The SQLite twin is
-- migrations/sqlite/20261208000000_spot_checks.sql (same names, same rules).
--
-- A month's sample is drawn once, with a random seed kept here, so that an
-- inspector can re-derive it years later with any tool (src/domain/sample.rs
-- says how): the records of that month whose outcome was `reached`, at the
-- percentage in force when it was drawn.
CREATE TABLE spot_check_draws (
    month       text PRIMARY KEY CHECK (month ~ '^[0-9]{4}-[0-9]{2}$'),
    seed        text NOT NULL CHECK (seed ~ '^[0-9a-f]{64}$'),
    percent     integer NOT NULL CHECK (percent BETWEEN 1 AND 100),
    drawn_at    timestamptz NOT NULL,
    drawn_by    text NOT NULL CHECK (length(drawn_by) > 0)
);

-- One check per sampled record, by someone who did not make it; never
-- changed afterwards.
CREATE TABLE spot_checks (
    record_id   uuid PRIMARY KEY REFERENCES callback_records (id),
    month       text NOT NULL REFERENCES spot_check_draws (month),
    checker_id  text NOT NULL CHECK (length(checker_id) > 0),
    verdict     text NOT NULL CHECK (verdict IN ('pass', 'fail')),
    note        text,
    checked_at  timestamptz NOT NULL
);

CREATE FUNCTION spot_checks_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a spot-check is never changed or removed';
END;
$$;

CREATE TRIGGER spot_checks_written_once BEFORE UPDATE OR DELETE ON spot_checks
FOR EACH ROW EXECUTE FUNCTION spot_checks_guard();

CREATE TRIGGER spot_check_draws_written_once BEFORE UPDATE OR DELETE ON spot_check_draws
FOR EACH ROW EXECUTE FUNCTION spot_checks_guard();

-- A supervisor's search names no client or agent: by start time.
CREATE INDEX calls_by_start ON calls (started_at, id);
