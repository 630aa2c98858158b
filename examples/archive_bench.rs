//! `archive_bench`: N recordings sealed at once, uploaded by huifang's
//! uploader to an S3 store with Object Lock, and the same bytes PUT by a bare
//! aws-sdk-s3 loop to the same store in the same run
//! (`scripts/bench/archive.sh`, `docs/PERFORMANCE.md`).
//!
//! **huifang.** The example links the library: a SQLite trace and a spool in
//! a temporary directory, a new Object Lock bucket, and the real
//! [`Uploader`] running in the background (`archive.parallel_uploads` =
//! `--parallel`), as `serve` runs it. N calls are prepared with their
//! recordings in state `recording` and a WAV of `--seconds` seconds (stereo,
//! 8 kHz, 16 bit: 32 000 bytes a second) in `spool/recording/`. Then all N
//! hang up at once: N tasks each seal one recording the way the call task
//! does after the recorder's seal — fsync, SHA-256, rename into
//! `spool/sealed/`, `seal_recording`, wake the uploader, the
//! `recording.sealed` audit event, `finish_call`, `call.ended`.
//! *Hang-up* is the instant a task starts; *verified* is the time the
//! uploader stored when marking it archived (`archived_at`, set after both
//! objects were PUT and verified by HEAD). Latency = verified − hang-up,
//! per recording, split into the stages *file seal* (fsync, hash, rename),
//! *row seal* (the commit, queued behind the other writers of the one
//! SQLite connection) and *sealed → verified* (the uploader: queue,
//! upload, verification, mark); throughput = WAV bytes (and recordings)
//! over first hang-up → last verified. The preparation writes and
//! fdatasyncs each WAV, as the recorder does during the call. With
//! `RUST_LOG=huifang=debug` each upload logs its own timings.
//!
//! **Bare.** The same N bodies, PUT with the same client settings, the same
//! Object Lock headers (COMPLIANCE, retain-until) and Content-MD5, at the
//! same concurrency, into a second new bucket: one PutObject per recording
//! and nothing else (huifang does per recording: a HEAD (two on a retry),
//! two PUTs, two HEADs at once to verify, a legal-hold look-up and the
//! database update with its two audit events). Latency = completion − the common start.
//!
//! Both buckets hold the objects in COMPLIANCE mode for 15 years: on the
//! test RGW each run leaves about 2 × N × size behind (`scripts/peers/ceph-rgw.sh
//! wipe` resets that throwaway cluster).
//!
//! Output: a summary on stderr and one JSON line on stdout (also appended to
//! `--out`).
//!
//! ```text
//! cargo build --release --example archive_bench
//! HUIFANG_S3_SECRET_KEY=… target/release/examples/archive_bench \
//!     --endpoint http://127.0.0.1:7480 --access-key … --recordings 100 --parallel 8
//! ```

#[path = "bench_common/mod.rs"]
#[allow(dead_code)]
mod bench_common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::primitives::{ByteStream, DateTime as SmithyTime};
use aws_sdk_s3::types::ObjectLockMode;
use base64::Engine;
use chrono::{DateTime, Utc};
use clap::Parser;
use huifang::archive::s3::S3Archive;
use huifang::archive::uploader::{Uploader, UploaderConfig, WorkerState};
use huifang::archive::{Archive, retain_until, sha256_hex};
use huifang::audit::{AuditAction, AuditEvent};
use huifang::config::{RetentionConfig, S3Config};
use huifang::store::{NewCall, NewRecording, RecordingState, SealedRecording, SideCounters, Store};
use serde_json::json;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use uuid::Uuid;

