-- Issue 16. The SQLite twin is
-- migrations/sqlite/20261209000000_claims_and_bindings.sql (same names, same
-- rules).
--
-- 1. When the dialer claimed the task a call serves: the trace shows how
--    long the dialer took from the claim to the first INVITE and to both
--    legs answered (scripts/bench/setup.sh measures set-up times from it).
--    NULL for calls placed without a claim (`huifang dial`). Written once,
--    with the row.
ALTER TABLE calls ADD COLUMN claimed_at timestamptz;

CREATE FUNCTION calls_claimed_at_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.claimed_at IS DISTINCT FROM OLD.claimed_at THEN
        RAISE EXCEPTION 'E2: a call''s identity and first times are written once';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER calls_claimed_at_guard
BEFORE UPDATE ON calls
FOR EACH ROW EXECUTE FUNCTION calls_claimed_at_guard();

-- 2. The built-in registrar's bindings, so that a restarted `serve` (a
--    crash, a deploy) still knows where every agent's softphone is, instead
--    of waiting minutes for each phone's next REGISTER. Kept per instance
--    (each `serve` is the registrar of the phones registered to it);
--    written behind the registrar by a worker, never on the SIP path; only
--    UDP bindings (a TCP binding is its connection, gone with the process).
--    Not evidence: rows come and go with the registrations.
CREATE TABLE sip_bindings (
    instance    text NOT NULL CHECK (length(instance) > 0),
    username    text NOT NULL CHECK (length(username) > 0),
    contact     text NOT NULL CHECK (length(contact) > 0),
    transport   text NOT NULL CHECK (transport IN ('udp', 'tcp')),
    source      text NOT NULL CHECK (length(source) > 0),
    call_id     text NOT NULL,
    cseq        bigint NOT NULL CHECK (cseq >= 0),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (instance, username, contact)
);
