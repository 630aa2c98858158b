-- The web door (issue 12): people who log in, their browser sessions and
-- API tokens, failed-login throttling, and the agent who took each call.
-- Written only through src/store/users.rs. The PostgreSQL twin is
-- migrations/postgres/20261207000000_web.sql (same names, same rules).
-- Conventions as in 20261127000000_calls_and_recordings.

-- The agent (a staff id) who took a call: written once, with the row.
ALTER TABLE calls ADD COLUMN agent_id TEXT;

CREATE TRIGGER calls_agent_written_once
BEFORE UPDATE ON calls
FOR EACH ROW
WHEN NEW.agent_id IS NOT OLD.agent_id
BEGIN
    SELECT RAISE(ABORT, 'E2: a call''s identity and first times are written once');
END;

CREATE INDEX calls_by_agent ON calls (agent_id, started_at) WHERE agent_id IS NOT NULL;

-- A person who logs in; roles and branches are space-separated sorted
-- words. Never deleted: a user who leaves is disabled.
CREATE TABLE users (
    login               TEXT PRIMARY KEY NOT NULL
        CHECK (length(login) BETWEEN 1 AND 64 AND login NOT GLOB '*[^a-z0-9._@-]*'
               AND substr(login, 1, 1) GLOB '[a-z0-9]'),
    password_hash       TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    roles               TEXT NOT NULL CHECK (length(roles) > 0),
    staff_id            TEXT,
    branches            TEXT NOT NULL DEFAULT '',
    created_at          TEXT NOT NULL CHECK (created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at)),
    password_changed_at TEXT NOT NULL
        CHECK (password_changed_at = strftime('%Y-%m-%dT%H:%M:%fZ', password_changed_at)),
    disabled_at         TEXT CHECK (disabled_at = strftime('%Y-%m-%dT%H:%M:%fZ', disabled_at))
) STRICT;

CREATE TRIGGER users_never_deleted
BEFORE DELETE ON users
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'users are never deleted (disable them)');
END;

CREATE TRIGGER users_login_never_changes
BEFORE UPDATE ON users
FOR EACH ROW
WHEN NEW.login IS NOT OLD.login OR NEW.created_at IS NOT OLD.created_at
BEGIN
    SELECT RAISE(ABORT, 'a user''s login never changes');
END;

-- A browser session, stored as the SHA-256 of its cookie.
CREATE TABLE web_sessions (
    id_hash         TEXT PRIMARY KEY NOT NULL
        CHECK (length(id_hash) = 64 AND id_hash NOT GLOB '*[^0-9a-f]*'),
    login           TEXT NOT NULL REFERENCES users (login),
    created_at      TEXT NOT NULL CHECK (created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at)),
    last_seen_at    TEXT NOT NULL CHECK (last_seen_at = strftime('%Y-%m-%dT%H:%M:%fZ', last_seen_at)),
    expires_at      TEXT NOT NULL CHECK (expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', expires_at)),
    ended_at        TEXT CHECK (ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', ended_at)),
    ended_why       TEXT,
    address         TEXT,
    CONSTRAINT web_sessions_end_complete CHECK ((ended_at IS NULL) = (ended_why IS NULL))
) STRICT;

CREATE INDEX web_sessions_open_by_login ON web_sessions (login) WHERE ended_at IS NULL;

-- An API token, stored as its SHA-256, with its own roles and expiry.
CREATE TABLE api_tokens (
    id              TEXT PRIMARY KEY NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE
        CHECK (length(token_hash) = 64 AND token_hash NOT GLOB '*[^0-9a-f]*'),
    login           TEXT NOT NULL REFERENCES users (login),
    roles           TEXT NOT NULL CHECK (length(roles) > 0),
    label           TEXT,
    created_at      TEXT NOT NULL CHECK (created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at)),
    expires_at      TEXT NOT NULL CHECK (expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', expires_at)),
    revoked_at      TEXT CHECK (revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', revoked_at)),
    last_used_at    TEXT CHECK (last_used_at = strftime('%Y-%m-%dT%H:%M:%fZ', last_used_at))
) STRICT;

CREATE INDEX api_tokens_by_login ON api_tokens (login);

-- Failed logins per typed login (known or not).
CREATE TABLE login_throttle (
    login               TEXT PRIMARY KEY NOT NULL,
    failures            INTEGER NOT NULL CHECK (failures >= 0),
    window_started_at   TEXT NOT NULL
        CHECK (window_started_at = strftime('%Y-%m-%dT%H:%M:%fZ', window_started_at)),
    locked_until        TEXT CHECK (locked_until = strftime('%Y-%m-%dT%H:%M:%fZ', locked_until))
) STRICT;
