//! The archive, one test binary: the uploader, the local archive and a real
//! S3 with Object Lock (Ceph RGW, started by `scripts/test.sh`): WORM,
//! kills during uploads, outages, fetch, holds, reindex and verify.
//!
//! Each module is one file of behaviours (its own doc says which); the
//! helpers are in `tests/common/`. One binary instead of one per file, so
//! that CI spends its time testing rather than linking.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod archive_kill_during_upload;
mod archive_outage_then_drain;
mod archive_put_signs_payload_sha256;
mod archive_s3_moto;
mod archive_to_rgw_is_worm;
mod archive_uploader_local;
mod fetch_checks_sha256;
mod fetch_from_rgw;
mod legal_hold_on_rgw;
mod reindex_from_rgw;
mod rgw_enforces_object_lock;
mod serve_uploads_what_was_left;
mod verify_findings_rgw;
