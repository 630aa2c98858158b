-- Calls and recordings: the trace of every callback attempt (E2) and the
-- record of every recorded conversation (E3). Written only through
-- src/store/; the rules below are defence in depth behind the store's own
-- checks. The SQLite twin is migrations/sqlite/ (same names, same rules).
--
-- Conventions (PostgreSQL): ids uuid, timestamps timestamptz (the store
-- writes UTC truncated to milliseconds), counters bigint.
-- Nothing is ever deleted (E5): triggers refuse DELETE and TRUNCATE.

CREATE TABLE calls (
    id                  uuid PRIMARY KEY,
    task_id             text,
    client_id           text,
    agent_uri           text NOT NULL,
    client_uri          text NOT NULL,
    started_at          timestamptz NOT NULL,

    -- per leg: first INVITE sent, last status and its time, first
    -- provisional above 100 (ringing), first 2xx
    agent_invited_at    timestamptz,
    agent_status        integer CHECK (agent_status BETWEEN 100 AND 699),
    agent_status_at     timestamptz,
    agent_ringing_at    timestamptz,
    agent_answered_at   timestamptz,
    client_invited_at   timestamptz,
    client_status       integer CHECK (client_status BETWEEN 100 AND 699),
    client_status_at    timestamptz,
    client_ringing_at   timestamptz,
    client_answered_at  timestamptz,

    -- the conversation started (client bridged to the agent, recorder running)
    answered_at         timestamptz,
    ended_at            timestamptz,
    outcome             text,
    reason              text,

    CONSTRAINT calls_outcome_known CHECK (outcome IN (
        'completed', 'no-answer', 'busy', 'rejected', 'unreachable',
        'agent-unavailable', 'cancelled', 'recording-failed', 'failed',
        'interrupted')),
    CONSTRAINT calls_outcome_with_end CHECK ((outcome IS NULL) = (ended_at IS NULL)),
    CONSTRAINT calls_reason_with_outcome CHECK (reason IS NULL OR outcome IS NOT NULL)
);

-- compliance searches by client, the dialer by task, start-up by open call
CREATE INDEX calls_by_client ON calls (client_id, started_at);
CREATE INDEX calls_by_task ON calls (task_id);
CREATE INDEX calls_open ON calls (started_at) WHERE outcome IS NULL;

CREATE TABLE recordings (
    id                  uuid PRIMARY KEY,
    call_id             uuid NOT NULL UNIQUE REFERENCES calls (id),
    path                text NOT NULL,
    state               text NOT NULL DEFAULT 'recording',
    sha256              text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes               bigint CHECK (bytes >= 0),
    duration_ms         bigint CHECK (duration_ms >= 0),
    started_at          timestamptz NOT NULL,
    sealed_at           timestamptz,
    agent_packets       bigint NOT NULL DEFAULT 0 CHECK (agent_packets >= 0),
    agent_lost          bigint NOT NULL DEFAULT 0 CHECK (agent_lost >= 0),
    agent_late          bigint NOT NULL DEFAULT 0 CHECK (agent_late >= 0),
    agent_gaps          bigint NOT NULL DEFAULT 0 CHECK (agent_gaps >= 0),
    client_packets      bigint NOT NULL DEFAULT 0 CHECK (client_packets >= 0),
    client_lost         bigint NOT NULL DEFAULT 0 CHECK (client_lost >= 0),
    client_late         bigint NOT NULL DEFAULT 0 CHECK (client_late >= 0),
    client_gaps         bigint NOT NULL DEFAULT 0 CHECK (client_gaps >= 0),

    CONSTRAINT recordings_state_known CHECK (state IN ('recording', 'sealed', 'interrupted')),
    -- a final recording has all of its seal; a running one none of it
    CONSTRAINT recordings_seal_complete CHECK (
            (state = 'recording') = (sha256 IS NULL)
        AND (state = 'recording') = (bytes IS NULL)
        AND (state = 'recording') = (duration_ms IS NULL)
        AND (state = 'recording') = (sealed_at IS NULL))
);

CREATE INDEX recordings_by_state ON recordings (state, started_at);

