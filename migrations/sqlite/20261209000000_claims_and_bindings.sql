-- Issue 16. The PostgreSQL twin is
-- migrations/postgres/20261209000000_claims_and_bindings.sql, which says
-- what each part is for.

-- 1. When the dialer claimed the task a call serves; written once.
ALTER TABLE calls ADD COLUMN claimed_at TEXT
    CHECK (claimed_at = strftime('%Y-%m-%dT%H:%M:%fZ', claimed_at));

CREATE TRIGGER calls_claimed_at_once
BEFORE UPDATE ON calls
FOR EACH ROW
WHEN NEW.claimed_at IS NOT OLD.claimed_at
BEGIN
    SELECT RAISE(ABORT, 'E2: a call''s identity and first times are written once');
END;

-- 2. The built-in registrar's bindings (UDP), per instance.
CREATE TABLE sip_bindings (
    instance    TEXT NOT NULL CHECK (length(instance) > 0),
    username    TEXT NOT NULL CHECK (length(username) > 0),
    contact     TEXT NOT NULL CHECK (length(contact) > 0),
    transport   TEXT NOT NULL CHECK (transport IN ('udp', 'tcp')),
    source      TEXT NOT NULL CHECK (length(source) > 0),
    call_id     TEXT NOT NULL,
    cseq        INTEGER NOT NULL CHECK (cseq >= 0),
    expires_at  TEXT NOT NULL CHECK (expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', expires_at)),
    PRIMARY KEY (instance, username, contact)
) STRICT;
