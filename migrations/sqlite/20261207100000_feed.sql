-- The agent console (issue 13): the event feed behind /ws/agent, the
-- free-text notes of a callback record and two more client facts. The feed
-- is written only through
-- src/store/feed.rs. The PostgreSQL twin is
-- migrations/postgres/20261207100000_feed.sql (same names, same rules).
--
-- The feed is not evidence (the audit chain is): it is the short log from
-- which a reconnecting page gets what it missed, and which other instances
-- read when told of a new event. Events older than a day are pruned.

-- The last sequence number given to each agent's events: incremented in
-- the transaction that appends an event, so that numbers increase per agent
-- whichever instance writes.
CREATE TABLE feed_seq (
    agent_id    TEXT PRIMARY KEY NOT NULL CHECK (length(agent_id) > 0),
    seq         INTEGER NOT NULL CHECK (seq > 0)
) STRICT;

CREATE TABLE feed_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id    TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL CHECK (at = strftime('%Y-%m-%dT%H:%M:%fZ', at)),
    type        TEXT NOT NULL CHECK (length(type) > 0),
    instance    TEXT NOT NULL,
    body        TEXT NOT NULL CHECK (json_valid(body)),
    UNIQUE (agent_id, seq)
) STRICT;

CREATE INDEX feed_events_by_time ON feed_events (at);

-- Notes the agent wrote on the record (备注), apart from the problems found.
ALTER TABLE callback_records ADD COLUMN notes TEXT;

CREATE TRIGGER callback_records_notes_written_once
BEFORE UPDATE ON callback_records
FOR EACH ROW
WHEN NEW.notes IS NOT OLD.notes
BEGIN
    SELECT RAISE(ABORT, 'a callback record never changes but for its one review');
END;

-- The client facts the agent's screen-pop shows, when the client list has
-- them: the ID number (证件号码; personal data, shown masked) and the risk
-- level (风险等级).
ALTER TABLE clients ADD COLUMN id_number TEXT;
ALTER TABLE clients ADD COLUMN risk_level TEXT CHECK (risk_level IN ('C1', 'C2', 'C3', 'C4', 'C5'));
