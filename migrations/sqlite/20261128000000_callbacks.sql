-- Callback management (issue 5): the facts imported from the brokerage's
-- systems (clients, staff, events), the tasks the rules plan (task_batches,
-- tasks) and what agents and reviewers write (callback_records,
-- follow_ups). Written only through src/store/callbacks.rs; the rules below
-- are defence in depth. The PostgreSQL twin is
-- migrations/postgres/20261128000000_callbacks.sql (same names, same rules).
-- Conventions as in 20261127000000_calls_and_recordings; dates are TEXT
-- 'YYYY-MM-DD', money INTEGER fen (0.01 CNY), flags INTEGER 0/1.

-- Facts: upserted by natural key on every import (re-importing a file
-- changes nothing); records and tasks keep their own copies of what they
-- need, so facts may be corrected.
CREATE TABLE clients (
    client_id               TEXT PRIMARY KEY NOT NULL CHECK (length(client_id) > 0),
    name                    TEXT NOT NULL,
    phone                   TEXT NOT NULL,
    branch                  TEXT NOT NULL,
    opened_on               TEXT NOT NULL CHECK (opened_on = date(opened_on)),
    introducer_id           TEXT,
    broker_introduced       INTEGER NOT NULL CHECK (broker_introduced IN (0, 1)),
    assets_fen              INTEGER,
    yearly_commission_fen   INTEGER,
    monthly_turnover_fen    INTEGER,
    last_trade_on           TEXT CHECK (last_trade_on = date(last_trade_on)),
    imported_at             TEXT NOT NULL,
    updated_at              TEXT NOT NULL
) STRICT;

CREATE INDEX clients_by_introducer ON clients (introducer_id);
CREATE INDEX clients_by_opening ON clients (opened_on);

CREATE TABLE staff (
    staff_id        TEXT PRIMARY KEY NOT NULL CHECK (length(staff_id) > 0),
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN
                    ('sales', 'service', 'compliance', 'reviewer', 'supervisor', 'broker')),
    branch          TEXT NOT NULL,
    manager_id      TEXT,
    sip_uri         TEXT,
    active          INTEGER NOT NULL CHECK (active IN (0, 1)),
    left_on         TEXT CHECK (left_on = date(left_on)),
    imported_at     TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;

CREATE TABLE events (
    event_id        TEXT PRIMARY KEY NOT NULL CHECK (length(event_id) > 0),
    client_id       TEXT,
    kind            TEXT NOT NULL CHECK (kind IN ('account_opened', 'asset_inflow', 'asset_outflow',
                    'turnover', 'complaint', 'abnormal_trading', 'special_order', 'staff_departure')),
    occurred_on     TEXT NOT NULL CHECK (occurred_on = date(occurred_on)),
    amount_fen      INTEGER,
    staff_id        TEXT,
    note            TEXT,
    imported_at     TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;

CREATE INDEX events_by_kind ON events (kind, occurred_on);

-- A batch: the tasks of one rule for one period. Sampled rules keep the
-- seed here, written once, so that an inspector can re-derive the sample
-- (src/domain/sample.rs describes the algorithm).
CREATE TABLE task_batches (
    id              TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36 AND id NOT GLOB '*[^0-9a-f-]*'),
    kind            TEXT NOT NULL,
    period          TEXT NOT NULL,
    seed            TEXT CHECK (length(seed) = 64 AND seed NOT GLOB '*[^0-9a-f]*'),
    ratio           REAL CHECK (ratio > 0 AND ratio <= 1),
    population      INTEGER NOT NULL DEFAULT 0 CHECK (population >= 0),
    selected        INTEGER NOT NULL DEFAULT 0 CHECK (selected >= 0),
    created_at      TEXT NOT NULL CHECK (created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at)),
    planned_at      TEXT NOT NULL CHECK (planned_at = strftime('%Y-%m-%dT%H:%M:%fZ', planned_at)),
    CONSTRAINT task_batches_one_per_period UNIQUE (kind, period)
) STRICT;

CREATE TRIGGER task_batches_written_once
BEFORE UPDATE ON task_batches
FOR EACH ROW
WHEN NEW.id IS NOT OLD.id OR NEW.kind IS NOT OLD.kind OR NEW.period IS NOT OLD.period
  OR NEW.seed IS NOT OLD.seed OR NEW.ratio IS NOT OLD.ratio OR NEW.created_at IS NOT OLD.created_at
BEGIN
    SELECT RAISE(ABORT, 'a batch''s identity and seed are written once');
END;

