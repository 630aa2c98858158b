-- Callback management (issue 5): the facts imported from the brokerage's
-- systems (clients, staff, events), the tasks the rules plan (task_batches,
-- tasks) and what agents and reviewers write (callback_records,
-- follow_ups). Written only through src/store/callbacks.rs; the rules below
-- are defence in depth. The SQLite twin is
-- migrations/sqlite/20261128000000_callbacks.sql (same names, same rules).
-- Conventions as in 20261127000000_calls_and_recordings; dates are date,
-- money bigint fen (0.01 CNY), JSON jsonb.

CREATE TABLE clients (
    client_id               text PRIMARY KEY CHECK (length(client_id) > 0),
    name                    text NOT NULL,
    phone                   text NOT NULL,
    branch                  text NOT NULL,
    opened_on               date NOT NULL,
    introducer_id           text,
    broker_introduced       boolean NOT NULL,
    assets_fen              bigint,
    yearly_commission_fen   bigint,
    monthly_turnover_fen    bigint,
    last_trade_on           date,
    imported_at             timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL
);

CREATE INDEX clients_by_introducer ON clients (introducer_id);
CREATE INDEX clients_by_opening ON clients (opened_on);

CREATE TABLE staff (
    staff_id        text PRIMARY KEY CHECK (length(staff_id) > 0),
    name            text NOT NULL,
    role            text NOT NULL CHECK (role IN
                    ('sales', 'service', 'compliance', 'reviewer', 'supervisor', 'broker')),
    branch          text NOT NULL,
    manager_id      text,
    sip_uri         text,
    active          boolean NOT NULL,
    left_on         date,
    imported_at     timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE events (
    event_id        text PRIMARY KEY CHECK (length(event_id) > 0),
    client_id       text,
    kind            text NOT NULL CHECK (kind IN ('account_opened', 'asset_inflow', 'asset_outflow',
                    'turnover', 'complaint', 'abnormal_trading', 'special_order', 'staff_departure')),
    occurred_on     date NOT NULL,
    amount_fen      bigint,
    staff_id        text,
    note            text,
    imported_at     timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE INDEX events_by_kind ON events (kind, occurred_on);

CREATE TABLE task_batches (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL,
    period          text NOT NULL,
    seed            text CHECK (seed ~ '^[0-9a-f]{64}$'),
    ratio           double precision CHECK (ratio > 0 AND ratio <= 1),
    population      bigint NOT NULL DEFAULT 0 CHECK (population >= 0),
    selected        bigint NOT NULL DEFAULT 0 CHECK (selected >= 0),
    created_at      timestamptz NOT NULL,
    planned_at      timestamptz NOT NULL,
    CONSTRAINT task_batches_one_per_period UNIQUE (kind, period)
);

CREATE TABLE tasks (
    id              uuid PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    batch_id        uuid NOT NULL REFERENCES task_batches (id),
    kind            text NOT NULL CHECK (kind IN ('new_account', 'important', 'potential_risk',
                    'complaint', 'abnormal_trading', 'departed_staff', 'dormant', 'special', 'existing')),
    client_id       text NOT NULL,
    branch          text NOT NULL,
    due_on          date NOT NULL,
    priority        bigint NOT NULL CHECK (priority BETWEEN 1 AND 9),
    retention_kind  text NOT NULL,
    compliance      boolean NOT NULL,
    reason          jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'closed')),
    outcome         text,
    attempts        bigint NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz,
    lease_owner     text,
    lease_until     timestamptz,
    assigned_agent  text,
    created_at      timestamptz NOT NULL,
    closed_at       timestamptz,
    CONSTRAINT tasks_closed_complete CHECK ((state = 'open') = (closed_at IS NULL))
);

CREATE INDEX tasks_queue ON tasks (due_on, priority) WHERE state = 'open';
CREATE INDEX tasks_by_client ON tasks (client_id);
CREATE INDEX tasks_by_batch ON tasks (batch_id);

CREATE TABLE callback_records (
    id              uuid PRIMARY KEY,
    task_id         uuid NOT NULL UNIQUE REFERENCES tasks (id),
    client_id       text NOT NULL,
    branch          text NOT NULL,
    kind            text NOT NULL,
    form            text NOT NULL CHECK (form IN ('new_account', 'existing', 'special')),
    agent_id        text NOT NULL CHECK (length(agent_id) > 0),
    method          text NOT NULL CHECK (method IN
                    ('phone', 'face_to_face', 'letter', 'email', 'questionnaire', 'sms')),
    call_id         text,
    called_on       date NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('reached', 'unreachable', 'refused', 'wrong_number')),
    answers         jsonb NOT NULL,
    problems        text,
    feedback_due_on date,
    state           text NOT NULL DEFAULT 'submitted' CHECK (state IN ('submitted', 'reviewed')),
    submitted_at    timestamptz NOT NULL,
    reviewer_id     text,
    verdict         text CHECK (verdict IN ('approved', 'returned')),
    review_note     text,
    reviewed_at     timestamptz,
    CONSTRAINT callback_records_review_complete CHECK (
            (state = 'reviewed') = (reviewer_id IS NOT NULL)
        AND (state = 'reviewed') = (verdict IS NOT NULL)
        AND (state = 'reviewed') = (reviewed_at IS NOT NULL)),
    CONSTRAINT callback_records_reviewer_not_author CHECK (reviewer_id IS NULL OR reviewer_id <> agent_id)
);

CREATE INDEX callback_records_by_day ON callback_records (called_on);

