-- The audit log (E6) and legal holds. Written only through src/store/
-- (audit.rs, holds.rs); the rules below are defence in depth behind the
-- store's own checks. The SQLite twin is migrations/sqlite/ (same names,
-- same rules). Conventions as in 20261127000000_calls_and_recordings.

-- Append-only and hash-chained (src/audit.rs describes the hash):
-- seq runs 1, 2, 3, … without gaps; each prev_hash is the previous row's
-- hash (64 zeros for the first); rows never change, are never deleted, and
-- the table is never truncated. Appends are serialized by the store with
-- pg_advisory_xact_lock (see src/store/audit.rs).
CREATE TABLE audit_events (
    seq         bigint PRIMARY KEY CHECK (seq >= 1),
    at          timestamptz NOT NULL,
    actor       text NOT NULL CHECK (length(actor) > 0),
    action      text NOT NULL CHECK (length(action) > 0),
    subject     text NOT NULL,
    -- text, not jsonb: the hash covers the canonical text as written
    detail      text NOT NULL CHECK ((detail::jsonb) IS NOT NULL),
    prev_hash   text NOT NULL UNIQUE CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash        text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$')
);

CREATE INDEX audit_events_by_subject ON audit_events (subject, seq);

-- E6: a new event continues the chain (the next seq, the head's hash);
-- rows never change and are never deleted.
CREATE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.seq IS DISTINCT FROM (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_events)
           OR NEW.prev_hash IS DISTINCT FROM COALESCE(
                (SELECT hash FROM audit_events WHERE seq = NEW.seq - 1),
                '0000000000000000000000000000000000000000000000000000000000000000') THEN
            RAISE EXCEPTION 'E6: an audit event must continue the chain';
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'E6: audit events never change';
    ELSE
        RAISE EXCEPTION 'E6: audit events are never deleted';
    END IF;
END;
$$;

CREATE TRIGGER audit_events_guard
BEFORE INSERT OR UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_guard();

CREATE TRIGGER audit_events_never_truncated
BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION never_truncate();

-- Legal holds: one row per hold; at most one open (not released) hold per
-- recording. active → release_requested (a first user) → released (a
-- second, different user: the two-person rule).
CREATE TABLE legal_holds (
    id              uuid PRIMARY KEY,
    -- no FOREIGN KEY: it would make TRUNCATE recordings fail on the
    -- reference instead of on the E5 trigger; the store checks that the
    -- recording exists, and recordings are never deleted (E5)
    recording_id    uuid NOT NULL,
    state           text NOT NULL DEFAULT 'active',
    set_by          text NOT NULL CHECK (length(set_by) > 0),
    set_reason      text NOT NULL,
    set_at          timestamptz NOT NULL,
    requested_by    text CHECK (length(requested_by) > 0),
    request_reason  text,
    requested_at    timestamptz,
    released_by     text CHECK (length(released_by) > 0),
    released_at     timestamptz,

    CONSTRAINT legal_holds_state_known CHECK (state IN ('active', 'release_requested', 'released')),
    CONSTRAINT legal_holds_request_complete CHECK (
            (state = 'active') = (requested_by IS NULL)
        AND (state = 'active') = (requested_at IS NULL)
        AND (state = 'active') = (request_reason IS NULL)),
    CONSTRAINT legal_holds_release_complete CHECK (
            (state = 'released') = (released_by IS NOT NULL)
        AND (state = 'released') = (released_at IS NOT NULL)),
    CONSTRAINT legal_holds_two_people CHECK (released_by IS NULL OR released_by <> requested_by)
);

CREATE UNIQUE INDEX legal_holds_one_open ON legal_holds (recording_id) WHERE state <> 'released';

-- A hold moves forward only; what was written stays; never deleted.
CREATE FUNCTION legal_holds_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'legal holds are never deleted';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.recording_id IS DISTINCT FROM OLD.recording_id
       OR NEW.set_by IS DISTINCT FROM OLD.set_by
       OR NEW.set_reason IS DISTINCT FROM OLD.set_reason
       OR NEW.set_at IS DISTINCT FROM OLD.set_at
       OR (OLD.requested_by IS NOT NULL AND NEW.requested_by IS DISTINCT FROM OLD.requested_by)
       OR (OLD.request_reason IS NOT NULL AND NEW.request_reason IS DISTINCT FROM OLD.request_reason)
       OR (OLD.requested_at IS NOT NULL AND NEW.requested_at IS DISTINCT FROM OLD.requested_at)
       OR OLD.state = 'released'
       OR NOT ((OLD.state = 'active' AND NEW.state IN ('active', 'release_requested'))
            OR (OLD.state = 'release_requested' AND NEW.state IN ('release_requested', 'released'))) THEN
        RAISE EXCEPTION 'legal hold: states move forward only and what was written stays';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER legal_holds_guard
BEFORE UPDATE OR DELETE ON legal_holds
FOR EACH ROW EXECUTE FUNCTION legal_holds_guard();

CREATE TRIGGER legal_holds_never_truncated
BEFORE TRUNCATE ON legal_holds
FOR EACH STATEMENT EXECUTE FUNCTION never_truncate();
