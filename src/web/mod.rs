//! The web door inside `serve`: the JSON API under `/api/v1/`, its
//! OpenAPI description and browser, `/metrics`, `/healthz` and `/readyz`.
//!
//! Built as launchbadge's realworld-axum-sqlx is: one file per area
//! (`session.rs`, `recordings.rs`, `audit.rs`, `users.rs`, `system.rs`),
//! each with its handlers; one error type ([`error::ApiError`]) mapped to
//! RFC 9457 problem+json; authentication as an extractor
//! ([`auth::Auth`]): a handler that needs a person says so in its
//! signature. Handlers parse, call [`crate::ops`] and format — nothing a
//! person can do is written here.
//!
//! Every route is added through [`Routes::add`], which keeps the list the
//! route × role test walks ([`route_list`]): a route added without an entry
//! in that test's matrix fails it.

mod agents;
mod audit;
pub mod auth;
mod body;
mod calls;
mod clients;
mod desk;
mod error;
mod export;
mod feed;
mod holds;
mod metrics;
mod openapi;
mod pages;
mod quality;
mod recordings;
mod records;
mod reports;
mod session;
mod system;
mod tasks;
mod users;
mod wall;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode};
use axum::routing::MethodRouter;
use tokio::sync::watch;
use tracing::{info, warn};

pub use error::ApiError;
pub use metrics::Metrics;

use crate::archive::Archive;
use crate::config::{Config, HttpConfig};
use crate::domain::calendar::Calendar;
use crate::feed::Hub;
use crate::ops::audit::PlayLog;
use crate::ops::users::AuthSettings;
use crate::sip::endpoint::EndpointHandle;
use crate::store::Store;

/// What every handler shares.
#[derive(Clone)]
pub struct WebState {
    /// The database.
    pub store: Store,
    /// The archive (audio of archived recordings).
    pub archive: Archive,
    /// `[http]`.
    pub cfg: Arc<HttpConfig>,
    /// The whole configuration (rules, avoidance, records' deadlines).
    pub config: Arc<Config>,
    /// The trading calendar (reports, records' deadlines).
    pub calendar: Arc<Calendar>,
    /// Session and login numbers.
    pub auth: Arc<AuthSettings>,
    /// Plays in progress (one audit event each).
    pub plays: PlayLog,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The agents' event feeds.
    pub hub: Hub,
    /// The SIP endpoint, to tell whether an agent's softphone is
    /// registered (built-in registrar); none in tests of the door alone.
    pub endpoint: Option<EndpointHandle>,
    /// The dialer of this `serve`, for calls placed by hand.
    pub dialer: Option<crate::dialer::DialerHandle>,
    /// Turns true when the server stops: feeds close their WebSockets.
    pub stopping: watch::Receiver<bool>,
    stop: Arc<watch::Sender<bool>>,
}

impl WebState {
    /// The state for a configuration (its trading calendar is read now).
    pub fn new(
        cfg: &Config,
        store: Store,
        archive: Archive,
        hub: Hub,
    ) -> Result<WebState, crate::config::ConfigError> {
        let (stop, stopping) = watch::channel(false);
        Ok(WebState {
            store,
            archive,
            cfg: Arc::new(cfg.http.clone()),
            config: Arc::new(cfg.clone()),
            calendar: Arc::new(cfg.load_calendar()?),
            auth: Arc::new(AuthSettings::from_config(&cfg.http)),
            plays: PlayLog::default(),
            metrics: Arc::new(Metrics::default()),
            hub,
            endpoint: None,
            dialer: None,
            stopping,
            stop: Arc::new(stop),
        })
    }

    /// With the dialer, which places the calls asked for by hand
    /// (`POST /api/v1/calls`); `None` when it does not run here.
    pub fn with_dialer(mut self, dialer: Option<crate::dialer::DialerHandle>) -> WebState {
        self.dialer = dialer;
        self
    }