CREATE TRIGGER task_batches_never_deleted
BEFORE DELETE ON task_batches
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'task batches are never deleted');
END;

-- A callback task. idempotency_key is unique: planning the same period
-- twice inserts nothing new. What the rules decided (kind, client, due
-- date, reason, batch) is written once; the dialer's columns (state,
-- attempts, next_attempt_at, lease_owner, lease_until, assigned_agent)
-- move. state: open → done (a record was submitted) | closed (given up,
-- e.g. unreachable after every attempt).
CREATE TABLE tasks (
    id              TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36 AND id NOT GLOB '*[^0-9a-f-]*'),
    idempotency_key TEXT NOT NULL UNIQUE,
    batch_id        TEXT NOT NULL REFERENCES task_batches (id),
    kind            TEXT NOT NULL CHECK (kind IN ('new_account', 'important', 'potential_risk',
                    'complaint', 'abnormal_trading', 'departed_staff', 'dormant', 'special', 'existing')),
    client_id       TEXT NOT NULL,
    branch          TEXT NOT NULL,
    due_on          TEXT NOT NULL CHECK (due_on = date(due_on)),
    priority        INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 9),
    retention_kind  TEXT NOT NULL,
    compliance      INTEGER NOT NULL CHECK (compliance IN (0, 1)),
    reason          TEXT NOT NULL CHECK (json_valid(reason)),
    state           TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'closed')),
    outcome         TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT CHECK (next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', next_attempt_at)),
    lease_owner     TEXT,
    lease_until     TEXT CHECK (lease_until = strftime('%Y-%m-%dT%H:%M:%fZ', lease_until)),
    assigned_agent  TEXT,
    created_at      TEXT NOT NULL CHECK (created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at)),
    closed_at       TEXT CHECK (closed_at = strftime('%Y-%m-%dT%H:%M:%fZ', closed_at)),
    CONSTRAINT tasks_closed_complete CHECK ((state = 'open') = (closed_at IS NULL))
) STRICT;

-- the dialer's queue: open tasks by due date and priority
CREATE INDEX tasks_queue ON tasks (due_on, priority) WHERE state = 'open';
CREATE INDEX tasks_by_client ON tasks (client_id);
CREATE INDEX tasks_by_batch ON tasks (batch_id);

CREATE TRIGGER tasks_written_once
BEFORE UPDATE ON tasks
FOR EACH ROW
WHEN NEW.id IS NOT OLD.id OR NEW.idempotency_key IS NOT OLD.idempotency_key
  OR NEW.batch_id IS NOT OLD.batch_id OR NEW.kind IS NOT OLD.kind OR NEW.client_id IS NOT OLD.client_id
  OR NEW.branch IS NOT OLD.branch OR NEW.due_on IS NOT OLD.due_on OR NEW.priority IS NOT OLD.priority
  OR NEW.retention_kind IS NOT OLD.retention_kind OR NEW.compliance IS NOT OLD.compliance
  OR NEW.reason IS NOT OLD.reason OR NEW.created_at IS NOT OLD.created_at
  OR (OLD.state <> 'open' AND (NEW.state IS NOT OLD.state OR NEW.outcome IS NOT OLD.outcome
                               OR NEW.closed_at IS NOT OLD.closed_at))
BEGIN
    SELECT RAISE(ABORT, 'what the rules decided about a task is written once; a finished task stays finished');
END;

CREATE TRIGGER tasks_never_deleted
BEFORE DELETE ON tasks
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'tasks are never deleted');
END;

-- A callback record (回访记录): forms 附表1-3. One per task. submitted →
-- reviewed, by a reviewer who is not the author (相互制衡). Never changes
-- but for its review, never deleted.
CREATE TABLE callback_records (
    id              TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36 AND id NOT GLOB '*[^0-9a-f-]*'),
    task_id         TEXT NOT NULL UNIQUE REFERENCES tasks (id),
    client_id       TEXT NOT NULL,
    branch          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    form            TEXT NOT NULL CHECK (form IN ('new_account', 'existing', 'special')),
    agent_id        TEXT NOT NULL CHECK (length(agent_id) > 0),
    method          TEXT NOT NULL CHECK (method IN
                    ('phone', 'face_to_face', 'letter', 'email', 'questionnaire', 'sms')),
    call_id         TEXT,
    called_on       TEXT NOT NULL CHECK (called_on = date(called_on)),
    outcome         TEXT NOT NULL CHECK (outcome IN ('reached', 'unreachable', 'refused', 'wrong_number')),
    answers         TEXT NOT NULL CHECK (json_valid(answers)),
    problems        TEXT,
    feedback_due_on TEXT CHECK (feedback_due_on = date(feedback_due_on)),
    state           TEXT NOT NULL DEFAULT 'submitted' CHECK (state IN ('submitted', 'reviewed')),
    submitted_at    TEXT NOT NULL CHECK (submitted_at = strftime('%Y-%m-%dT%H:%M:%fZ', submitted_at)),
    reviewer_id     TEXT,
    verdict         TEXT CHECK (verdict IN ('approved', 'returned')),
    review_note     TEXT,
    reviewed_at     TEXT CHECK (reviewed_at = strftime('%Y-%m-%dT%H:%M:%fZ', reviewed_at)),
    CONSTRAINT callback_records_review_complete CHECK (
            (state = 'reviewed') = (reviewer_id IS NOT NULL)
        AND (state = 'reviewed') = (verdict IS NOT NULL)
        AND (state = 'reviewed') = (reviewed_at IS NOT NULL)),
    CONSTRAINT callback_records_reviewer_not_author CHECK (reviewer_id IS NULL OR reviewer_id <> agent_id)
) STRICT;

