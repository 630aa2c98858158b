//! `huifang demo`: the whole job on a fresh machine with one command.
//!
//! In a fresh directory (a new one under the temporary directory, kept
//! afterwards, or `--dir`) with the embedded default — SQLite, the local
//! archive, the built-in registrar — the demo:
//!
//! 1. writes its configuration and sample data ([`data`]) and imports the
//!    staff, clients and events (Chinese headers, `docs/IMPORT.md`);
//! 2. plans the callback tasks as of the day the data describes;
//! 3. starts `serve`'s machinery in-process ([`App`]: store, recovery,
//!    recorder, RTP ports, SIP endpoint with the built-in registrar);
//! 4. starts 李娜 (A01)'s softphone — huifang's own
//!    ([`crate::softphone`]) — which registers as `agent1` with SHA-256
//!    digest;
//! 5. starts a softphone for each sample client, registered under the
//!    client's number, answering with the client's recorded speech;
//! 6. logs the agent in and lets `serve`'s dialer ([`crate::dialer`]) work
//!    the queue ([`dialing`]): it claims the next task the agent may make
//!    (E7), rings the agent, opens the recording, calls the client and
//!    bridges them; the client hangs up after answering the agent's
//!    question. The dialer runs on a drill clock set to 10:00 Beijing time
//!    of the day the data describes, so the calling window is open at any
//!    hour. After `--tasks` calls the agent logs out;
//! 7. during each wrap-up, submits the callback's record (the task is
//!    then done);
//! 8. archives the recordings (the uploader drains the queue) and runs
//!    `verify --deep`;
//! 9. checks each archived recording: the agent's phrase on the left
//!    channel, the client's on the right ([`speech`]);
//! 10. prints a short report: the tasks, the calls, each recording's place
//!     and SHA-256, and the commands to list a client's recordings and to
//!     fetch one.
//!
//! With `--web` ([`web`]) huifang then keeps running with its pages on
//! `--http`, the dialer and the phones, and prints the accounts of an
//! agent, a supervisor and a compliance officer, until Ctrl-C.
//!
//! It exits 0 only when everything checked out. Ctrl-C (or SIGTERM) stops
//! it at any point: calls in progress end as interrupted, the phones
//! unregister, huifang shuts down, and the directory is kept.

mod data;
mod dialing;
mod speech;
mod web;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chrono::{NaiveDate, Utc};
use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

use super::app::App;
use super::{DemoArgs, Exit};
use crate::archive::Archive;
use crate::archive::uploader::{Uploader, UploaderConfig};
use crate::config::Config;
use crate::dialer::DialerSettings;
use crate::domain::avoidance::{Directory, may_call};
use crate::domain::facts::mask_name;
use crate::domain::kinds::TaskKind;
use crate::domain::planner::{Facts, plan};
use crate::import::{self, Encoding};
use crate::sip::msg::Uri;
use crate::softphone::{Options, Softphone, prompt_from_bytes};
use crate::store::{RecordingRow, Store, TaskFilter};
use dialing::ShiftReport;

/// The agent who works the demo's tasks (staff id in `staff.csv`).
const AGENT: &str = "A01";
/// The agent's softphone user (the `sip:agent1@…` of `staff.csv`).
const AGENT_USER: &str = "agent1";
/// The seed of the sampled rules, so that every demo plans the same tasks.
const SEED: [u8; 32] = *b"huifang demo: the same sample!!!";
/// The agent answers huifang's call after this long…
const AGENT_ANSWER: Duration = Duration::from_millis(300);
/// …and starts speaking this long after answering (the client picks up
/// in the meantime).
const AGENT_SPEAKS: Duration = Duration::from_millis(600);
/// The client answers after this long…
const CLIENT_ANSWER: Duration = Duration::from_millis(500);
/// …and answers the agent's question this long after picking up, then
/// hangs up half a second after it finished speaking.
const CLIENT_SPEAKS: Duration = Duration::from_millis(3600);

