-- The agent console (issue 13): the event feed behind /ws/agent, the
-- free-text notes of a callback record and two more client facts. The feed
-- is written only through
-- src/store/feed.rs. The SQLite twin is
-- migrations/sqlite/20261207100000_feed.sql (same names, same rules).
--
-- The feed is not evidence (the audit chain is): it is the short log from
-- which a reconnecting page gets what it missed, and which other instances
-- read when told of a new event (NOTIFY huifang_feed). Events older than a
-- day are pruned.

-- The last sequence number given to each agent's events: incremented in
-- the transaction that appends an event, so that numbers increase per agent
-- whichever instance writes.
CREATE TABLE feed_seq (
    agent_id    text PRIMARY KEY CHECK (length(agent_id) > 0),
    seq         bigint NOT NULL CHECK (seq > 0)
);

CREATE TABLE feed_events (
    id          bigserial PRIMARY KEY,
    agent_id    text NOT NULL,
    seq         bigint NOT NULL,
    at          timestamptz NOT NULL,
    type        text NOT NULL CHECK (length(type) > 0),
    instance    text NOT NULL,
    body        jsonb NOT NULL,
    UNIQUE (agent_id, seq)
);

CREATE INDEX feed_events_by_time ON feed_events (at);

-- Notes the agent wrote on the record (备注), apart from the problems found.
ALTER TABLE callback_records ADD COLUMN notes text;

CREATE FUNCTION callback_records_notes_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.notes IS DISTINCT FROM OLD.notes THEN
        RAISE EXCEPTION 'a callback record never changes but for its one review';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER callback_records_notes_written_once BEFORE UPDATE ON callback_records
FOR EACH ROW EXECUTE FUNCTION callback_records_notes_guard();

-- The client facts the agent's screen-pop shows, when the client list has
-- them: the ID number (证件号码; personal data, shown masked) and the risk
-- level (风险等级).
ALTER TABLE clients ADD COLUMN id_number text;
ALTER TABLE clients ADD COLUMN risk_level text CHECK (risk_level IN ('C1', 'C2', 'C3', 'C4', 'C5'));