CREATE INDEX callback_records_by_day ON callback_records (called_on);

CREATE TRIGGER callback_records_written_once
BEFORE UPDATE ON callback_records
FOR EACH ROW
WHEN NEW.id IS NOT OLD.id OR NEW.task_id IS NOT OLD.task_id OR NEW.client_id IS NOT OLD.client_id
  OR NEW.branch IS NOT OLD.branch OR NEW.kind IS NOT OLD.kind OR NEW.form IS NOT OLD.form
  OR NEW.agent_id IS NOT OLD.agent_id OR NEW.method IS NOT OLD.method OR NEW.call_id IS NOT OLD.call_id
  OR NEW.called_on IS NOT OLD.called_on OR NEW.outcome IS NOT OLD.outcome OR NEW.answers IS NOT OLD.answers
  OR NEW.problems IS NOT OLD.problems OR NEW.feedback_due_on IS NOT OLD.feedback_due_on
  OR NEW.submitted_at IS NOT OLD.submitted_at OR OLD.state = 'reviewed'
BEGIN
    SELECT RAISE(ABORT, 'a callback record never changes but for its one review');
END;

CREATE TRIGGER callback_records_never_deleted
BEFORE DELETE ON callback_records
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'callback records are never deleted');
END;

-- A follow-up of the problems a record found: the department answers by
-- answer_due_on, the client has the final answer by resolve_due_on
-- (business days). open → answered → resolved.
CREATE TABLE follow_ups (
    id              TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36 AND id NOT GLOB '*[^0-9a-f-]*'),
    record_id       TEXT NOT NULL UNIQUE REFERENCES callback_records (id),
    client_id       TEXT NOT NULL,
    branch          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    problems        TEXT NOT NULL,
    opened_on       TEXT NOT NULL CHECK (opened_on = date(opened_on)),
    answer_due_on   TEXT NOT NULL CHECK (answer_due_on = date(answer_due_on)),
    resolve_due_on  TEXT NOT NULL CHECK (resolve_due_on = date(resolve_due_on)),
    state           TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'answered', 'resolved')),
    answered_on     TEXT CHECK (answered_on = date(answered_on)),
    resolved_on     TEXT CHECK (resolved_on = date(resolved_on)),
    note            TEXT,
    CONSTRAINT follow_ups_dates CHECK (answer_due_on <= resolve_due_on AND opened_on <= answer_due_on),
    CONSTRAINT follow_ups_state_complete CHECK (
            (state = 'open') = (answered_on IS NULL)
        AND (state = 'resolved') = (resolved_on IS NOT NULL))
) STRICT;

CREATE TRIGGER follow_ups_move_forward
BEFORE UPDATE ON follow_ups
FOR EACH ROW
WHEN NEW.id IS NOT OLD.id OR NEW.record_id IS NOT OLD.record_id OR NEW.problems IS NOT OLD.problems
  OR NEW.opened_on IS NOT OLD.opened_on OR NEW.answer_due_on IS NOT OLD.answer_due_on
  OR NEW.resolve_due_on IS NOT OLD.resolve_due_on OR OLD.state = 'resolved'
  OR (OLD.answered_on IS NOT NULL AND NEW.answered_on IS NOT OLD.answered_on)
BEGIN
    SELECT RAISE(ABORT, 'a follow-up only moves forward');
END;

CREATE TRIGGER follow_ups_never_deleted
BEFORE DELETE ON follow_ups
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'follow-ups are never deleted');
END;