/// Runs `huifang demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<Exit> {
    super::init_logging(if args.verbose { "info" } else { "warn" });
    if args.tasks == 0 {
        bail!("--tasks: must be positive");
    }
    let as_of = NaiveDate::parse_from_str(&args.as_of, "%Y-%m-%d")
        .with_context(|| format!("--as-of: {:?} is not a date (YYYY-MM-DD)", args.as_of))?;
    let dir = args.dir.clone().unwrap_or_else(data::temp_dir);
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut ctx = Ctx::default();
        let result = {
            let body = steps(&mut ctx, &dir, &args, as_of, stop_rx);
            tokio::pin!(body);
            tokio::select! {
                r = &mut body => r,
                _ = super::shutdown_signal() => {
                    eprintln!("huifang demo: stopping (Ctrl-C)…");
                    let _ = stop_tx.send(true);
                    // The step under way winds down: calls end as interrupted.
                    let _ = tokio::time::timeout(Duration::from_secs(20), &mut body).await;
                    Err(anyhow!("stopped before the end"))
                }
            }
        };
        let result = match result {
            // --web: the report now, then the pages until a stop signal
            Ok(report) if args.web && report.ok => {
                show(&report, args.json)?;
                let served = serve_pages(&mut ctx, &args).await;
                ctx.cleanup().await;
                return match served {
                    Ok(()) => Ok(Exit::Ok),
                    Err(e) => {
                        eprintln!("huifang demo: {e:#}");
                        Ok(Exit::Unsuccessful)
                    }
                };
            }
            r => r,
        };
        ctx.cleanup().await;
        match result {
            Ok(report) => {
                show(&report, args.json)?;
                Ok(if report.ok { Exit::Ok } else { Exit::Unsuccessful })
            }
            Err(e) => {
                eprintln!("huifang demo: {e:#}");
                if dir.exists() {
                    eprintln!("huifang demo: what it did so far is in {}", dir.display());
                }
                Ok(Exit::Unsuccessful)
            }
        }
    })
}

/// Prints the report, as JSON or for a person.
fn show(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report).context("printing the report")?);
    } else {
        print_report(report);
    }
    Ok(())
}

/// `--web`: the web door on `--http` with the demo's accounts, one JSON
/// line (or the accounts for a person) on stdout, then running until
/// SIGINT or SIGTERM.
async fn serve_pages(ctx: &mut Ctx, args: &DemoArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    let (Some(app), Some(store), Some(config)) = (ctx.app.as_ref(), ctx.store.as_ref(), ctx.config.as_ref())
    else {
        bail!("huifang is not running");
    };
    let cfg = Config::load(config)?;
    let web = web::DemoWeb::start(
        &cfg,
        store,
        &app.archive,
        &app.hub,
        app.services.endpoint.clone(),
        app.dialer_handle(),
        args.http,
    )
    .await
    .with_context(|| format!("--http {}: starting the web pages", args.http))?;
    if args.json {
        println!("{}", serde_json::to_string(&web.line).context("printing the accounts")?);
    } else {
        print!("{}", web.explain());
    }
    std::io::stdout().flush().context("stdout")?;
    super::shutdown_signal().await;
    eprintln!("huifang demo: stopping…");
    web.stop().await;
    Ok(())
}

/// What has to be stopped, whatever happens.
#[derive(Default)]
struct Ctx {
    app: Option<App>,
    phones: Vec<Softphone>,
    store: Option<Store>,
    /// The demo's configuration file, once written.
    config: Option<PathBuf>,
}

impl Ctx {
    /// The dialer first (a call in progress ends as interrupted, its
    /// recording sealed), then the phones (they unregister from huifang's
    /// registrar), then the rest of huifang, then the database.
    async fn cleanup(&mut self) {
        if let Some(app) = self.app.as_mut() {
            app.stop_dialer().await;
        }
        for phone in self.phones.drain(..) {
            let _ = phone.stop().await;
        }
        if let Some(app) = self.app.take()
            && let Err(e) = app.shutdown().await
        {
            eprintln!("huifang demo: shutting huifang down: {e:#}");
        }
        if let Some(store) = self.store.take() {
            store.close().await;
        }
    }
}

