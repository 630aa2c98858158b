-- The archive (issue 4): the callback kind of a call (it decides the
-- retention) and, per recording, where the archive holds it and since when.
-- The evidence columns of the first migration keep their rules (E2, E3);
-- the archive columns are written once when the upload is verified, the
-- spool removal once after that. The SQLite twin is
-- migrations/sqlite/20261127010000_archive.sql.

ALTER TABLE calls ADD COLUMN kind text;

ALTER TABLE recordings
    ADD COLUMN archive_key text,
    ADD COLUMN manifest_key text,
    ADD COLUMN object_version text,
    ADD COLUMN manifest_version text,
    ADD COLUMN retain_until timestamptz,
    ADD COLUMN archived_at timestamptz,
    ADD COLUMN upload_attempts bigint NOT NULL DEFAULT 0 CHECK (upload_attempts >= 0),
    ADD COLUMN last_upload_error text,
    ADD COLUMN spool_removed_at timestamptz,
    ADD CONSTRAINT recordings_archived_after_seal CHECK (archived_at IS NULL OR state <> 'recording'),
    ADD CONSTRAINT recordings_archive_complete CHECK (
        archived_at IS NULL
        OR (archive_key IS NOT NULL AND manifest_key IS NOT NULL AND retain_until IS NOT NULL)),
    ADD CONSTRAINT recordings_removed_after_archive CHECK (spool_removed_at IS NULL OR archived_at IS NOT NULL);

-- the uploader's queue: final, not yet archived
CREATE INDEX recordings_pending_upload ON recordings (started_at)
    WHERE archived_at IS NULL AND state <> 'recording';

-- E2: the kind is part of a call's identity, written once with the row.
CREATE FUNCTION calls_kind_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind IS DISTINCT FROM OLD.kind THEN
        RAISE EXCEPTION 'E2: a call''s identity and first times are written once';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER calls_kind_guard
BEFORE UPDATE ON calls
FOR EACH ROW EXECUTE FUNCTION calls_kind_guard();

-- E4/E5: everything about a recording's archived copy is written at once,
-- once; the spool removal once, after it.
CREATE FUNCTION recordings_archive_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (OLD.archived_at IS NOT NULL
        AND (NEW.archived_at IS DISTINCT FROM OLD.archived_at
          OR NEW.archive_key IS DISTINCT FROM OLD.archive_key
          OR NEW.manifest_key IS DISTINCT FROM OLD.manifest_key
          OR NEW.object_version IS DISTINCT FROM OLD.object_version
          OR NEW.manifest_version IS DISTINCT FROM OLD.manifest_version
          OR NEW.retain_until IS DISTINCT FROM OLD.retain_until))
       OR (OLD.spool_removed_at IS NOT NULL AND NEW.spool_removed_at IS DISTINCT FROM OLD.spool_removed_at)
    THEN
        RAISE EXCEPTION 'E4: a recording''s archive record is written once, after its seal';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER recordings_archive_guard
BEFORE UPDATE ON recordings
FOR EACH ROW EXECUTE FUNCTION recordings_archive_guard();