    /// With the SIP endpoint (whether softphones are registered).
    pub fn with_endpoint(mut self, endpoint: EndpointHandle) -> WebState {
        self.endpoint = Some(endpoint);
        self
    }
}

/// The routes as they are added: `(method, path)`.
pub struct Routes {
    list: Vec<(Method, &'static str)>,
    router: Router<WebState>,
}

impl Routes {
    fn new() -> Routes {
        Routes { list: Vec::new(), router: Router::new() }
    }

    /// Adds `handler` for `method` on `path`.
    fn add(mut self, method: Method, path: &'static str, handler: MethodRouter<WebState>) -> Routes {
        self.list.push((method, path));
        self.router = self.router.route(path, handler);
        self
    }
}

fn routes() -> Routes {
    use axum::routing::{delete, get, post};
    Routes::new()
        .add(Method::GET, "/healthz", get(system::healthz))
        .add(Method::GET, "/readyz", get(system::readyz))
        .add(Method::GET, "/metrics", get(system::metrics))
        .add(Method::GET, "/api/v1/openapi.json", get(openapi::document))
        .add(Method::POST, "/api/v1/session", post(session::login))
        .add(Method::GET, "/api/v1/session", get(session::whoami))
        .add(Method::DELETE, "/api/v1/session", delete(session::logout))
        .add(Method::GET, "/api/v1/clients/{client_id}/recordings", get(recordings::client_recordings))
        .add(Method::GET, "/api/v1/clients/{client_id}/calls", get(recordings::client_calls))
        .add(Method::GET, "/api/v1/recordings/{id}/audio", get(recordings::audio))
        .add(Method::GET, "/api/v1/recordings/{id}/waveform", get(recordings::waveform))
        .add(Method::GET, "/api/v1/calls/{id}", get(recordings::call))
        .add(Method::GET, "/api/v1/clients/{client_id}", get(clients::dossier))
        .add(Method::POST, "/api/v1/clients/{client_id}/reveal", post(clients::reveal))
        .add(Method::GET, "/api/v1/calls", get(clients::search))
        .add(Method::POST, "/api/v1/calls", post(calls::place))
        .add(Method::GET, "/api/v1/clients/{client_id}/export", get(export::client))
        .add(Method::GET, "/api/v1/calls/{id}/export", get(export::call))
        .add(Method::GET, "/api/v1/recordings/{id}/holds", get(holds::list))
        .add(Method::POST, "/api/v1/recordings/{id}/hold", post(holds::set))
        .add(Method::POST, "/api/v1/recordings/{id}/hold/release", post(holds::release))
        .add(Method::GET, "/api/v1/audit", get(audit::events))
        .add(Method::GET, "/api/v1/verify", get(reports::verify))
        .add(Method::GET, "/api/v1/reports/{what}", get(reports::get))
        .add(Method::GET, "/api/v1/reports/{what}/chart.svg", get(reports::chart))
        .add(Method::GET, "/api/v1/tasks", get(tasks::list))
        .add(Method::POST, "/api/v1/tasks/{id}/mark", post(tasks::mark))
        .add(Method::POST, "/api/v1/tasks/{id}/call-back", post(calls::call_back))
        .add(Method::POST, "/api/v1/records", post(records::submit))
        .add(Method::GET, "/api/v1/records", get(records::list))
        .add(Method::GET, "/api/v1/records/{id}", get(records::get))
        .add(Method::POST, "/api/v1/records/{id}/review", post(records::review))
        .add(Method::GET, "/api/v1/spot-checks", get(quality::queue))
        .add(Method::POST, "/api/v1/spot-checks/{record_id}", post(quality::check))
        .add(Method::GET, "/api/v1/follow-ups", get(quality::follow_ups))
        .add(Method::POST, "/api/v1/follow-ups/{id}", post(quality::step))
        .add(Method::GET, "/api/v1/agents/{staff_id}", get(agents::get))
        .add(Method::POST, "/api/v1/agents/{staff_id}/state", post(agents::change))
        .add(Method::GET, "/api/v1/agent", get(agents::own))
        .add(Method::POST, "/api/v1/agent/state", post(agents::own_state))
        .add(Method::GET, "/api/v1/status", get(agents::status))
        .add(Method::GET, "/api/v1/users", get(users::list))
        .add(Method::GET, "/ws/agent", get(feed::agent))
        .add(Method::GET, "/ws/supervisor", get(wall::supervisor))
        .add(Method::GET, "/", get(pages::home))
        .add(Method::GET, "/login", get(pages::login))
        .add(Method::GET, "/agent", get(pages::agent))
        .add(Method::GET, "/supervisor", get(desk::supervisor))
        .add(Method::GET, "/compliance", get(desk::compliance))
        .add(Method::GET, "/static/{file}", get(pages::asset))
}

/// Every `(method, path)` the API serves, the API browser's pages
/// included: what the route × role test walks.
pub fn route_list() -> Vec<(Method, &'static str)> {
    let mut list = routes().list;
    list.extend(openapi::BROWSER_ROUTES.iter().map(|p| (Method::GET, *p)));
    list
}

/// The whole application: routes, the API browser, limits, the origin
/// check and the safety headers, the request counter.
pub fn app(state: WebState) -> Router {
    let limit = state.cfg.max_body_kib * 1024;
    let timeout = Duration::from_secs(state.cfg.request_timeout_secs);
    routes()
        .router
        .merge(openapi::browser(state.clone()))
        .fallback(|| async { ApiError::NoRoute })
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::count))
        .with_state(state)
}