/// The report: what the demo did and what it checked.
#[derive(Debug, Serialize)]
struct Report {
    /// Everything checked out.
    ok: bool,
    dir: PathBuf,
    config: PathBuf,
    imported: BTreeMap<&'static str, u64>,
    as_of: NaiveDate,
    planned: u64,
    sip: SocketAddr,
    agent: AgentReport,
    tasks: Vec<TaskReport>,
    /// What the dialer said during the shift (e.g. tasks it would not
    /// offer this agent: avoidance, E7).
    dialer_notes: Vec<String>,
    archive: ArchiveReport,
    verify: Vec<String>,
    problems: Vec<String>,
    commands: Vec<String>,
}

#[derive(Debug, Serialize)]
struct AgentReport {
    staff_id: String,
    name: String,
    uri: String,
    registered: bool,
}

#[derive(Debug, Serialize)]
struct TaskReport {
    task_id: Uuid,
    key: String,
    kind: String,
    kind_zh: &'static str,
    client_id: String,
    client: String,
    due_on: NaiveDate,
    /// `done` once its record is in.
    state: String,
    call: Option<CallSummary>,
    record_id: Option<Uuid>,
}

#[derive(Debug, Serialize)]
struct CallSummary {
    call_id: Uuid,
    outcome: String,
    reason: Option<String>,
    recording: Option<RecordingSummary>,
}

#[derive(Debug, Serialize)]
struct RecordingSummary {
    id: Uuid,
    sha256: String,
    bytes: u64,
    duration_ms: u64,
    /// `sealed` in the spool.
    state: String,
    spool_path: PathBuf,
    archive_key: Option<String>,
    archive_path: Option<PathBuf>,
    retain_until: Option<String>,
    channels: Option<speech::Channels>,
    speech_ok: bool,
}

#[derive(Debug, Serialize)]
struct ArchiveReport {
    archived: u64,
    failures: u64,
    remaining: usize,
}

fn progress(what: &str) {
    eprintln!("huifang demo: {what}");
}

fn checkpoint(stop: &watch::Receiver<bool>) -> anyhow::Result<()> {
    if *stop.borrow() {
        bail!("stopped before the end");
    }
    Ok(())
}

