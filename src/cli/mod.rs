//! The command line: `huifang <command>`.
//!
//! Each command lives in its own file and returns `anyhow::Result`; `main`
//! maps a [`crate::config::ConfigError`] to exit code 2 and any other error
//! to 1.

mod agent;
pub mod app;
mod archive;
pub mod control;
mod demo;
mod dial;
mod export;
mod fetch;
mod hold;
mod import;
mod output;
mod plan;
mod record;
mod recordings;
mod reindex;
mod report;
mod serve;
mod softphone;
mod status;
mod task;
mod tasks;
mod user;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// huifang (回访): recorded client callbacks for brokerage call centers.
#[derive(Debug, Parser)]
#[command(name = "huifang", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole job on a fresh machine: import sample data, plan, call
    /// through huifang's own softphones, record, archive, verify; print a
    /// report (exit 0 when everything checked out).
    Demo(DemoArgs),
    /// Run the daemon: SIP endpoint, registration to the switch or the
    /// built-in registrar, until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Place one recorded callback call: ring the agent, then the client,
    /// bridge and record; print one JSON line; exit 0 only when the call
    /// was answered and its recording sealed.
    Dial(DialArgs),
    /// The archive: upload what is queued (`drain`), create a bucket (`init`).
    Archive(ArchiveArgs),
    /// Legal hold on a recording: `set`, or `release` (two people).
    Hold(HoldArgs),
    /// Check every recording against the database and the archive, and the
    /// audit chain; one line per finding; non-zero exit on any finding.
    Verify(VerifyArgs),
    /// Rebuild the recordings index from the archive's manifests alone.
    Reindex(ConfigArg),
    /// List every call and recording of a client.
    Recordings(RecordingsArgs),
    /// Download a recording, check its SHA-256, write an audit event.
    Fetch(FetchArgs),
    /// An evidence export of a client (or a call) as a zip an inspector
    /// checks offline; `export verify FILE` checks one.
    Export(ExportArgs),
    /// Import clients, staff or events from a CSV export (all or nothing
    /// per file; re-importing changes nothing).
    Import(ImportArgs),
    /// Create the callback tasks the rules demand as of a day (planning
    /// twice creates nothing new); print a summary per kind.
    Plan(PlanArgs),
    /// Callback records: `submit` after a callback, `review` by someone
    /// else, `followup` to move a follow-up forward.
    Record(RecordArgs),
    /// Reports: coverage, overdue tasks, follow-ups past their deadlines,
    /// the monthly report to head office.
    Report(ReportArgs),
    /// List callback tasks.
    Tasks(TasksArgs),
    /// Agent sessions: `login`, `logout`, `pause`, `resume` (an agent is
    /// offered calls only while logged in and available).
    Agent(AgentArgs),
    /// One callback task: `mark` it as a wrong number or a refusal.
    Task(TaskArgs),
    /// What the dialers are doing: instances, agents, calls in progress,
    /// the queue (from the database: works against running `serve`s).
    Status(StatusArgs),
    /// A SIP softphone on huifang's own stack: registers, answers (or
    /// dials), plays a WAV into each call, records what it hears; one JSON
    /// line per call.
    Softphone(SoftphoneArgs),
    /// The people who use the web door: `add`, `passwd`, `disable`,
    /// `list`, `token` (an API token, printed once), `revoke`.
    User(UserArgs),
}

/// Arguments of `user`.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: UserAction,
    /// Who does it (for the audit log; default: the login name).
    #[arg(long, global = true)]
    pub by: Option<String>,
    /// Configuration file.
    #[arg(long, short, global = true, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add a user; the password is read from standard input.
    Add {
        /// The login.
        login: String,
        /// A role: agent, supervisor, compliance, admin, monitor (repeat).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The staff row an agent works as.
        #[arg(long)]
        staff_id: Option<String>,
        /// A branch a supervisor supervises (repeat).
        #[arg(long = "branch")]
        branches: Vec<String>,
        /// Read the password from standard input (required).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (read from standard input); their sessions end.
    Passwd {
        /// The login.
        login: String,
        /// Read the password from standard input (required).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: sessions end, tokens are revoked (users are never deleted).
    Disable {
        /// The login.
        login: String,
    },
    /// List the users.
    List,
    /// Make an API token (printed once, alone on stdout).
    Token {
        /// Whose token.
        login: String,
        /// A role the token carries (one the user holds; repeat).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Days until it expires.
        #[arg(long, default_value_t = 90)]
        expires_days: u32,
        /// What it is for.
        #[arg(long)]
        label: Option<String>,
    },
    /// Revoke an API token.
    Revoke {
        /// The token's id (printed when it was made).
        token_id: String,
    },
}

/// Output formats of listings and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array.
    Json,
}