/// N recordings sealed at once → the archive, through huifang and bare.
#[derive(Debug, Parser)]
#[command(name = "archive_bench")]
struct Args {
    /// Recordings sealed at once.
    #[arg(long, default_value_t = 100)]
    recordings: usize,
    /// Audio per recording, seconds (32 000 bytes each).
    #[arg(long, default_value_t = 60)]
    seconds: u32,
    /// Uploads at once (`archive.parallel_uploads`; the bare loop's concurrency).
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// The S3 endpoint.
    #[arg(long, env = "HUIFANG_S3_ENDPOINT", default_value = "http://127.0.0.1:7480")]
    endpoint: String,
    /// Access key id.
    #[arg(long, env = "HUIFANG_S3_ACCESS_KEY")]
    access_key: String,
    /// The environment variable holding the secret key.
    #[arg(long, default_value = "HUIFANG_S3_SECRET_KEY")]
    secret_env: String,
    /// Give up when not everything is verified after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Skip the bare aws-sdk-s3 loop.
    #[arg(long)]
    skip_bare: bool,
    /// Also append the JSON line to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Processes of the S3 server (radosgw, ceph-osd, …) whose CPU time is
    /// reported per phase (repeat the option).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
}

/// CPU time of this process and of the server's processes, microseconds.
fn cpu(args: &Args) -> (u64, u64) {
    let own = bench_common::cpu_us(None).unwrap_or(0);
    let server = args.server_pids.iter().filter_map(|p| bench_common::cpu_us(Some(*p))).sum();
    (own, server)
}

fn cpu_json(before: (u64, u64), after: (u64, u64)) -> (serde_json::Value, serde_json::Value) {
    (
        json!(after.0.saturating_sub(before.0) as f64 / 1e6),
        json!(after.1.saturating_sub(before.1) as f64 / 1e6),
    )
}

/// A stereo 8 kHz 16-bit WAV of `seconds` seconds: the recorder's header,
/// then noise (incompressible, distinct per `seed`).
fn wav(seconds: u32, seed: u64) -> Vec<u8> {
    let data = seconds * 32_000;
    let mut b = Vec::with_capacity(44 + data as usize);
    b.extend(b"RIFF");
    b.extend((36 + data).to_le_bytes());
    b.extend(b"WAVEfmt ");
    b.extend(16u32.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(2u16.to_le_bytes());
    b.extend(8000u32.to_le_bytes());
    b.extend(32_000u32.to_le_bytes());
    b.extend(4u16.to_le_bytes());
    b.extend(16u16.to_le_bytes());
    b.extend(b"data");
    b.extend(data.to_le_bytes());
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407) | 1;
    while b.len() < 44 + data as usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.extend(x.to_le_bytes());
    }
    b.truncate(44 + data as usize);
    b
}

/// p-th percentile (nearest rank) of sorted `v`, in milliseconds.
fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn summary(lat_ms: &mut [f64], bytes: u64, objects: usize, wall: Duration) -> serde_json::Value {
    lat_ms.sort_by(f64::total_cmp);
    let secs = wall.as_secs_f64();
    json!({
        "p50_ms": pct(lat_ms, 50.0),
        "p99_ms": pct(lat_ms, 99.0),
        "max_ms": lat_ms.last().copied().unwrap_or(f64::NAN),
        "wall_s": secs,
        "mb_per_s": bytes as f64 / 1e6 / secs,
        "objects_per_s": objects as f64 / secs,
    })
}

fn s3_config(args: &Args, bucket: &str) -> S3Config {
    S3Config {
        endpoint: args.endpoint.clone(),
        bucket: bucket.into(),
        region: "us-east-1".into(),
        path_style: true,
        access_key_id: Some(args.access_key.clone()),
        secret_access_key_env: Some(args.secret_env.clone()),
    }
}

/// One prepared recording: its call/recording id, file and bytes.
struct Prepared {
    id: Uuid,
    recording: PathBuf,
    sealed: PathBuf,
    bytes: u64,
}

/// What the call task does at hang-up once the recorder sealed the file:
/// fsync, hash, rename, trace, wake the uploader, end the call.
/// When one hang-up started, and when its file and its row were sealed.
#[derive(Debug, Clone, Copy)]
struct HungUp {
    at: DateTime<Utc>,
    file_sealed: DateTime<Utc>,
    row_sealed: DateTime<Utc>,
}