async fn steps(
    ctx: &mut Ctx,
    dir: &std::path::Path,
    args: &DemoArgs,
    as_of: NaiveDate,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Report> {
    // 1. The directory, the data, the import.
    let layout = data::write(dir, as_of)?;
    progress(&format!("working in {}", layout.dir.display()));
    let cfg = Config::load(&layout.config)?;
    ctx.config = Some(layout.config.clone());
    let cal = cfg.load_calendar()?;
    let store = Store::open(&cfg.database_url()).await.context("opening the database")?;
    ctx.store = Some(store.clone());
    let imported = import_all(&store).await?;
    progress(&format!(
        "imported {} staff, {} clients, {} events (CSV with Chinese headers)",
        imported["staff"], imported["clients"], imported["events"]
    ));
    checkpoint(&stop)?;

    // 2. The rules make the tasks.
    let planned = plan_tasks(&store, &cfg, &cal, as_of).await?;
    progress(&format!("planned {planned} callback tasks as of {as_of}"));
    checkpoint(&stop)?;

    // 3. serve's machinery, in-process.
    let app = App::start(&cfg).await?;
    let sip = app.local;
    let archive = app.archive.clone();
    ctx.app = Some(app);
    progress(&format!("huifang is serving on {sip} (built-in registrar, SQLite, local archive)"));

    // 4. The agent's softphone registers.
    let staff = store.staff().await?;
    let agent_staff = staff
        .iter()
        .find(|s| s.staff_id == AGENT)
        .cloned()
        .context("the demo's agent is not in staff.csv")?;
    let agent_uri = Uri::parse(agent_staff.sip_uri.as_deref().unwrap_or_default())
        .map_err(|e| anyhow!("the agent's softphone URI: {e}"))?;
    let agent_prompt = prompt_from_bytes(data::AGENT_WAV, "agent.wav")?;
    let client_prompt = prompt_from_bytes(data::CLIENT_WAV, "client.wav")?;
    let mut agent_opts = Options::new(AGENT_USER, "127.0.0.1:0".parse().expect("an address"));
    agent_opts.registrar = Some(Uri::sip(None, &sip.ip().to_string(), Some(sip.port())));
    agent_opts.password = Some(layout.agent_password.clone());
    agent_opts.answer_after = Some(AGENT_ANSWER);
    agent_opts.prompt = agent_prompt.clone();
    agent_opts.play_after = AGENT_SPEAKS;
    agent_opts.record_dir = Some(layout.phones.join("agent"));
    let agent_phone = Softphone::start(agent_opts).await?;
    let registered = agent_phone.status();
    ctx.phones.push(agent_phone);
    let registered = wait_registered(registered, &stop).await?;
    if !registered {
        bail!("the agent's softphone did not register to huifang's registrar");
    }
    progress(&format!(
        "agent {} ({AGENT}): softphone {AGENT_USER} registered (digest SHA-256)",
        mask_name(&agent_staff.name)
    ));

    // Enough work for the shift? (The dialer itself checks avoidance, E7,
    // again before each call.)
    let today = as_of;
    let directory = Directory::new(staff.clone());
    let mut callable = 0;
    for task in store.tasks(&TaskFilter { state: Some("open".into()), ..TaskFilter::default() }).await? {
        let client = store.client(&task.client_id).await?;
        if may_call(&directory, &cfg.avoidance(), AGENT, &client, task.compliance, today).is_ok() {
            callable += 1;
        }
    }
    if callable < args.tasks {
        bail!("only {callable} open task(s) agent {AGENT} may make; asked for {}", args.tasks);
    }

    // 5. The clients' phones: each registers under its number and answers
    //    with the client's recorded speech.
    for (client_id, phone) in data::client_phones()? {
        let p = start_client_phone(&layout, sip, &client_id, &phone, &client_prompt).await?;
        ctx.phones.push(p);
    }
    for p in &ctx.phones[1..] {
        if !wait_registered(p.status(), &stop).await? {
            bail!("a client's softphone did not register to huifang's registrar");
        }
    }
    progress(&format!("{} client phones registered", ctx.phones.len() - 1));
    checkpoint(&stop)?;

    // 6. The shift: the agent logs in and the dialer works the queue; the
    //    agent submits each callback's record during the wrap-up (7).
    progress(&format!(
        "working {} tasks with the dialer (progressive, drill clock {} 10:00 Beijing)",
        args.tasks, as_of
    ));
    let dialer = ctx.app.as_mut().expect("started above").spawn_dialer(DialerSettings::from_config(&cfg)?);
    let hub = ctx.app.as_ref().expect("started above").hub.clone();
    let shift = dialing::Shift {
        store: &store,
        hub: &hub,
        cfg: &cfg,
        calendar: &cal,
        agent: AGENT,
        calls: args.tasks,
        dialer,
    };
    let ShiftReport { worked, notes } = shift.work(stop.clone()).await?;
    let records = worked.iter().filter(|w| w.record_id.is_some()).count();
    progress(&format!("submitted {records} callback records"));
    checkpoint(&stop)?;

    // 8. Archive, then verify everything.
    let mut uploader = Uploader::new(store.clone(), archive.clone(), UploaderConfig::from_config(&cfg));
    let drained = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut stop = stop.clone();
        tokio::select! {
            r = uploader.drain(deadline) => r.context("archiving")?,
            _ = stop.wait_for(|s| *s) => bail!("stopped before the end"),
        }
    };
    progress(&format!("archived {} recordings (checked by SHA-256)", drained.archived));
    let findings: Vec<String> = crate::ops::verify::verify(&store, &archive, None, true)
        .await?
        .findings
        .iter()
        .map(ToString::to_string)
        .collect();
    progress(&format!("verify --deep: {} finding(s)", findings.len()));

    // 9. The report, with the last checks.
    let mut problems = Vec::new();
    let mut tasks = Vec::new();
    for w in &worked {
        let task = &w.task;
        let client = store.client(&task.client_id).await?;
        let kind_zh = TaskKind::from_name(&task.kind).map(TaskKind::zh).unwrap_or("");
        let outcome = w.call.outcome.clone().unwrap_or_default();
        if outcome != "completed" {
            problems.push(format!(
                "task {}: call {} ended {outcome}{}",
                task.key,
                w.call.id,
                w.call.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            ));
        }
        let recording = match &w.recording {
            Some(r) => Some(
                recording_summary(&store, &archive, &cfg, r, &agent_prompt, &client_prompt, &mut problems)
                    .await?,
            ),
            None => None,
        };
        if task.state != "done" {
            problems.push(format!("task {} is {}, not done", task.key, task.state));
        }
        tasks.push(TaskReport {
            task_id: task.id,
            key: task.key.clone(),
            kind: task.kind.clone(),
            kind_zh,
            client_id: task.client_id.clone(),
            client: mask_name(&client.name),
            due_on: task.due_on,
            state: task.state.clone(),
            call: Some(CallSummary { call_id: w.call.id, outcome, reason: w.call.reason.clone(), recording }),
            record_id: w.record_id,
        });
    }
    if drained.remaining > 0 {
        problems.push(format!("{} recording(s) not archived", drained.remaining));
    }
    problems.extend(findings.iter().map(|f| format!("verify: {f}")));
    let example = tasks.iter().find_map(|t| {
        t.call.as_ref().and_then(|c| c.recording.as_ref()).map(|r| (t.client_id.clone(), r.id))
    });
    let config = layout.config.display().to_string();
    let commands = match example {
        Some((client, rec)) => vec![
            format!("huifang recordings --client {client} --config {config}"),
            format!("huifang fetch --recording {rec} --out call.wav --user R01 --config {config}"),
        ],
        None => Vec::new(),
    };
    Ok(Report {
        ok: problems.is_empty() && tasks.len() == args.tasks,
        dir: layout.dir.clone(),
        config: layout.config.clone(),
        imported,
        as_of,
        planned,
        sip,
        agent: AgentReport {
            staff_id: agent_staff.staff_id.clone(),
            name: mask_name(&agent_staff.name),
            uri: agent_uri.to_string(),
            registered,
        },
        tasks,
        dialer_notes: notes,
        archive: ArchiveReport {
            archived: drained.archived,
            failures: drained.failures,
            remaining: drained.remaining,
        },
        verify: findings,
        problems,
        commands,
    })
}

