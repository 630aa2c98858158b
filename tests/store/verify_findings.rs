//! `verify` finds what is wrong, one line each, and exits 1: a tampered
//! archived object (`--deep`), a missing object (an orphan row), an orphan
//! manifest and a broken audit chain (the local archive; against Ceph RGW:
//! `verify_findings_rgw.rs`).

use crate::common;

use common::site::Site;

fn files(dir: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p, ext));
        } else if p.extension().is_some_and(|x| x == ext) && !p.to_string_lossy().ends_with(".meta.json") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn writable(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn verify_reports_each_finding() {
    let site = Site::local();
    let store = site.store().await;
    for n in 0..2 {
        site.sealed(&store, "C1", format!("RIFF....WAVEfmt fake audio {n}").as_bytes()).await;
    }
    for n in 0..3 {
        store
            .append_audit(&huifang::audit::AuditEvent::system(
                huifang::audit::AuditAction::CallPlaced,
                n,
                serde_json::json!({}),
            ))
            .await
            .unwrap();
    }
    let out = site.run(&["archive", "drain"]);
    assert!(out.status.success(), "drain: {}", String::from_utf8_lossy(&out.stderr));
    let out = site.run(&["verify", "--deep"]);
    assert!(out.status.success(), "verify: {}", String::from_utf8_lossy(&out.stdout));
    // the local archive is said to be no WORM storage: a notice, not a finding
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("notice: the local archive") && text.contains("not write-once"), "{text}");

    let archive = site.dir.path().join("archive");
    let wavs = files(&archive, "wav");
    let manifests = files(&archive, "json");
    assert_eq!((wavs.len(), manifests.len()), (2, 2));
    // tamper with the first object (same size), remove the second
    let parent = wavs[0].parent().unwrap().to_path_buf();
    writable(&parent);
    writable(&wavs[0]);
    let mut bytes = std::fs::read(&wavs[0]).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&wavs[0], &bytes).unwrap();
    writable(wavs[1].parent().unwrap());
    std::fs::remove_file(&wavs[1]).unwrap();
    // an orphan manifest
    let orphan = parent.join(format!("{}.json", uuid::Uuid::now_v7()));
    std::fs::copy(&manifests[0], &orphan).unwrap();
    // a broken audit chain
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&site.db_url).await.unwrap();
    for s in
        ["DROP TRIGGER audit_events_never_updated", "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"]
    {
        sqlx::query(s).execute(&mut conn).await.unwrap();
    }

    let out = site.run(&["verify", "--deep"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("content SHA-256"), "{text}");
    assert!(text.contains("orphan-row"), "{text}");
    assert!(text.contains("orphan-manifest"), "{text}");
    assert!(text.contains("audit-chain: seq 2"), "{text}");
    assert!(text.contains("verify: 4 finding(s)"), "{text}");
    store.close().await;
}
