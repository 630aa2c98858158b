//! One huifang installation in a temporary directory, for the archive's
//! command-line tests: a config (`huifang.toml`), a SQLite trace
//! (`huifang.db`), a spool (`spool/`) and either the local archive
//! (`archive/`) or an S3 bucket on the test RGW. Recordings are made
//! directly through the library ([`record_call`]), not by calls, so the
//! tests of `archive drain`, `verify`, `reindex`, `hold` and `fetch` need
//! no phones.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use chrono::Utc;
use huifang::audit::{AuditAction, AuditEvent};
use huifang::store::{NewCall, NewRecording, RecordingState, SealedRecording, SideCounters, Store};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::s3::Rgw;

/// The variable the S3 sites' config names for the secret key.
pub const SECRET_VAR: &str = "HUIFANG_TEST_S3_SECRET";

/// A config, a database, a spool and an archive in a temporary directory.
pub struct Site {
    /// The directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// `huifang.toml` in it.
    pub config: PathBuf,
    /// `sqlite://…/huifang.db`.
    pub db_url: String,
    env: Vec<(String, String)>,
}

/// The `[archive]` section of the local archive in `archive/`.
pub fn local_archive() -> String {
    "[archive]\nbackend = \"local\"\npath = \"archive\"\n".to_string()
}

/// The `[archive]` section of `bucket` on the test RGW (`archive_keys`: more
/// `[archive]` keys, one per line).
pub fn s3_archive(rgw: &Rgw, bucket: &str, archive_keys: &str) -> String {
    format!(
        "[archive]\nbackend = \"s3\"\n{archive_keys}\n[archive.s3]\nendpoint = \"{}\"\nbucket = \"{bucket}\"\n\
         access_key_id = \"{}\"\nsecret_access_key_env = \"{SECRET_VAR}\"\n",
        rgw.endpoint, rgw.access_key
    )
}

impl Site {
    /// A site with the local archive.
    pub fn local() -> Site {
        Site::new(&local_archive(), Vec::new())
    }

    /// A site archiving to `bucket` on the test RGW.
    pub fn s3(rgw: &Rgw, bucket: &str) -> Site {
        Site::new(&s3_archive(rgw, bucket, ""), vec![(SECRET_VAR.to_string(), rgw.secret_key.clone())])
    }

    /// A site with this `[archive]` section (and whatever else `sections`
    /// holds) and these environment variables for every command.
    pub fn new(sections: &str, env: Vec<(String, String)>) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("huifang.db");
        let db_url = format!("sqlite://{}", db.display());
        let config = dir.path().join("huifang.toml");
        let port = super::free_port_udp_tcp();
        // `serve` needs the trading calendar (its dialer): the shipped one.
        std::fs::write(
            &config,
            super::huifang::with_calendar(&format!(
                "[sip]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"{db_url}\"\n[spool]\npath = \"spool\"\n\
                 {sections}\n"
            )),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("spool/sealed")).unwrap();
        Site { dir, config, db_url, env }
    }

    /// Replaces `from` by `to` in the config (e.g. another bucket name).
    pub fn edit_config(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        assert!(text.contains(from), "{from:?} not in the config:\n{text}");
        std::fs::write(&self.config, text.replace(from, to)).unwrap();
    }

    /// The spool's `sealed/` directory.
    pub fn sealed_dir(&self) -> PathBuf {
        self.dir.path().join("spool/sealed")
    }

    /// The store on the site's database.
    pub async fn store(&self) -> Store {
        Store::open(&self.db_url).await.unwrap()
    }

    /// `huifang ARGS… --config huifang.toml`, run to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// The command [`run`](Self::run) runs, to spawn it yourself.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(super::huifang::binary());
        c.args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    /// Runs `huifang ARGS…` and asserts that it exits 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "huifang {args:?}: {}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// A sealed recording of `body` in the spool (a completed call of
    /// `client`); returns its id (= the call's id).
    pub async fn sealed(&self, store: &Store, client: &str, body: &[u8]) -> Uuid {
        let wav = self.sealed_dir().join(format!("{}.wav", Uuid::now_v7()));
        std::fs::write(&wav, body).unwrap();
        record_call(store, client, Some(&wav)).await
    }
}

/// A completed call of `client` (task `t1`), answered and recorded into
/// `recorded` (sealed with its SHA-256) when given, with the audit events a
/// real call writes (`call.placed`, `call.answered`, `recording.sealed`,
/// `call.ended`); returns the call's id, which is also the recording's.
pub async fn record_call(store: &Store, client: &str, recorded: Option<&Path>) -> Uuid {
    record_call_by(store, client, None, recorded).await
}

/// [`record_call`], taken by the agent `agent_id` (a staff id).
pub async fn record_call_by(
    store: &Store,
    client: &str,
    agent_id: Option<&str>,
    recorded: Option<&Path>,
) -> Uuid {
    let id = Uuid::now_v7();
    store
        .insert_call(&NewCall {
            id,
            task_id: Some("t1".into()),
            client_id: Some(client.into()),
            agent_uri: "sip:agent@x".into(),
            client_uri: "sip:+8613800000000@x".into(),
            started_at: Utc::now(),
            kind: None,
            agent_id: agent_id.map(str::to_string),
            claimed_at: None,
        })
        .await
        .unwrap();
    let audit = |action, subject: Uuid| AuditEvent::system(action, subject, serde_json::json!({}));
    store.append_audit(&audit(AuditAction::CallPlaced, id)).await.unwrap();
    if let Some(path) = recorded {
        let bytes = std::fs::read(path).unwrap();
        store
            .insert_recording(&NewRecording {
                id,
                call_id: id,
                path: path.display().to_string(),
                started_at: Utc::now(),
            })
            .await
            .unwrap();
        store.mark_answered(id, Utc::now()).await.unwrap();
        store
            .seal_recording(&SealedRecording {
                id,
                path: path.display().to_string(),
                sha256: hex::encode(Sha256::digest(&bytes)),
                bytes: bytes.len() as u64,
                duration_ms: 1000,
                agent: SideCounters::default(),
                client: SideCounters::default(),
                state: RecordingState::Sealed,
                sealed_at: Utc::now(),
            })
            .await
            .unwrap();
        store.append_audit(&audit(AuditAction::CallAnswered, id)).await.unwrap();
        store.append_audit(&audit(AuditAction::RecordingSealed, id)).await.unwrap();
    }
    store.finish_call(id, "completed", None, Utc::now()).await.unwrap();
    store.append_audit(&audit(AuditAction::CallEnded, id)).await.unwrap();
    id
}
