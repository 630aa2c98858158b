//! The evidence export (issue 14): a client with two answered calls and
//! one unanswered attempt, made by `serve`'s dialer with real softphones,
//! archived by its uploader; the zip from the API and from the CLI passes
//! its own verifier (`verify.py` with Python 3, `huifang export verify`),
//! and a byte changed in a WAV, a record or an audit line makes both fail,
//! naming the file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use huifang::domain::facts::Role as StaffRole;
use huifang::domain::kinds::TaskKind;
use huifang::domain::records::{Form, checklist};
use serde_json::json;

use crate::common::dialer::{T, client, staff, wait_for};
use crate::floor::{Floor, until};

const SECS: Duration = Duration::from_secs(30);

/// `src` with one byte changed in the first file whose name ends with `suffix`.
fn tampered(src: &Path, suffix: &str, dst: &Path) -> String {
    let mut z = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut w = zip::ZipWriter::new(std::fs::File::create(dst).unwrap());
    let mut changed = String::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        if changed.is_empty() && name.ends_with(suffix) {
            let at = b.len() / 2;
            b[at] = if b[at] == b'7' { b'8' } else { b'7' };
            changed = name.split_once('/').unwrap().1.to_string();
        }
        w.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(&b).unwrap();
    }
    w.finish().unwrap();
    assert!(!changed.is_empty(), "no file ends with {suffix}");
    changed
}

fn names_of<R: Read + std::io::Seek>(z: &zip::ZipArchive<R>) -> Vec<String> {
    z.file_names().map(|n| n.unwrap().to_string()).collect()
}

/// `python3 verify.py FILE` with the verify.py of `export`: (ok, output).
fn python_verify(export: &Path, file: &Path) -> (bool, String) {
    let mut z = zip::ZipArchive::new(std::fs::File::open(export).unwrap()).unwrap();
    let name = names_of(&z).into_iter().find(|n| n.ends_with("/verify.py")).unwrap();
    let mut script = String::new();
    z.by_name(&name).unwrap().read_to_string(&mut script).unwrap();
    let py = export.with_file_name("verify.py");
    std::fs::write(&py, script).unwrap();
    let out = std::process::Command::new("python3").arg(&py).arg(file).output().expect("python3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn huifang_verify(file: &Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_huifang"))
        .args(["export", "verify"])
        .arg(file)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A floor where agent A1 called client C1 three times: two answered