/// Imports the embedded staff, clients and events.
async fn import_all(store: &Store) -> anyhow::Result<BTreeMap<&'static str, u64>> {
    let now = Utc::now();
    let mut counts = BTreeMap::new();
    let mut ignore = |_: u64| {};
    let (text, enc) = import::decode(data::STAFF.to_vec(), Encoding::Auto)?;
    let rows = import::staff(&text, enc).context("staff.csv")?.rows;
    counts.insert("staff", store.import(&rows, false, now, &mut ignore).await?.rows);
    let (text, enc) = import::decode(data::CLIENTS.to_vec(), Encoding::Auto)?;
    let rows = import::clients(&text, enc).context("clients.csv")?.rows;
    counts.insert("clients", store.import(&rows, false, now, &mut ignore).await?.rows);
    let (text, enc) = import::decode(data::EVENTS.to_vec(), Encoding::Auto)?;
    let rows = import::events(&text, enc).context("events.csv")?.rows;
    counts.insert("events", store.import(&rows, false, now, &mut ignore).await?.rows);
    Ok(counts)
}

/// Runs the rules as of `as_of` with the demo's fixed sampling seed and
/// stores the tasks; returns how many there are.
async fn plan_tasks(
    store: &Store,
    cfg: &Config,
    cal: &crate::domain::calendar::Calendar,
    as_of: NaiveDate,
) -> anyhow::Result<u64> {
    let clients = store.clients().await?;
    let staff = store.staff().await?;
    let events = store.events().await?;
    let seeds = store.batch_seeds().await?;
    let facts = Facts { clients: &clients, staff: &staff, events: &events };
    let p = plan(facts, &cfg.rules, cal, as_of, &seeds, &mut || SEED).context("planning")?;
    let counts = store.save_plan(&p, Utc::now()).await?;
    Ok(counts.values().map(|(planned, _)| planned).sum())
}

