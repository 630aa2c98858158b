-- The dialer (issue 6): agent sessions and their trace, the dialer's
-- columns of a task, the instance that placed a call, and the dialer
-- instances' heartbeats (what `huifang status` shows). Written only
-- through src/store/dialer.rs. The PostgreSQL twin is
-- migrations/postgres/20261130060000_dialer.sql (same names, same rules).
-- Conventions as in 20261127000000_calls_and_recordings.

-- The huifang instance that placed a call: start-up recovery closes only
-- its own open calls (several instances share one PostgreSQL). Written
-- once, with the row.
ALTER TABLE calls ADD COLUMN instance TEXT;

CREATE TRIGGER calls_instance_written_once
BEFORE UPDATE ON calls
FOR EACH ROW
WHEN NEW.instance IS NOT OLD.instance
BEGIN
    SELECT RAISE(ABORT, 'E2: a call''s identity and first times are written once');
END;

CREATE INDEX calls_open_by_instance ON calls (instance) WHERE outcome IS NULL;

-- A task's last attempt (the call, its outcome, when), since when it
-- waits for the agent's callback record (its call completed), and who
-- closed it by hand (`huifang task mark`). The lease columns of
-- 20261128000000_callbacks (lease_owner, lease_until) say which instance
-- works on it now.
ALTER TABLE tasks ADD COLUMN last_call_id TEXT;
ALTER TABLE tasks ADD COLUMN last_outcome TEXT;
ALTER TABLE tasks ADD COLUMN last_attempt_at TEXT
    CHECK (last_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', last_attempt_at));
ALTER TABLE tasks ADD COLUMN awaiting_record_since TEXT
    CHECK (awaiting_record_since = strftime('%Y-%m-%dT%H:%M:%fZ', awaiting_record_since));
ALTER TABLE tasks ADD COLUMN closed_by TEXT;

CREATE INDEX tasks_leased ON tasks (lease_owner) WHERE lease_owner IS NOT NULL;

-- The dialer's queue in its order (due date, so overdue first; priority;
-- age; key): a claim reads the first ready rows of this index and stops.
CREATE INDEX tasks_dial_queue ON tasks (due_on, priority, created_at, idempotency_key)
    WHERE state = 'open' AND awaiting_record_since IS NULL;

-- An agent's session: logged_out → available ⇄ paused → logged_out. The
-- current call lives in call_owner (the instance), call_task and
-- call_until (the lease, renewed while the call runs; after the call the
-- wrap-up time). An instance that dies leaves call_until to expire, and
-- the agent is offered calls again. Never deleted.
CREATE TABLE agent_sessions (
    staff_id            TEXT PRIMARY KEY NOT NULL REFERENCES staff (staff_id),
    state               TEXT NOT NULL CHECK (state IN ('logged_out', 'available', 'paused')),
    reason              TEXT,
    changed_by          TEXT NOT NULL CHECK (length(changed_by) > 0),
    changed_at          TEXT NOT NULL CHECK (changed_at = strftime('%Y-%m-%dT%H:%M:%fZ', changed_at)),
    call_owner          TEXT,
    call_task           TEXT,
    call_until          TEXT CHECK (call_until = strftime('%Y-%m-%dT%H:%M:%fZ', call_until)),
    last_call_ended_at  TEXT CHECK (last_call_ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', last_call_ended_at)),
    CONSTRAINT agent_sessions_call_complete CHECK ((call_owner IS NULL) = (call_until IS NULL)),
    CONSTRAINT agent_sessions_task_with_owner CHECK (call_task IS NULL OR call_owner IS NOT NULL)
) STRICT;

CREATE TRIGGER agent_sessions_never_deleted
BEFORE DELETE ON agent_sessions
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'agent sessions are never deleted');
END;

-- Every change of an agent's state: who, when, why. Append-only.
CREATE TABLE agent_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    staff_id    TEXT NOT NULL,
    at          TEXT NOT NULL CHECK (at = strftime('%Y-%m-%dT%H:%M:%fZ', at)),
    from_state  TEXT CHECK (from_state IN ('logged_out', 'available', 'paused', 'on_call')),
    to_state    TEXT NOT NULL CHECK (to_state IN ('logged_out', 'available', 'paused', 'on_call')),
    by          TEXT NOT NULL CHECK (length(by) > 0),
    reason      TEXT,
    task_id     TEXT
) STRICT;

CREATE INDEX agent_events_by_staff ON agent_events (staff_id, id);

CREATE TRIGGER agent_events_never_updated
BEFORE UPDATE ON agent_events
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'agent events are append-only');
END;

CREATE TRIGGER agent_events_never_deleted
BEFORE DELETE ON agent_events
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'agent events are append-only');
END;

-- One row per dialer instance: its state and a heartbeat, for `huifang
-- status` (an instance whose heartbeat is old is shown as gone).
CREATE TABLE dialer_instances (
    instance_id     TEXT PRIMARY KEY NOT NULL CHECK (length(instance_id) > 0),
    state           TEXT NOT NULL,
    detail          TEXT,
    started_at      TEXT NOT NULL CHECK (started_at = strftime('%Y-%m-%dT%H:%M:%fZ', started_at)),
    heartbeat_at    TEXT NOT NULL CHECK (heartbeat_at = strftime('%Y-%m-%dT%H:%M:%fZ', heartbeat_at)),
    active_calls    INTEGER NOT NULL DEFAULT 0 CHECK (active_calls >= 0),
    calls_placed    INTEGER NOT NULL DEFAULT 0 CHECK (calls_placed >= 0),
    last_error      TEXT,
    version         TEXT NOT NULL
) STRICT;
