-- The archive (issue 4): the callback kind of a call (it decides the
-- retention) and, per recording, where the archive holds it and since when.
-- The evidence columns of the first migration keep their rules (E2, E3);
-- the archive columns are written once when the upload is verified, the
-- spool removal once after that. The PostgreSQL twin is
-- migrations/postgres/20261127010000_archive.sql.

ALTER TABLE calls ADD COLUMN kind TEXT;

ALTER TABLE recordings ADD COLUMN archive_key TEXT;
ALTER TABLE recordings ADD COLUMN manifest_key TEXT;
ALTER TABLE recordings ADD COLUMN object_version TEXT;
ALTER TABLE recordings ADD COLUMN manifest_version TEXT;
ALTER TABLE recordings ADD COLUMN retain_until TEXT
    CHECK (retain_until = strftime('%Y-%m-%dT%H:%M:%fZ', retain_until));
ALTER TABLE recordings ADD COLUMN archived_at TEXT
    CHECK (archived_at = strftime('%Y-%m-%dT%H:%M:%fZ', archived_at));
ALTER TABLE recordings ADD COLUMN upload_attempts INTEGER NOT NULL DEFAULT 0
    CHECK (upload_attempts >= 0);
ALTER TABLE recordings ADD COLUMN last_upload_error TEXT;
ALTER TABLE recordings ADD COLUMN spool_removed_at TEXT
    CHECK (spool_removed_at = strftime('%Y-%m-%dT%H:%M:%fZ', spool_removed_at));

-- the uploader's queue: final, not yet archived
CREATE INDEX recordings_pending_upload ON recordings (started_at)
    WHERE archived_at IS NULL AND state <> 'recording';

-- E2: the kind is part of a call's identity, written once with the row.
CREATE TRIGGER calls_kind_written_once
BEFORE UPDATE ON calls
FOR EACH ROW
WHEN NEW.kind IS NOT OLD.kind
BEGIN
    SELECT RAISE(ABORT, 'E2: a call''s identity and first times are written once');
END;

-- E4/E5: only a final recording is archived; everything about its archived
-- copy is written at once, once; the spool file is removed only after that.
CREATE TRIGGER recordings_archived_once
BEFORE UPDATE ON recordings
FOR EACH ROW
WHEN (NEW.archived_at IS NOT NULL AND NEW.state = 'recording')
  OR (NEW.archived_at IS NOT NULL AND (NEW.archive_key IS NULL OR NEW.manifest_key IS NULL
                                       OR NEW.retain_until IS NULL))
  OR (OLD.archived_at IS NOT NULL
      AND (NEW.archived_at IS NOT OLD.archived_at
        OR NEW.archive_key IS NOT OLD.archive_key
        OR NEW.manifest_key IS NOT OLD.manifest_key
        OR NEW.object_version IS NOT OLD.object_version
        OR NEW.manifest_version IS NOT OLD.manifest_version
        OR NEW.retain_until IS NOT OLD.retain_until))
  OR (NEW.spool_removed_at IS NOT NULL AND NEW.archived_at IS NULL)
  OR (OLD.spool_removed_at IS NOT NULL AND NEW.spool_removed_at IS NOT OLD.spool_removed_at)
BEGIN
    SELECT RAISE(ABORT, 'E4: a recording''s archive record is written once, after its seal');
END;