/// (records submitted, recordings archived) and one not (the client's
/// phone gone). Returns the floor, the agent's cookie and the recordings.
pub async fn three_attempts() -> (Floor, String, Vec<String>) {
    let staff = vec![
        staff("A1", StaffRole::Service, None, Some("sip:agent1@127.0.0.1")),
        staff("M1", StaffRole::Supervisor, None, None),
        staff("K1", StaffRole::Compliance, None, None),
    ];
    let clients = vec![client("C1", "13900000001", None)];
    let tasks: Vec<T> = ["complaint:E1", "complaint:E2", "complaint:E3"]
        .into_iter()
        .map(|key| T { key, kind: TaskKind::Complaint, client: "C1", due: "2026-12-01" })
        .collect();
    let mut floor = Floor::build(&staff, &clients, &tasks, 0).await;
    floor.phone("agent1", Duration::from_millis(300), None).await;
    let phone =
        floor.phone("13900000001", Duration::from_millis(200), Some(Duration::from_millis(1000))).await;
    let agent = floor.cookie().await;
    let mut ws = floor.ws(&agent, None).await;
    floor.post(&agent, "/api/v1/agent/state", json!({"state": "available"})).await;
    let answers: serde_json::Map<String, serde_json::Value> = checklist(Form::for_kind(TaskKind::Complaint))
        .iter()
        .filter(|q| !q.free_text)
        .map(|q| (q.id.to_string(), json!("yes")))
        .collect();
    let mut recordings = Vec::new();
    for _ in 0..2 {
        let (offered, _) = until(&mut ws, "offered", SECS).await;
        let (ended, _) = until(&mut ws, "ended", SECS).await;
        assert_eq!(ended["outcome"], "completed", "{}", floor.serve.log());
        recordings.push(ended["recording_id"].as_str().unwrap().to_string());
        let body = json!({"task_id": offered["task_id"], "call_id": offered["call_id"], "answers": answers});
        assert_eq!(floor.post(&agent, "/api/v1/records", body).await.0, 201);
    }
    // the client's phone is gone: the third attempt is not answered
    floor.phones[phone].request_stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    until(&mut ws, "offered", SECS).await;
    let (ended, _) = until(&mut ws, "ended", SECS).await;
    assert_ne!(ended["outcome"], "completed");
    floor.post(&agent, "/api/v1/agent/state", json!({"state": "logged_out"})).await;
    // serve's uploader archives both recordings
    for r in &recordings {
        let id = r.parse().unwrap();
        wait_for(SECS, "the recording archived", || async {
            floor.db.store.archive_record(id).await.unwrap().archived.map(|_| ())
        })
        .await;
    }
    (floor, agent, recordings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_export_passes_its_own_verifier_and_names_what_was_changed() {
    let (floor, agent, recordings) = three_attempts().await;
    // the supervisor downloads one (audited at once)
    let sup = floor.cookie_of("super1").await;
    let r = floor
        .http
        .get(format!("{}/api/v1/recordings/{}/audio?download=1", floor.base, recordings[0]))
        .header("cookie", &sup)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    // agents and supervisors export nothing
    for who in [&agent, &sup] {
        let r = floor
            .http
            .get(format!("{}/api/v1/clients/C1/export", floor.base))
            .header("cookie", who)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }

    // compliance sees the three attempts, and exports
    let comp = floor.cookie_of("comp1").await;
    let get = |path: String| {
        let (http, comp) = (floor.http.clone(), comp.clone());
        async move { http.get(path).header("cookie", comp).send().await.unwrap() }
    };
    let calls: serde_json::Value =
        get(format!("{}/api/v1/clients/C1/calls", floor.base)).await.json().await.unwrap();
    assert_eq!(calls["items"].as_array().unwrap().len(), 3, "{calls:#}");
    let r = get(format!("{}/api/v1/clients/C1/export", floor.base)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let dir = tempfile::tempdir().unwrap();
    let zip_path: PathBuf = dir.path().join("export.zip");
    std::fs::write(&zip_path, r.bytes().await.unwrap()).unwrap();
    let (ok, out) = python_verify(&zip_path, &zip_path);
    assert!(ok, "verify.py: {out}");
    assert!(out.contains("2 recordings match"), "{out}");
    let (ok, out) = huifang_verify(&zip_path);
    assert!(ok, "huifang export verify: {out}");
    // what is in it: three vCons (one incomplete), two WAVs, two records, the audit of the download
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let names = names_of(&z);
    assert_eq!(names.iter().filter(|n| n.ends_with(".vcon.json")).count(), 3, "{names:#?}");
    assert_eq!(names.iter().filter(|n| n.ends_with(".wav")).count(), 2);
    assert_eq!(names.iter().filter(|n| n.contains("record") && n.ends_with(".json")).count(), 2);
    let events = names.iter().find(|n| n.contains("audit") && n.ends_with(".jsonl")).unwrap().clone();
    let mut text = String::new();
    z.by_name(&events).unwrap().read_to_string(&mut text).unwrap();
    assert!(text.contains("\"recording.downloaded\"") && text.contains("\"super1\""), "{text}");
    let mut incomplete = 0;
    for n in names.iter().filter(|n| n.ends_with(".vcon.json")) {
        let mut s = String::new();
        z.by_name(n).unwrap().read_to_string(&mut s).unwrap();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        if v["dialog"][0]["type"] == "incomplete" {
            incomplete += 1;
            assert!(v["dialog"][0]["disposition"].is_string());
        } else {
            assert!(v["dialog"][0]["content_hash"].as_str().unwrap().starts_with("sha256-"));
            assert_eq!(v["attachments"][0]["type"], "callback_record");
        }
    }
    assert_eq!(incomplete, 1);
    // the export is in each recording's audit trail
    for r in &recordings {
        let v: serde_json::Value =
            get(format!("{}/api/v1/audit?recording_id={r}", floor.base)).await.json().await.unwrap();
        assert!(
            v["items"].as_array().unwrap().iter().any(|e| e["action"].as_str().unwrap().contains("export")),
            "{v:#}"
        );
    }

    // a byte changed anywhere: both verifiers fail and name the file
    for suffix in ["recording.wav", ".record.json", "audit-events.jsonl"] {
        let bad = dir.path().join(format!("bad-{}.zip", suffix.replace('.', "_")));
        let changed = tampered(&zip_path, suffix, &bad);
        let (ok, out) = python_verify(&zip_path, &bad);
        assert!(!ok && out.contains(&changed), "verify.py on {changed}: {out}");
        let (ok, out) = huifang_verify(&bad);
        assert!(!ok && out.contains(&changed), "huifang export verify on {changed}: {out}");
    }

    // the CLI makes the same export
    let cli_zip = dir.path().join("cli.zip");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_huifang"))
        .args(["export", "--client", "C1", "--user", "K1", "--out"])
        .arg(&cli_zip)
        .arg("--config")
        .arg(&floor.config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (ok, out) = huifang_verify(&cli_zip);
    assert!(ok, "{out}");
    assert!(out.contains("2 recordings match"), "{out}");
}