/// What `import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportWhat {
    /// Clients (natural key `client_id`).
    Clients,
    /// Staff, agents included (natural key `staff_id`).
    Staff,
    /// Events (natural key `event_id`).
    Events,
}

/// Arguments of `import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// What the file holds.
    #[arg(value_enum)]
    pub what: ImportWhat,
    /// The CSV file (header contract: docs/IMPORT.md).
    pub file: PathBuf,
    /// Check and count, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// `auto` (BOM, then UTF-8, else GBK), `utf-8` or `gbk`.
    #[arg(long, default_value = "auto")]
    pub encoding: String,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Plan as of this day (YYYY-MM-DD); default: today (UTC+8).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Show what would be created, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: RecordAction,
}

/// `record` subcommands.
#[derive(Debug, Subcommand)]
pub enum RecordAction {
    /// Submit the record of a callback; closes its task.
    Submit(SubmitArgs),
    /// Review a submitted record (never by its author).
    Review(ReviewArgs),
    /// Move a follow-up forward: answered, then resolved.
    Followup(FollowupArgs),
    /// Print a form's checklist (the question ids `--answer` takes).
    Checklist(ChecklistArgs),
}

/// Arguments of `record submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The task (its id, or its key such as `new_account:C0001`).
    #[arg(long)]
    pub task: String,
    /// The agent who made the callback (staff id).
    #[arg(long)]
    pub agent: String,
    /// reached, unreachable, refused or wrong_number.
    #[arg(long, default_value = "reached")]
    pub outcome: String,
    /// An answer, `QUESTION=yes|no|text`; repeat for each question
    /// (`huifang record checklist --kind K` lists them).
    #[arg(long = "answer", value_name = "QUESTION=ANSWER")]
    pub answers: Vec<String>,
    /// Problems found (opens a follow-up).
    #[arg(long)]
    pub problems: Option<String>,
    /// Notes on the callback (备注).
    #[arg(long)]
    pub notes: Option<String>,
    /// phone, face_to_face, letter, email, questionnaire or sms.
    #[arg(long, default_value = "phone")]
    pub method: String,
    /// The recorded call (a call id printed by `dial`).
    #[arg(long)]
    pub call: Option<String>,
    /// Day of the callback (YYYY-MM-DD); default: today (UTC+8).
    #[arg(long)]
    pub on: Option<String>,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `record review`.
#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// The record id.
    #[arg(long)]
    pub record: String,
    /// The reviewer (staff id; never the record's author).
    #[arg(long)]
    pub reviewer: String,
    /// Send the record back instead of approving it.
    #[arg(long)]
    pub r#return: bool,
    /// A note.
    #[arg(long)]
    pub note: Option<String>,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `record followup`.
#[derive(Debug, clap::Args)]
pub struct FollowupArgs {
    /// The follow-up id.
    #[arg(long)]
    pub id: String,
    /// The client has the final answer (else: the department answered).
    #[arg(long)]
    pub resolved: bool,
    /// Day (YYYY-MM-DD); default: today (UTC+8).
    #[arg(long)]
    pub on: Option<String>,
    /// A note.
    #[arg(long)]
    pub note: Option<String>,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `record checklist`.
#[derive(Debug, clap::Args)]
pub struct ChecklistArgs {
    /// A task kind, e.g. `new_account`.
    #[arg(long)]
    pub kind: String,
}

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportWhat {
    /// Tasks due in the month per kind and branch: done against planned.
    Coverage,
    /// Open tasks past their due date.
    Overdue,
    /// Follow-ups past their deadlines (2 and 15 business days).
    Followups,
    /// The monthly report a branch sends to head office.
    Monthly,
}

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    pub what: ReportWhat,
    /// The month (YYYY-MM); default: this month (coverage) or last month
    /// (monthly).
    #[arg(long)]
    pub month: Option<String>,
    /// The day the report is made for (YYYY-MM-DD); default: today (UTC+8).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `tasks`.
#[derive(Debug, clap::Args)]
pub struct TasksArgs {
    /// open, done or closed.
    #[arg(long)]
    pub status: Option<String>,
    /// A task kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// A client id.
    #[arg(long)]
    pub client: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// What `agent` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AgentAction {
    /// Start working: available for calls.
    Login,
    /// Stop working.
    Logout,
    /// Stop taking calls for a while (`--reason`).
    Pause,
    /// Take calls again.
    Resume,
}

/// Arguments of `agent`.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// What to do.
    #[arg(value_enum)]
    pub action: AgentAction,
    /// The agent's staff id.
    pub staff_id: String,
    /// Why (kept in the agent's trace).
    #[arg(long)]
    pub reason: Option<String>,
    /// Who does it (a staff id; default: the agent).
    #[arg(long)]
    pub by: Option<String>,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `task`.
#[derive(Debug, clap::Args)]
pub struct TaskArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TaskAction,
}

