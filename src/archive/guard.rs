//! The spool's free-space guard: below `spool.min_free_mb`, new calls are
//! refused (outcome `recording-failed`, reason traced) rather than recorded
//! into a full disk (issue 4, "outages and full disks"). While the archive
//! is down the spool grows; this is what stops it from filling the disk.

use std::path::Path;

/// `Ok` when the file system holding `spool` has at least `min_free_mb`
/// MiB available to huifang; otherwise a reason for the trace (no personal
/// data). A spool that does not exist yet is measured at its nearest
/// existing ancestor. Cheap (one `statvfs`): call it before each call.
pub fn spool_has_room(spool: &Path, min_free_mb: u64) -> Result<(), String> {
    let mut at = spool;
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    let free =
        fs4::available_space(at).map_err(|e| format!("cannot measure free space on the spool: {e}"))?;
    let free_mb = free / (1024 * 1024);
    if free_mb < min_free_mb {
        return Err(format!(
            "spool {} has {free_mb} MiB free, below spool.min_free_mb = {min_free_mb}",
            spool.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_below_the_minimum() {
        let dir = tempfile::tempdir().unwrap();
        spool_has_room(dir.path(), 0).unwrap();
        spool_has_room(&dir.path().join("not/yet"), 1).unwrap();
        let e = spool_has_room(dir.path(), u64::MAX / (1024 * 1024)).unwrap_err();
        assert!(e.contains("below spool.min_free_mb"), "{e}");
    }
}
