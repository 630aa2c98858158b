-- The audit log (E6) and legal holds. Written only through src/store/
-- (audit.rs, holds.rs); the rules below are defence in depth behind the
-- store's own checks. The PostgreSQL twin is migrations/postgres/ (same
-- names, same rules). Conventions as in 20261127000000_calls_and_recordings.

-- Append-only and hash-chained (src/audit.rs describes the hash):
-- seq runs 1, 2, 3, … without gaps; each prev_hash is the previous row's
-- hash (64 zeros for the first); rows never change and are never deleted.
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 1),
    at          TEXT NOT NULL CHECK (at = strftime('%Y-%m-%dT%H:%M:%fZ', at)),
    actor       TEXT NOT NULL CHECK (length(actor) > 0),
    action      TEXT NOT NULL CHECK (length(action) > 0),
    subject     TEXT NOT NULL,
    detail      TEXT NOT NULL CHECK (json_valid(detail)),
    prev_hash   TEXT NOT NULL UNIQUE
                CHECK (length(prev_hash) = 64 AND prev_hash NOT GLOB '*[^0-9a-f]*'),
    hash        TEXT NOT NULL UNIQUE
                CHECK (length(hash) = 64 AND hash NOT GLOB '*[^0-9a-f]*')
) STRICT;

CREATE INDEX audit_events_by_subject ON audit_events (subject, seq);

-- E6: a new event continues the chain: the next seq, the head's hash.
CREATE TRIGGER audit_events_chained
BEFORE INSERT ON audit_events
FOR EACH ROW
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_events)
  OR NEW.prev_hash IS NOT COALESCE(
        (SELECT hash FROM audit_events WHERE seq = NEW.seq - 1),
        '0000000000000000000000000000000000000000000000000000000000000000')
BEGIN
    SELECT RAISE(ABORT, 'E6: an audit event must continue the chain');
END;

CREATE TRIGGER audit_events_never_updated
BEFORE UPDATE ON audit_events
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'E6: audit events never change');
END;

CREATE TRIGGER audit_events_never_deleted
BEFORE DELETE ON audit_events
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'E6: audit events are never deleted');
END;

-- Legal holds: one row per hold; at most one open (not released) hold per
-- recording. active → release_requested (a first user) → released (a
-- second, different user: the two-person rule).
CREATE TABLE legal_holds (
    id              TEXT PRIMARY KEY NOT NULL
                    CHECK (length(id) = 36 AND id NOT GLOB '*[^0-9a-f-]*'),
    -- no FOREIGN KEY: on PostgreSQL one would make TRUNCATE recordings fail
    -- on the reference instead of on the E5 trigger; the store checks that
    -- the recording exists, and recordings are never deleted (E5)
    recording_id    TEXT NOT NULL
                    CHECK (length(recording_id) = 36 AND recording_id NOT GLOB '*[^0-9a-f-]*'),
    state           TEXT NOT NULL DEFAULT 'active',
    set_by          TEXT NOT NULL CHECK (length(set_by) > 0),
    set_reason      TEXT NOT NULL,
    set_at          TEXT NOT NULL CHECK (set_at = strftime('%Y-%m-%dT%H:%M:%fZ', set_at)),
    requested_by    TEXT CHECK (length(requested_by) > 0),
    request_reason  TEXT,
    requested_at    TEXT CHECK (requested_at = strftime('%Y-%m-%dT%H:%M:%fZ', requested_at)),
    released_by     TEXT CHECK (length(released_by) > 0),
    released_at     TEXT CHECK (released_at = strftime('%Y-%m-%dT%H:%M:%fZ', released_at)),

    CONSTRAINT legal_holds_state_known CHECK (state IN ('active', 'release_requested', 'released')),
    CONSTRAINT legal_holds_request_complete CHECK (
            (state = 'active') = (requested_by IS NULL)
        AND (state = 'active') = (requested_at IS NULL)
        AND (state = 'active') = (request_reason IS NULL)),
    CONSTRAINT legal_holds_release_complete CHECK (
            (state = 'released') = (released_by IS NOT NULL)
        AND (state = 'released') = (released_at IS NOT NULL)),
    CONSTRAINT legal_holds_two_people CHECK (released_by IS NULL OR released_by <> requested_by)
) STRICT;

CREATE UNIQUE INDEX legal_holds_one_open ON legal_holds (recording_id) WHERE state <> 'released';

-- A hold moves forward only; what was written stays.
CREATE TRIGGER legal_holds_forward_only
BEFORE UPDATE ON legal_holds
FOR EACH ROW
WHEN NEW.id IS NOT OLD.id
  OR NEW.recording_id IS NOT OLD.recording_id
  OR NEW.set_by IS NOT OLD.set_by
  OR NEW.set_reason IS NOT OLD.set_reason
  OR NEW.set_at IS NOT OLD.set_at
  OR (OLD.requested_by IS NOT NULL AND NEW.requested_by IS NOT OLD.requested_by)
  OR (OLD.request_reason IS NOT NULL AND NEW.request_reason IS NOT OLD.request_reason)
  OR (OLD.requested_at IS NOT NULL AND NEW.requested_at IS NOT OLD.requested_at)
  OR OLD.state = 'released'
  OR NOT ((OLD.state = 'active' AND NEW.state IN ('active', 'release_requested'))
       OR (OLD.state = 'release_requested' AND NEW.state IN ('release_requested', 'released')))
BEGIN
    SELECT RAISE(ABORT, 'legal hold: states move forward only and what was written stays');
END;

CREATE TRIGGER legal_holds_never_deleted
BEFORE DELETE ON legal_holds
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'legal holds are never deleted');
END;