/// `task` subcommands.
#[derive(Debug, Subcommand)]
pub enum TaskAction {
    /// Close an open task: the number is not the client's, or the client
    /// refuses the callback.
    Mark(MarkArgs),
}

/// How a task is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MarkAs {
    /// The number is not the client's.
    WrongNumber,
    /// The client refuses the callback.
    Refused,
}

/// Arguments of `task mark`.
#[derive(Debug, clap::Args)]
pub struct MarkArgs {
    /// The task (its id, or its key such as `new_account:C0001`).
    pub task: String,
    /// `wrong-number` or `refused`.
    #[arg(value_enum)]
    pub outcome: MarkAs,
    /// Who marks it (a staff id).
    #[arg(long)]
    pub by: String,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Output format (table or json).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Just `--config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `archive`.
#[derive(Debug, clap::Args)]
pub struct ArchiveArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ArchiveAction,
}

/// `archive` subcommands.
#[derive(Debug, Subcommand)]
pub enum ArchiveAction {
    /// Upload and verify everything queued, then exit (0 when the queue is
    /// empty and every upload verified).
    Drain(DrainArgs),
    /// Create the configured bucket with Object Lock and versioning.
    Init(ConfigArg),
}

/// Arguments of `archive drain`.
#[derive(Debug, clap::Args)]
pub struct DrainArgs {
    /// Give up (exit 1) when the queue is not empty after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `hold`.
#[derive(Debug, clap::Args)]
pub struct HoldArgs {
    /// `set` or `release`.
    #[command(subcommand)]
    pub action: HoldAction,
}

/// `hold` subcommands.
#[derive(Debug, Subcommand)]
pub enum HoldAction {
    /// Put a recording under legal hold.
    Set(HoldTarget),
    /// Release a legal hold: the first call asks, a second, different user
    /// confirms.
    Release(HoldTarget),
}

/// Which recording, why, and who.
#[derive(Debug, clap::Args)]
pub struct HoldTarget {
    /// The recording id.
    #[arg(long)]
    pub recording: String,
    /// Why (kept in the audit log).
    #[arg(long)]
    pub reason: String,
    /// Who.
    #[arg(long)]
    pub user: String,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Only calls started on or after this date (YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    /// Download every object and re-hash it.
    #[arg(long)]
    pub deep: bool,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `recordings`.
#[derive(Debug, clap::Args)]
pub struct RecordingsArgs {
    /// The client's id.
    #[arg(long)]
    pub client: String,
    /// From this date (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<String>,
    /// Up to this date (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// The recording id.
    #[arg(long)]
    pub recording: String,
    /// Where to write the file.
    #[arg(long)]
    pub out: PathBuf,
    /// Who fetches it (for the audit log; default: the login name).
    #[arg(long)]
    pub user: Option<String>,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `export`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ExportArgs {
    /// `verify FILE`: check an export offline.
    #[command(subcommand)]
    pub action: Option<ExportAction>,
    /// Everything about this client.
    #[arg(long)]
    pub client: Option<String>,
    /// Or this one call (its id).
    #[arg(long)]
    pub call: Option<String>,
    /// Calls on or after this day (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<String>,
    /// Calls on or before this day (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<String>,
    /// Where to write the zip.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Who exports (for the audit log; default: the login name).
    #[arg(long)]
    pub user: Option<String>,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// What `export` does besides exporting.
#[derive(Debug, clap::Subcommand)]
pub enum ExportAction {
    /// Check an export offline (what its verify.py does): exit 0 when
    /// everything holds, else name the file at fault.
    Verify {
        /// The export (zip).
        file: PathBuf,
    },
}

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `dial`.
#[derive(Debug, clap::Args)]
pub struct DialArgs {
    /// The agent's softphone, e.g. `sip:agent1@127.0.0.1:5060`.
    #[arg(long)]
    pub agent: String,
    /// The client's phone, e.g. `sip:13800000000@127.0.0.1:5060`.
    #[arg(long)]
    pub client: String,
    /// The client's id in the brokerage's systems (stored with the call).
    #[arg(long)]
    pub client_id: Option<String>,
    /// The callback task this call works on.
    #[arg(long)]
    pub task_id: Option<String>,
    /// The callback kind (decides the retention, e.g. `new_account`).
    #[arg(long)]
    pub kind: Option<String>,
    /// Longest conversation in seconds (default: `call.max_call_secs`).
    #[arg(long)]
    pub max_seconds: Option<u64>,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Work in this directory (it must not exist or be empty); default: a
    /// new directory under the system's temporary directory. Either way it
    /// is kept, with the database, the archive and the recordings.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// How many tasks the agent works (one call each).
    #[arg(long, default_value_t = 3)]
    pub tasks: usize,
    /// Plan as of this day (YYYY-MM-DD); the sample data describes 2026-11-27.
    #[arg(long, default_value = "2026-11-27")]
    pub as_of: String,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Log what huifang does (level info) on stderr.
    #[arg(long)]
    pub verbose: bool,
    /// Afterwards keep huifang running with its web pages (`/agent`), the
    /// dialer and the phones, with an agent, a supervisor and a compliance
    /// account (printed); until Ctrl-C.
    #[arg(long)]
    pub web: bool,
    /// With `--web`: where the pages listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: std::net::SocketAddr,
}

/// Arguments of `softphone`.
#[derive(Debug, clap::Args)]
pub struct SoftphoneArgs {
    /// SIP address to listen on; RTP binds to its IP. Port 0: any.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// SIP over `udp` or `tcp` (TCP: a listener on --listen, and one
    /// connection per peer — the registrar's, reused for incoming calls).
    #[arg(long, default_value = "udp", value_parser = ["udp", "tcp"])]
    pub transport: String,
    /// Register here, e.g. `sip:127.0.0.1:5070` (an IP address).
    #[arg(long)]
    pub registrar: Option<String>,
    /// User name: address of record, Contact and digest user.
    #[arg(long, default_value = "softphone")]
    pub user: String,
    /// Name of the environment variable that holds the digest password.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Domain of the address of record (default: the registrar's host).
    #[arg(long)]
    pub domain: Option<String>,
    /// Registration lifetime asked for, seconds.
    #[arg(long, default_value_t = 600)]
    pub expires: u32,
    /// Answer incoming calls after this many seconds.
    #[arg(long, default_value_t = 0.0)]
    pub answer_after: f64,
    /// Dial this URI instead of waiting for calls (one call, or --calls N
    /// one after the other); incoming calls are then refused.
    #[arg(long)]
    pub dial: Option<String>,
    /// Hang up this many seconds after the answer (default: when the
    /// other side does).
    #[arg(long)]
    pub hangup_after: Option<f64>,
    /// WAV to play into each call (8000 Hz mono 16-bit; default silence).
    #[arg(long)]
    pub play: Option<PathBuf>,
    /// Play the WAV in a loop (default: once, then silence).
    #[arg(long = "loop")]
    pub looped: bool,
    /// Seconds of silence before the WAV starts, from the answer.
    #[arg(long, default_value_t = 0.0)]
    pub play_after: f64,
    /// Record what each call hears into a WAV in this directory.
    #[arg(long)]
    pub record_dir: Option<PathBuf>,
    /// Exit after this many calls.
    #[arg(long)]
    pub calls: Option<u32>,
    /// Exit after this many seconds.
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Codecs in order of preference: PCMU, PCMA.
    #[arg(long, value_delimiter = ',', default_value = "PCMU,PCMA")]
    pub codecs: Vec<String>,
    /// Log level (RUST_LOG wins).
    #[arg(long, default_value = "warn")]
    pub log: String,
}

/// How a command ended.
pub enum Exit {
    /// Exit code 0.
    Ok,
    /// Exit code 1, the command already said why.
    Unsuccessful,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(args).map(|()| Exit::Ok),
        Command::Dial(args) => dial::run(args).map(|r| match r {
            dial::DialResult::Success => Exit::Ok,
            dial::DialResult::Unsuccessful => Exit::Unsuccessful,
        }),
        Command::Archive(args) => archive::run(args),
        Command::Hold(args) => hold::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Reindex(args) => reindex::run(args),
        Command::Recordings(args) => recordings::run(args),
        Command::Fetch(args) => fetch::run(args),
        Command::Export(args) => export::run(args),
        Command::Import(args) => import::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Record(args) => record::run(args),
        Command::Report(args) => report::run(args),
        Command::Tasks(args) => tasks::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Task(args) => task::run(args),
        Command::Status(args) => status::run(args),
        Command::Softphone(args) => softphone::run(args),
        Command::User(args) => user::run(args),
    }
}

/// Sets up logging on stderr: `RUST_LOG` if set, else the configured level.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