-- E2: what identifies a call, and every first time, is written once;
-- exactly one terminal outcome per attempt; no DELETE (E5).
CREATE FUNCTION calls_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'E5: calls are never deleted';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.task_id IS DISTINCT FROM OLD.task_id
       OR NEW.client_id IS DISTINCT FROM OLD.client_id
       OR NEW.agent_uri IS DISTINCT FROM OLD.agent_uri
       OR NEW.client_uri IS DISTINCT FROM OLD.client_uri
       OR NEW.started_at IS DISTINCT FROM OLD.started_at
       OR (OLD.agent_invited_at IS NOT NULL AND NEW.agent_invited_at IS DISTINCT FROM OLD.agent_invited_at)
       OR (OLD.agent_ringing_at IS NOT NULL AND NEW.agent_ringing_at IS DISTINCT FROM OLD.agent_ringing_at)
       OR (OLD.agent_answered_at IS NOT NULL AND NEW.agent_answered_at IS DISTINCT FROM OLD.agent_answered_at)
       OR (OLD.client_invited_at IS NOT NULL AND NEW.client_invited_at IS DISTINCT FROM OLD.client_invited_at)
       OR (OLD.client_ringing_at IS NOT NULL AND NEW.client_ringing_at IS DISTINCT FROM OLD.client_ringing_at)
       OR (OLD.client_answered_at IS NOT NULL AND NEW.client_answered_at IS DISTINCT FROM OLD.client_answered_at)
       OR (OLD.answered_at IS NOT NULL AND NEW.answered_at IS DISTINCT FROM OLD.answered_at)
    THEN
        RAISE EXCEPTION 'E2: a call''s identity and first times are written once';
    END IF;
    IF OLD.outcome IS NOT NULL
       AND (NEW.outcome IS DISTINCT FROM OLD.outcome
         OR NEW.reason IS DISTINCT FROM OLD.reason
         OR NEW.ended_at IS DISTINCT FROM OLD.ended_at
         OR NEW.answered_at IS DISTINCT FROM OLD.answered_at)
    THEN
        RAISE EXCEPTION 'E2: a call''s outcome is set once';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER calls_guard
BEFORE UPDATE OR DELETE ON calls
FOR EACH ROW EXECUTE FUNCTION calls_guard();

-- E3: a sealed or interrupted recording never changes; what identifies a
-- recording never changes at all; no DELETE (E5).
CREATE FUNCTION recordings_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'E5: recordings are never deleted';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.call_id IS DISTINCT FROM OLD.call_id
       OR NEW.started_at IS DISTINCT FROM OLD.started_at
    THEN
        RAISE EXCEPTION 'E3: a recording''s identity never changes';
    END IF;
    IF OLD.state <> 'recording'
       AND (NEW.path IS DISTINCT FROM OLD.path
         OR NEW.state IS DISTINCT FROM OLD.state
         OR NEW.sha256 IS DISTINCT FROM OLD.sha256
         OR NEW.bytes IS DISTINCT FROM OLD.bytes
         OR NEW.duration_ms IS DISTINCT FROM OLD.duration_ms
         OR NEW.sealed_at IS DISTINCT FROM OLD.sealed_at
         OR NEW.agent_packets IS DISTINCT FROM OLD.agent_packets
         OR NEW.agent_lost IS DISTINCT FROM OLD.agent_lost
         OR NEW.agent_late IS DISTINCT FROM OLD.agent_late
         OR NEW.agent_gaps IS DISTINCT FROM OLD.agent_gaps
         OR NEW.client_packets IS DISTINCT FROM OLD.client_packets
         OR NEW.client_lost IS DISTINCT FROM OLD.client_lost
         OR NEW.client_late IS DISTINCT FROM OLD.client_late
         OR NEW.client_gaps IS DISTINCT FROM OLD.client_gaps)
    THEN
        RAISE EXCEPTION 'E3: a sealed or interrupted recording never changes';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER recordings_guard
BEFORE UPDATE OR DELETE ON recordings
FOR EACH ROW EXECUTE FUNCTION recordings_guard();

-- TRUNCATE skips row triggers: refuse it outright (E5).
CREATE FUNCTION never_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'E5: % is never truncated', TG_TABLE_NAME;
END
$$;

CREATE TRIGGER calls_never_truncated
BEFORE TRUNCATE ON calls
FOR EACH STATEMENT EXECUTE FUNCTION never_truncate();

CREATE TRIGGER recordings_never_truncated
BEFORE TRUNCATE ON recordings
FOR EACH STATEMENT EXECUTE FUNCTION never_truncate();