async fn wait_registered(
    mut status: watch::Receiver<crate::softphone::Status>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    let mut stop = stop.clone();
    tokio::select! {
        r = tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.registered)) => {
            Ok(r.is_ok_and(|r| r.is_ok()))
        }
        _ = stop.wait_for(|s| *s) => bail!("stopped before the end"),
    }
}

/// A client's phone, registered under the client's number: answers each
/// call, says the client's phrase after the agent's question, hangs up.
async fn start_client_phone(
    layout: &data::Layout,
    sip: SocketAddr,
    client_id: &str,
    phone: &str,
    prompt: &Arc<[i16]>,
) -> anyhow::Result<Softphone> {
    let speech = Duration::from_secs_f64(prompt.len() as f64 / f64::from(crate::softphone::media::RATE));
    let mut o = Options::new(phone, "127.0.0.1:0".parse().expect("an address"));
    o.registrar = Some(Uri::sip(None, &sip.ip().to_string(), Some(sip.port())));
    o.password = Some(layout.client_password.clone());
    o.answer_after = Some(CLIENT_ANSWER);
    o.prompt = prompt.clone();
    o.play_after = CLIENT_SPEAKS;
    o.hangup_after = Some(CLIENT_SPEAKS + speech + Duration::from_millis(500));
    o.record_dir = Some(layout.phones.join(client_id));
    Ok(Softphone::start(o).await?)
}

/// A sealed recording: its archived copy, and the speech on its channels.
async fn recording_summary(
    store: &Store,
    archive: &Archive,
    cfg: &Config,
    r: &RecordingRow,
    agent: &[i16],
    client: &[i16],
    problems: &mut Vec<String>,
) -> anyhow::Result<RecordingSummary> {
    let row = store.get_recording(r.id).await?;
    let archived = store.archive_record(r.id).await?.archived;
    let mut s = RecordingSummary {
        id: r.id,
        sha256: row.sha256.clone().unwrap_or_default(),
        bytes: row.bytes.unwrap_or(0),
        duration_ms: row.duration_ms.unwrap_or(0),
        state: row.state.as_str().to_string(),
        spool_path: PathBuf::from(&row.path),
        archive_key: archived.as_ref().map(|a| a.key.clone()),
        archive_path: archived
            .as_ref()
            .filter(|_| matches!(archive, Archive::Local(_)))
            .map(|a| cfg.archive_path().join(&a.key)),
        retain_until: archived.as_ref().map(|a| crate::audit::time_text(a.retain_until)),
        channels: None,
        speech_ok: false,
    };
    if s.state != "sealed" {
        problems.push(format!("recording {} is {}, not sealed", r.id, s.state));
    }
    let Some(a) = archived else {
        problems.push(format!("recording {} is not archived", r.id));
        return Ok(s);
    };
    // The archived copy is the one that counts.
    let bytes = archive.get(&a.key).await.with_context(|| format!("reading {} from the archive", a.key))?;
    match hound::WavReader::new(Cursor::new(bytes)) {
        Ok(wav) if wav.spec().channels == 2 && wav.spec().sample_rate == crate::softphone::media::RATE => {
            let samples: Vec<i16> = wav.into_samples::<i16>().filter_map(Result::ok).collect();
            let ch = speech::channels(&samples, agent, client);
            s.speech_ok = ch.agent_left_client_right();
            s.channels = Some(ch);
            if !s.speech_ok {
                problems.push(format!(
                    "recording {}: want the agent's phrase left and the client's right, got {ch:?}",
                    r.id
                ));
            }
        }
        Ok(wav) => problems.push(format!("recording {}: not 8 kHz stereo ({:?})", r.id, wav.spec())),
        Err(e) => problems.push(format!("recording {}: not a WAV ({e})", r.id)),
    }
    Ok(s)
}