async fn hang_up(store: &Store, nudge: &Notify, p: &Prepared) -> anyhow::Result<HungUp> {
    let at = Utc::now();
    let (from, to) = (p.recording.clone(), p.sealed.clone());
    let sha = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let f = std::fs::File::open(&from)?;
        f.sync_all()?;
        let bytes = std::fs::read(&from)?;
        let sha = sha256_hex(&bytes);
        std::fs::rename(&from, &to)?;
        Ok(sha)
    })
    .await??;
    let file_sealed = Utc::now();
    let row = SealedRecording {
        id: p.id,
        path: p.sealed.display().to_string(),
        sha256: sha.clone(),
        bytes: p.bytes,
        duration_ms: p.bytes.saturating_sub(44) / 32,
        agent: SideCounters::default(),
        client: SideCounters::default(),
        state: RecordingState::Sealed,
        sealed_at: Utc::now(),
    };
    let sealed = AuditEvent::system(
        AuditAction::RecordingSealed,
        p.id,
        json!({"call_id": p.id, "sha256": sha, "bytes": p.bytes, "state": "sealed"}),
    );
    store.seal_recording_audited(&row, &sealed).await?;
    let row_sealed = Utc::now();
    nudge.notify_one();
    let ended = AuditEvent::system(AuditAction::CallEnded, p.id, json!({"outcome": "completed"}));
    store.finish_call_audited(p.id, "completed", None, Utc::now(), &ended).await?;
    Ok(HungUp { at, file_sealed, row_sealed })
}

async fn prepare(store: &Store, spool: &Path, args: &Args) -> anyhow::Result<Vec<Prepared>> {
    std::fs::create_dir_all(spool.join("recording"))?;
    std::fs::create_dir_all(spool.join("sealed"))?;
    let mut out = Vec::with_capacity(args.recordings);
    for n in 0..args.recordings {
        let id = Uuid::now_v7();
        let now = Utc::now();
        store
            .insert_call(&NewCall {
                id,
                task_id: Some(format!("bench-{n}")),
                client_id: Some(format!("C{:05}", n % 1000)),
                agent_uri: format!("sip:agent{}@127.0.0.1", n % 50),
                client_uri: "sip:13800000000@127.0.0.1".into(),
                started_at: now,
                kind: None,
                agent_id: None,
                claimed_at: None,
            })
            .await?;
        let recording = spool.join("recording").join(format!("{id}.wav"));
        let body = wav(args.seconds, n as u64);
        // what the recorder leaves at hang-up: the audio written and
        // fdatasynced as the call went (at least once a second)
        let mut f = std::fs::File::create(&recording)?;
        f.write_all(&body)?;
        f.sync_data()?;
        store
            .insert_recording(&NewRecording {
                id,
                call_id: id,
                path: recording.display().to_string(),
                started_at: now,
            })
            .await?;
        store.mark_answered(id, now).await?;
        out.push(Prepared {
            id,
            sealed: spool.join("sealed").join(format!("{id}.wav")),
            recording,
            bytes: body.len() as u64,
        });
    }
    Ok(out)
}

