-- The web door (issue 12): people who log in, their browser sessions and
-- API tokens, failed-login throttling, and the agent who took each call.
-- Written only through src/store/users.rs. The SQLite twin is
-- migrations/sqlite/20261207000000_web.sql (same names, same rules).

-- The agent (a staff id) who took a call: written once, with the row, so
-- an agent's own calls can be listed and a supervisor's branch checked.
ALTER TABLE calls ADD COLUMN agent_id text;

CREATE FUNCTION calls_agent_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.agent_id IS DISTINCT FROM OLD.agent_id THEN
        RAISE EXCEPTION 'E2: a call''s identity and first times are written once';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER calls_agent_guard
BEFORE UPDATE ON calls
FOR EACH ROW EXECUTE FUNCTION calls_agent_guard();

CREATE INDEX calls_by_agent ON calls (agent_id, started_at) WHERE agent_id IS NOT NULL;

-- A person who logs in. Roles and branches are space-separated sorted
-- words (few, and read together with the row). Never deleted: a user who
-- leaves is disabled, and every audit event keeps naming them.
CREATE TABLE users (
    login               text PRIMARY KEY CHECK (login ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
    password_hash       text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    roles               text NOT NULL CHECK (length(roles) > 0),
    staff_id            text,
    branches            text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL,
    password_changed_at timestamptz NOT NULL,
    disabled_at         timestamptz
);

CREATE FUNCTION users_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'users are never deleted (disable them)';
    END IF;
    IF NEW.login IS DISTINCT FROM OLD.login OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'a user''s login never changes';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_guard
BEFORE UPDATE OR DELETE ON users
FOR EACH ROW EXECUTE FUNCTION users_guard();

-- A browser session: the cookie's value is never stored, only its
-- SHA-256. Valid while not ended, seen within the idle timeout and before
-- its absolute expiry; any instance on this database accepts it.
CREATE TABLE web_sessions (
    id_hash         text PRIMARY KEY CHECK (id_hash ~ '^[0-9a-f]{64}$'),
    login           text NOT NULL REFERENCES users (login),
    created_at      timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    ended_why       text,
    address         text,
    CONSTRAINT web_sessions_end_complete CHECK ((ended_at IS NULL) = (ended_why IS NULL))
);

CREATE INDEX web_sessions_open_by_login ON web_sessions (login) WHERE ended_at IS NULL;

-- An API token (CRMs, Prometheus): stored as its SHA-256, with its own
-- roles (never more than its user's), an expiry, and a revocation.
CREATE TABLE api_tokens (
    id              uuid PRIMARY KEY,
    token_hash      text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    login           text NOT NULL REFERENCES users (login),
    roles           text NOT NULL CHECK (length(roles) > 0),
    label           text,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    last_used_at    timestamptz
);

CREATE INDEX api_tokens_by_login ON api_tokens (login);

-- Failed logins per typed login (known or not: the answer must not tell
-- them apart): failures in the current window and the lock, if any.
CREATE TABLE login_throttle (
    login               text PRIMARY KEY,
    failures            bigint NOT NULL CHECK (failures >= 0),
    window_started_at   timestamptz NOT NULL,
    locked_until        timestamptz
);