fn print_report(r: &Report) {
    let check = |ok: bool| if ok { "✓" } else { "✗" };
    println!();
    println!("huifang demo — 回访演示");
    println!("  directory  {}", r.dir.display());
    println!(
        "  imported   {} staff, {} clients, {} events; planned {} tasks as of {}",
        r.imported.get("staff").unwrap_or(&0),
        r.imported.get("clients").unwrap_or(&0),
        r.imported.get("events").unwrap_or(&0),
        r.planned,
        r.as_of
    );
    println!("  huifang    SIP {} (built-in registrar), SQLite, local archive", r.sip);
    println!(
        "  agent      {} ({}) at {} {}",
        r.agent.name,
        r.agent.staff_id,
        r.agent.uri,
        check(r.agent.registered)
    );
    println!();
    for (i, t) in r.tasks.iter().enumerate() {
        println!(
            "  {}. {} {} ({}), client {} {}, due {} — task {}",
            i + 1,
            t.kind_zh,
            t.kind,
            t.key,
            t.client_id,
            t.client,
            t.due_on,
            t.state
        );
        if let Some(c) = &t.call {
            println!(
                "     call {}: {}{}",
                c.call_id,
                c.outcome,
                c.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            );
            if let Some(rec) = &c.recording {
                println!(
                    "     recording {} — {:.1} s, {}",
                    rec.id,
                    rec.duration_ms as f64 / 1000.0,
                    rec.state
                );
                println!("       sha256   {}", rec.sha256);
                if let Some(p) = &rec.archive_path {
                    println!("       archive  {}", p.display());
                } else if let Some(k) = &rec.archive_key {
                    println!("       archive  {k}");
                }
                if let Some(u) = &rec.retain_until {
                    println!("       kept     until {u}");
                }
                if let Some(ch) = &rec.channels {
                    println!(
                        "       speech   agent on the left {:.2}, client on the right {:.2} {}",
                        ch.left_agent,
                        ch.right_client,
                        check(rec.speech_ok)
                    );
                }
            }
        }
        if let Some(id) = t.record_id {
            println!("     record {id} submitted");
        }
    }
    for n in &r.dialer_notes {
        println!("  dialer     {n}");
    }
    println!();
    println!(
        "  archive    {} archived and verified, {} still queued {}",
        r.archive.archived,
        r.archive.remaining,
        check(r.archive.remaining == 0)
    );
    println!("  verify     --deep: {} finding(s) {}", r.verify.len(), check(r.verify.is_empty()));
    for p in &r.problems {
        println!("  problem    {p}");
    }
    println!();
    if r.ok {
        println!("Everything checked out. Look around:");
    } else {
        println!("Something did not check out (above). What the demo left:");
    }
    for c in &r.commands {
        println!("  {c}");
    }
    if let Ok(exe) = std::env::current_exe() {
        println!("  (huifang is {}; from the repository: cargo run --release -- …)", exe.display());
    }
}