async fn huifang_run(args: &Args, bucket: &str) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&format!("sqlite://{}", dir.path().join("huifang.db").display())).await?;
    let archive = Archive::S3(S3Archive::from_config(&s3_config(args, bucket))?);
    archive.init().await.context("creating the huifang bucket")?;
    let prepared = Arc::new(prepare(&store, &dir.path().join("spool"), args).await?);
    let cfg = UploaderConfig {
        parallel: args.parallel,
        retry_min: Duration::from_secs(2),
        retry_max: Duration::from_secs(30),
        keep_after_upload: Duration::from_secs(86_400),
        retention: RetentionConfig::default(),
    };
    let uploader = Uploader::new(store.clone(), archive, cfg);
    let nudge = uploader.nudge();
    let mut status = uploader.status();
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(uploader.run(stop_rx, Duration::from_secs(30)));
    // idle, its first look at the (empty) queue done
    status.wait_for(|s| s.state == WorkerState::Idle).await?;

    let cpu0 = cpu(args);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..prepared.len() {
        let (store, nudge, prepared) = (store.clone(), nudge.clone(), prepared.clone());
        tasks.spawn(async move { (prepared[i].id, hang_up(&store, &nudge, &prepared[i]).await) });
    }
    let mut hung_up = HashMap::new();
    while let Some(r) = tasks.join_next().await {
        let (id, at) = r?;
        hung_up.insert(id, at?);
    }
    let sealed_all = start.elapsed();
    let n = prepared.len() as u64;
    let done = tokio::time::timeout(Duration::from_secs(args.timeout), status.wait_for(|s| s.archived >= n))
        .await
        .is_ok_and(|r| r.is_ok());
    let wall_inst = start.elapsed();
    let cpu1 = cpu(args);
    let last = status.borrow().clone();
    stop_tx.send(true)?;
    worker.await?;
    if !done {
        bail!("only {} of {n} recordings verified within {} s; status {last:?}", last.archived, args.timeout);
    }

    let ms = |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_microseconds().unwrap_or(0) as f64 / 1000.0;
    let (mut lat, mut file, mut row, mut upload) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut first, mut latest) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>);
    for p in prepared.iter() {
        let a = store.archive_record(p.id).await?.archived.context("not archived")?;
        let h = hung_up[&p.id];
        lat.push(ms(h.at, a.at));
        file.push(ms(h.at, h.file_sealed));
        row.push(ms(h.file_sealed, h.row_sealed));
        upload.push(ms(h.row_sealed, a.at));
        first = Some(first.map_or(h.at, |f| f.min(h.at)));
        latest = Some(latest.map_or(a.at, |l| l.max(a.at)));
    }
    let stage = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        json!({"p50_ms": pct(v, 50.0), "p99_ms": pct(v, 99.0)})
    };
    // where the time goes: fsync + hash + rename of the file, the row's
    // commit (the single SQLite writer), then the uploader (queue wait,
    // upload, verification, mark)
    let stages = json!({
        "file_seal": stage(&mut file),
        "row_seal": stage(&mut row),
        "sealed_to_verified": stage(&mut upload),
    });
    let bytes: u64 = prepared.iter().map(|p| p.bytes).sum();
    let wall = (latest.unwrap() - first.unwrap()).to_std().unwrap_or(wall_inst);
    store.close().await;
    let mut s = summary(&mut lat, bytes, prepared.len(), wall);
    s["seal_all_ms"] = json!(sealed_all.as_secs_f64() * 1000.0);
    s["stages"] = stages;
    s["failures"] = json!(last.failures);
    (s["cpu_s"], s["server_cpu_s"]) = cpu_json(cpu0, cpu1);
    Ok(s)
}

