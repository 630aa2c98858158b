-- The dialer (issue 6): agent sessions and their trace, the dialer's
-- columns of a task, the instance that placed a call, and the dialer
-- instances' heartbeats (what `huifang status` shows). Written only
-- through src/store/dialer.rs. The SQLite twin is
-- migrations/sqlite/20261130060000_dialer.sql (same names, same rules).

-- The huifang instance that placed a call: start-up recovery closes only
-- its own open calls (several instances share this database). Written
-- once, with the row.
ALTER TABLE calls ADD COLUMN instance text;

CREATE FUNCTION calls_instance_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.instance IS DISTINCT FROM OLD.instance THEN
        RAISE EXCEPTION 'E2: a call''s identity and first times are written once';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER calls_instance_guard
BEFORE UPDATE ON calls
FOR EACH ROW EXECUTE FUNCTION calls_instance_guard();

CREATE INDEX calls_open_by_instance ON calls (instance) WHERE outcome IS NULL;

-- A task's last attempt, since when it waits for the agent's callback
-- record, and who closed it by hand (`huifang task mark`).
ALTER TABLE tasks
    ADD COLUMN last_call_id uuid,
    ADD COLUMN last_outcome text,
    ADD COLUMN last_attempt_at timestamptz,
    ADD COLUMN awaiting_record_since timestamptz,
    ADD COLUMN closed_by text;

CREATE INDEX tasks_leased ON tasks (lease_owner) WHERE lease_owner IS NOT NULL;

-- The dialer's queue in its order (due date, so overdue first; priority;
-- age; key): a claim reads the first ready rows of this index and stops.
CREATE INDEX tasks_dial_queue ON tasks (due_on, priority, created_at, idempotency_key)
    WHERE state = 'open' AND awaiting_record_since IS NULL;

-- An agent's session: logged_out → available ⇄ paused → logged_out; the
-- current call in call_owner / call_task / call_until (a lease). Never
-- deleted.
CREATE TABLE agent_sessions (
    staff_id            text PRIMARY KEY REFERENCES staff (staff_id),
    state               text NOT NULL CHECK (state IN ('logged_out', 'available', 'paused')),
    reason              text,
    changed_by          text NOT NULL CHECK (length(changed_by) > 0),
    changed_at          timestamptz NOT NULL,
    call_owner          text,
    call_task           uuid,
    call_until          timestamptz,
    last_call_ended_at  timestamptz,
    CONSTRAINT agent_sessions_call_complete CHECK ((call_owner IS NULL) = (call_until IS NULL)),
    CONSTRAINT agent_sessions_task_with_owner CHECK (call_task IS NULL OR call_owner IS NOT NULL)
);

-- Every change of an agent's state: who, when, why. Append-only.
CREATE TABLE agent_events (
    id          bigserial PRIMARY KEY,
    staff_id    text NOT NULL,
    at          timestamptz NOT NULL,
    from_state  text CHECK (from_state IN ('logged_out', 'available', 'paused', 'on_call')),
    to_state    text NOT NULL CHECK (to_state IN ('logged_out', 'available', 'paused', 'on_call')),
    by          text NOT NULL CHECK (length(by) > 0),
    reason      text,
    task_id     uuid
);

CREATE INDEX agent_events_by_staff ON agent_events (staff_id, id);

CREATE FUNCTION dialer_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'agent_events' THEN
        RAISE EXCEPTION 'agent events are append-only';
    END IF;
    RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME;
END
$$;

CREATE TRIGGER agent_sessions_never_deleted BEFORE DELETE ON agent_sessions
FOR EACH ROW EXECUTE FUNCTION dialer_guard();
CREATE TRIGGER agent_events_append_only BEFORE UPDATE OR DELETE ON agent_events
FOR EACH ROW EXECUTE FUNCTION dialer_guard();
CREATE TRIGGER agent_sessions_never_truncated BEFORE TRUNCATE ON agent_sessions
FOR EACH STATEMENT EXECUTE FUNCTION never_truncate();
CREATE TRIGGER agent_events_never_truncated BEFORE TRUNCATE ON agent_events
FOR EACH STATEMENT EXECUTE FUNCTION never_truncate();

-- One row per dialer instance: its state and a heartbeat.
CREATE TABLE dialer_instances (
    instance_id     text PRIMARY KEY CHECK (length(instance_id) > 0),
    state           text NOT NULL,
    detail          text,
    started_at      timestamptz NOT NULL,
    heartbeat_at    timestamptz NOT NULL,
    active_calls    bigint NOT NULL DEFAULT 0 CHECK (active_calls >= 0),
    calls_placed    bigint NOT NULL DEFAULT 0 CHECK (calls_placed >= 0),
    last_error      text,
    version         text NOT NULL
);