/// The web door, running.
pub struct WebServer {
    /// The address bound.
    pub local: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<()>,
    flusher: tokio::task::JoinHandle<()>,
    state: WebState,
}

impl WebServer {
    /// Binds `http.listen` (with TLS when `[http.tls]` is set) and serves
    /// until [`shutdown`](Self::shutdown).
    pub async fn start(cfg: &Config, state: WebState) -> anyhow::Result<WebServer> {
        let listen = cfg.http.listen;
        let std_listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("http.listen: cannot bind {listen}"))?;
        std_listener.set_nonblocking(true).context("http.listen: non-blocking socket")?;
        let local = std_listener.local_addr().context("http.listen: local address")?;
        let handle = axum_server::Handle::new();
        let service = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let task = match &cfg.http.tls {
            Some(tls) => {
                let (cert, key) = (cfg.base_dir.join(&tls.cert), cfg.base_dir.join(&tls.key));
                let rustls =
                    axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key).await.with_context(
                        || format!("http.tls: cannot load {} and {}", cert.display(), key.display()),
                    )?;
                let server = axum_server::from_tcp_rustls(std_listener, rustls)
                    .context("http.listen")?
                    .handle(handle.clone());
                tokio::spawn(async move { stopped(server.serve(service).await) })
            }
            None => {
                let server =
                    axum_server::from_tcp(std_listener).context("http.listen")?.handle(handle.clone());
                tokio::spawn(async move { stopped(server.serve(service).await) })
            }
        };
        let (plays, store) = (state.plays.clone(), state.store.clone());
        let flusher = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                plays.flush(&store, false).await;
            }
        });
        info!(%local, tls = cfg.http.tls.is_some(), "web door up");
        Ok(WebServer { local, handle, task, flusher, state })
    }

    /// Stops taking connections, lets requests in flight finish within
    /// `grace`, then writes the plays not yet audited.
    pub async fn shutdown(self, grace: Duration) {
        // the feeds say goodbye (1001) instead of holding the shutdown
        let _ = self.state.stop.send(true);
        self.handle.graceful_shutdown(Some(grace));
        if tokio::time::timeout(grace + Duration::from_secs(1), self.task).await.is_err() {
            warn!("web server did not stop in time");
        }
        self.flusher.abort();
        self.state.plays.flush_all(&self.state.store).await;
    }
}

/// Logs why the server stopped, if it was not asked to.
fn stopped(r: std::io::Result<()>) {
    if let Err(e) = r {
        warn!(error = %e, "web server stopped");
    }
}