async fn bare_run(args: &Args, bucket: &str) -> anyhow::Result<serde_json::Value> {
    // the same client settings as huifang's S3 backend
    let secret =
        std::env::var(&args.secret_env).with_context(|| format!("{} is not set", args.secret_env))?;
    let creds = Credentials::new(&args.access_key, secret, None, None, "archive-bench");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&args.endpoint)
        .force_path_style(true)
        .credentials_provider(creds)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    client.create_bucket().bucket(bucket).object_lock_enabled_for_bucket(true).send().await?;
    let bodies: Vec<Arc<Vec<u8>>> =
        (0..args.recordings).map(|n| Arc::new(wav(args.seconds, n as u64))).collect();
    let until = SmithyTime::from_secs(retain_until(Utc::now(), 15).timestamp());
    let slots = Arc::new(Semaphore::new(args.parallel));
    let cpu0 = cpu(args);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (n, body) in bodies.iter().enumerate() {
        let (client, body, slots, bucket) = (client.clone(), body.clone(), slots.clone(), bucket.to_string());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("semaphore open");
            let md5 = {
                use md5::Digest;
                base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body.as_slice()))
            };
            client
                .put_object()
                .bucket(bucket)
                .key(format!("recordings/bench/{n:05}.wav"))
                .content_type("audio/wav")
                .content_length(body.len() as i64)
                .content_md5(md5)
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(until)
                .body(ByteStream::from(body.as_ref().clone()))
                .send()
                .await
                .map(|_| start.elapsed())
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = tasks.join_next().await {
        lat.push(r?.context("PutObject")?.as_secs_f64() * 1000.0);
    }
    let wall = start.elapsed();
    let cpu1 = cpu(args);
    let bytes: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    let mut s = summary(&mut lat, bytes, bodies.len(), wall);
    (s["cpu_s"], s["server_cpu_s"]) = cpu_json(cpu0, cpu1);
    Ok(s)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // RUST_LOG=huifang=debug shows each upload's timings
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    if args.recordings == 0 || args.parallel == 0 {
        bail!("--recordings and --parallel must be positive");
    }
    let (nproc, model) = bench_common::machine();
    let stamp = Utc::now().format("%Y%m%d%H%M%S").to_string();
    let tag = &Uuid::new_v4().simple().to_string()[..6];
    let huifang = huifang_run(&args, &format!("hf-bench-{stamp}-{tag}")).await?;
    let bare = if args.skip_bare {
        serde_json::Value::Null
    } else {
        bare_run(&args, &format!("hf-bench-bare-{stamp}-{tag}")).await?
    };
    let size = 44 + u64::from(args.seconds) * 32_000;
    let line = json!({
        "bench": "archive",
        "at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "nproc": nproc,
        "cpu": model,
        "loadavg_1m": bench_common::loadavg(),
        "endpoint": args.endpoint,
        "recordings": args.recordings,
        "bytes_each": size,
        "parallel": args.parallel,
        "huifang": huifang,
        "bare": bare,
    });
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    eprintln!(
        "archive bench: {} recordings of {:.2} MB sealed at once, {} uploads at once, {} cores ({model})",
        args.recordings,
        size as f64 / 1e6,
        args.parallel,
        nproc
    );
    eprintln!(
        "                           p50 ms    p99 ms    max ms    MB/s   objects/s   CPU s  server CPU s"
    );
    for (name, v) in [("huifang (hang-up→verified)", &huifang), ("bare PutObject", &bare)] {
        if v.is_null() {
            continue;
        }
        eprintln!(
            "{name:<27}{:>9.0}{:>10.0}{:>10.0}{:>8.1}{:>12.1}{:>8.2}{:>14.2}",
            f(v, "p50_ms"),
            f(v, "p99_ms"),
            f(v, "max_ms"),
            f(v, "mb_per_s"),
            f(v, "objects_per_s"),
            f(v, "cpu_s"),
            f(v, "server_cpu_s")
        );
    }
    if !huifang.is_null() {
        let st = &huifang["stages"];
        eprintln!(
            "huifang stages p50/p99 ms: file seal {:.0}/{:.0}, row seal {:.0}/{:.0}, sealed → verified {:.0}/{:.0}",
            f(&st["file_seal"], "p50_ms"),
            f(&st["file_seal"], "p99_ms"),
            f(&st["row_seal"], "p50_ms"),
            f(&st["row_seal"], "p99_ms"),
            f(&st["sealed_to_verified"], "p50_ms"),
            f(&st["sealed_to_verified"], "p99_ms"),
        );
    }
    let text = line.to_string();
    println!("{text}");
    if let Some(path) = &args.out {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(file, "{text}")?;
    }
    Ok(())
}
