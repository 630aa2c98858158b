-- Calls and recordings: the trace of every callback attempt (E2) and the
-- record of every recorded conversation (E3). Written only through
-- src/store/; the rules below are defence in depth behind the store's own
-- checks. The PostgreSQL twin is migrations/postgres/ (same names, same rules).
--
-- Conventions (SQLite):
--   ids          TEXT, hyphenated lower-case UUID
--   timestamps   TEXT, RFC 3339 UTC with milliseconds and `Z`
--                (2026-11-27T14:44:53.123Z): text order is time order;
--                the CHECKs accept exactly that form.
--   tables       STRICT (no silent type conversions)
-- Nothing is ever deleted (E5): triggers refuse DELETE.

CREATE TABLE calls (
    id                  TEXT PRIMARY KEY NOT NULL
                        CHECK (length(id) = 36 AND id NOT GLOB '*[^0-9a-f-]*'),
    task_id             TEXT,
    client_id           TEXT,
    agent_uri           TEXT NOT NULL,
    client_uri          TEXT NOT NULL,
    started_at          TEXT NOT NULL
                        CHECK (started_at = strftime('%Y-%m-%dT%H:%M:%fZ', started_at)),

    -- per leg: first INVITE sent, last status and its time, first
    -- provisional above 100 (ringing), first 2xx
    agent_invited_at    TEXT CHECK (agent_invited_at = strftime('%Y-%m-%dT%H:%M:%fZ', agent_invited_at)),
    agent_status        INTEGER CHECK (agent_status BETWEEN 100 AND 699),
    agent_status_at     TEXT CHECK (agent_status_at = strftime('%Y-%m-%dT%H:%M:%fZ', agent_status_at)),
    agent_ringing_at    TEXT CHECK (agent_ringing_at = strftime('%Y-%m-%dT%H:%M:%fZ', agent_ringing_at)),
    agent_answered_at   TEXT CHECK (agent_answered_at = strftime('%Y-%m-%dT%H:%M:%fZ', agent_answered_at)),
    client_invited_at   TEXT CHECK (client_invited_at = strftime('%Y-%m-%dT%H:%M:%fZ', client_invited_at)),
    client_status       INTEGER CHECK (client_status BETWEEN 100 AND 699),
    client_status_at    TEXT CHECK (client_status_at = strftime('%Y-%m-%dT%H:%M:%fZ', client_status_at)),
    client_ringing_at   TEXT CHECK (client_ringing_at = strftime('%Y-%m-%dT%H:%M:%fZ', client_ringing_at)),
    client_answered_at  TEXT CHECK (client_answered_at = strftime('%Y-%m-%dT%H:%M:%fZ', client_answered_at)),

    -- the conversation started (client bridged to the agent, recorder running)
    answered_at         TEXT CHECK (answered_at = strftime('%Y-%m-%dT%H:%M:%fZ', answered_at)),
    ended_at            TEXT CHECK (ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', ended_at)),
    outcome             TEXT,
    reason              TEXT,

    CONSTRAINT calls_outcome_known CHECK (outcome IN (
        'completed', 'no-answer', 'busy', 'rejected', 'unreachable',
        'agent-unavailable', 'cancelled', 'recording-failed', 'failed',
        'interrupted')),
    CONSTRAINT calls_outcome_with_end CHECK ((outcome IS NULL) = (ended_at IS NULL)),
    CONSTRAINT calls_reason_with_outcome CHECK (reason IS NULL OR outcome IS NOT NULL)
) STRICT;

-- compliance searches by client, the dialer by task, start-up by open call
CREATE INDEX calls_by_client ON calls (client_id, started_at);
CREATE INDEX calls_by_task ON calls (task_id);
CREATE INDEX calls_open ON calls (started_at) WHERE outcome IS NULL;

CREATE TABLE recordings (
    id                  TEXT PRIMARY KEY NOT NULL
                        CHECK (length(id) = 36 AND id NOT GLOB '*[^0-9a-f-]*'),
    call_id             TEXT NOT NULL UNIQUE REFERENCES calls (id),
    path                TEXT NOT NULL,
    state               TEXT NOT NULL DEFAULT 'recording',
    sha256              TEXT CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    bytes               INTEGER CHECK (bytes >= 0),
    duration_ms         INTEGER CHECK (duration_ms >= 0),
    started_at          TEXT NOT NULL
                        CHECK (started_at = strftime('%Y-%m-%dT%H:%M:%fZ', started_at)),
    sealed_at           TEXT CHECK (sealed_at = strftime('%Y-%m-%dT%H:%M:%fZ', sealed_at)),
    agent_packets       INTEGER NOT NULL DEFAULT 0 CHECK (agent_packets >= 0),
    agent_lost          INTEGER NOT NULL DEFAULT 0 CHECK (agent_lost >= 0),
    agent_late          INTEGER NOT NULL DEFAULT 0 CHECK (agent_late >= 0),
    agent_gaps          INTEGER NOT NULL DEFAULT 0 CHECK (agent_gaps >= 0),
    client_packets      INTEGER NOT NULL DEFAULT 0 CHECK (client_packets >= 0),
    client_lost         INTEGER NOT NULL DEFAULT 0 CHECK (client_lost >= 0),
    client_late         INTEGER NOT NULL DEFAULT 0 CHECK (client_late >= 0),
    client_gaps         INTEGER NOT NULL DEFAULT 0 CHECK (client_gaps >= 0),

    CONSTRAINT recordings_state_known CHECK (state IN ('recording', 'sealed', 'interrupted')),
    -- a final recording has all of its seal; a running one none of it
    CONSTRAINT recordings_seal_complete CHECK (
            (state = 'recording') = (sha256 IS NULL)
        AND (state = 'recording') = (bytes IS NULL)
        AND (state = 'recording') = (duration_ms IS NULL)
        AND (state = 'recording') = (sealed_at IS NULL))
) STRICT;

CREATE INDEX recordings_by_state ON recordings (state, started_at);

-- E2: what identifies a call, and every first time, is written once.
CREATE TRIGGER calls_written_once
BEFORE UPDATE ON calls
FOR EACH ROW
WHEN NEW.id IS NOT OLD.id
  OR NEW.task_id IS NOT OLD.task_id
  OR NEW.client_id IS NOT OLD.client_id
  OR NEW.agent_uri IS NOT OLD.agent_uri
  OR NEW.client_uri IS NOT OLD.client_uri
  OR NEW.started_at IS NOT OLD.started_at
  OR (OLD.agent_invited_at IS NOT NULL AND NEW.agent_invited_at IS NOT OLD.agent_invited_at)
  OR (OLD.agent_ringing_at IS NOT NULL AND NEW.agent_ringing_at IS NOT OLD.agent_ringing_at)
  OR (OLD.agent_answered_at IS NOT NULL AND NEW.agent_answered_at IS NOT OLD.agent_answered_at)
  OR (OLD.client_invited_at IS NOT NULL AND NEW.client_invited_at IS NOT OLD.client_invited_at)
  OR (OLD.client_ringing_at IS NOT NULL AND NEW.client_ringing_at IS NOT OLD.client_ringing_at)
  OR (OLD.client_answered_at IS NOT NULL AND NEW.client_answered_at IS NOT OLD.client_answered_at)
  OR (OLD.answered_at IS NOT NULL AND NEW.answered_at IS NOT OLD.answered_at)
BEGIN
    SELECT RAISE(ABORT, 'E2: a call''s identity and first times are written once');
END;

-- E2: exactly one terminal outcome per attempt.
CREATE TRIGGER calls_outcome_final
BEFORE UPDATE ON calls
FOR EACH ROW
WHEN OLD.outcome IS NOT NULL
 AND (NEW.outcome IS NOT OLD.outcome
   OR NEW.reason IS NOT OLD.reason
   OR NEW.ended_at IS NOT OLD.ended_at
   OR NEW.answered_at IS NOT OLD.answered_at)
BEGIN
    SELECT RAISE(ABORT, 'E2: a call''s outcome is set once');
END;

CREATE TRIGGER calls_never_deleted
BEFORE DELETE ON calls
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'E5: calls are never deleted');
END;