CREATE TABLE follow_ups (
    id              uuid PRIMARY KEY,
    record_id       uuid NOT NULL UNIQUE REFERENCES callback_records (id),
    client_id       text NOT NULL,
    branch          text NOT NULL,
    kind            text NOT NULL,
    problems        text NOT NULL,
    opened_on       date NOT NULL,
    answer_due_on   date NOT NULL,
    resolve_due_on  date NOT NULL,
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'answered', 'resolved')),
    answered_on     date,
    resolved_on     date,
    note            text,
    CONSTRAINT follow_ups_dates CHECK (answer_due_on <= resolve_due_on AND opened_on <= answer_due_on),
    CONSTRAINT follow_ups_state_complete CHECK (
            (state = 'open') = (answered_on IS NULL)
        AND (state = 'resolved') = (resolved_on IS NOT NULL))
);

-- What was decided is written once; states move forward; nothing is deleted.
CREATE FUNCTION callbacks_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME;
    END IF;
    IF TG_TABLE_NAME = 'task_batches' THEN
        IF NEW.id IS DISTINCT FROM OLD.id OR NEW.kind IS DISTINCT FROM OLD.kind
           OR NEW.period IS DISTINCT FROM OLD.period OR NEW.seed IS DISTINCT FROM OLD.seed
           OR NEW.ratio IS DISTINCT FROM OLD.ratio OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
            RAISE EXCEPTION 'a batch''s identity and seed are written once';
        END IF;
    ELSIF TG_TABLE_NAME = 'tasks' THEN
        IF NEW.id IS DISTINCT FROM OLD.id OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key
           OR NEW.batch_id IS DISTINCT FROM OLD.batch_id OR NEW.kind IS DISTINCT FROM OLD.kind
           OR NEW.client_id IS DISTINCT FROM OLD.client_id OR NEW.branch IS DISTINCT FROM OLD.branch
           OR NEW.due_on IS DISTINCT FROM OLD.due_on OR NEW.priority IS DISTINCT FROM OLD.priority
           OR NEW.retention_kind IS DISTINCT FROM OLD.retention_kind
           OR NEW.compliance IS DISTINCT FROM OLD.compliance OR NEW.reason IS DISTINCT FROM OLD.reason
           OR NEW.created_at IS DISTINCT FROM OLD.created_at
           OR (OLD.state <> 'open' AND (NEW.state IS DISTINCT FROM OLD.state
               OR NEW.outcome IS DISTINCT FROM OLD.outcome OR NEW.closed_at IS DISTINCT FROM OLD.closed_at)) THEN
            RAISE EXCEPTION 'what the rules decided about a task is written once; a finished task stays finished';
        END IF;
    ELSIF TG_TABLE_NAME = 'callback_records' THEN
        IF NEW.id IS DISTINCT FROM OLD.id OR NEW.task_id IS DISTINCT FROM OLD.task_id
           OR NEW.client_id IS DISTINCT FROM OLD.client_id OR NEW.branch IS DISTINCT FROM OLD.branch
           OR NEW.kind IS DISTINCT FROM OLD.kind OR NEW.form IS DISTINCT FROM OLD.form
           OR NEW.agent_id IS DISTINCT FROM OLD.agent_id OR NEW.method IS DISTINCT FROM OLD.method
           OR NEW.call_id IS DISTINCT FROM OLD.call_id OR NEW.called_on IS DISTINCT FROM OLD.called_on
           OR NEW.outcome IS DISTINCT FROM OLD.outcome OR NEW.answers IS DISTINCT FROM OLD.answers
           OR NEW.problems IS DISTINCT FROM OLD.problems
           OR NEW.feedback_due_on IS DISTINCT FROM OLD.feedback_due_on
           OR NEW.submitted_at IS DISTINCT FROM OLD.submitted_at OR OLD.state = 'reviewed' THEN
            RAISE EXCEPTION 'a callback record never changes but for its one review';
        END IF;
    ELSIF TG_TABLE_NAME = 'follow_ups' THEN
        IF NEW.id IS DISTINCT FROM OLD.id OR NEW.record_id IS DISTINCT FROM OLD.record_id
           OR NEW.problems IS DISTINCT FROM OLD.problems OR NEW.opened_on IS DISTINCT FROM OLD.opened_on
           OR NEW.answer_due_on IS DISTINCT FROM OLD.answer_due_on
           OR NEW.resolve_due_on IS DISTINCT FROM OLD.resolve_due_on OR OLD.state = 'resolved'
           OR (OLD.answered_on IS NOT NULL AND NEW.answered_on IS DISTINCT FROM OLD.answered_on) THEN
            RAISE EXCEPTION 'a follow-up only moves forward';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER task_batches_guard BEFORE UPDATE OR DELETE ON task_batches
FOR EACH ROW EXECUTE FUNCTION callbacks_guard();
CREATE TRIGGER tasks_guard BEFORE UPDATE OR DELETE ON tasks
FOR EACH ROW EXECUTE FUNCTION callbacks_guard();
CREATE TRIGGER callback_records_guard BEFORE UPDATE OR DELETE ON callback_records
FOR EACH ROW EXECUTE FUNCTION callbacks_guard();
CREATE TRIGGER follow_ups_guard BEFORE UPDATE OR DELETE ON follow_ups
FOR EACH ROW EXECUTE FUNCTION callbacks_guard();

CREATE TRIGGER task_batches_never_truncated BEFORE TRUNCATE ON task_batches
FOR EACH STATEMENT EXECUTE FUNCTION never_truncate();
CREATE TRIGGER tasks_never_truncated BEFORE TRUNCATE ON tasks
FOR EACH STATEMENT EXECUTE FUNCTION never_truncate();
CREATE TRIGGER callback_records_never_truncated BEFORE TRUNCATE ON callback_records
FOR EACH STATEMENT EXECUTE FUNCTION never_truncate();
CREATE TRIGGER follow_ups_never_truncated BEFORE TRUNCATE ON follow_ups
FOR EACH STATEMENT EXECUTE FUNCTION never_truncate();