-- E3: a sealed or interrupted recording never changes; what identifies a
-- recording never changes at all.
CREATE TRIGGER recordings_written_once
BEFORE UPDATE ON recordings
FOR EACH ROW
WHEN NEW.id IS NOT OLD.id
  OR NEW.call_id IS NOT OLD.call_id
  OR NEW.started_at IS NOT OLD.started_at
BEGIN
    SELECT RAISE(ABORT, 'E3: a recording''s identity never changes');
END;

CREATE TRIGGER recordings_final_never_change
BEFORE UPDATE ON recordings
FOR EACH ROW
WHEN OLD.state <> 'recording'
 AND (NEW.path IS NOT OLD.path
   OR NEW.state IS NOT OLD.state
   OR NEW.sha256 IS NOT OLD.sha256
   OR NEW.bytes IS NOT OLD.bytes
   OR NEW.duration_ms IS NOT OLD.duration_ms
   OR NEW.sealed_at IS NOT OLD.sealed_at
   OR NEW.agent_packets IS NOT OLD.agent_packets
   OR NEW.agent_lost IS NOT OLD.agent_lost
   OR NEW.agent_late IS NOT OLD.agent_late
   OR NEW.agent_gaps IS NOT OLD.agent_gaps
   OR NEW.client_packets IS NOT OLD.client_packets
   OR NEW.client_lost IS NOT OLD.client_lost
   OR NEW.client_late IS NOT OLD.client_late
   OR NEW.client_gaps IS NOT OLD.client_gaps)
BEGIN
    SELECT RAISE(ABORT, 'E3: a sealed or interrupted recording never changes');
END;

CREATE TRIGGER recordings_never_deleted
BEFORE DELETE ON recordings
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'E5: recordings are never deleted');
END;
