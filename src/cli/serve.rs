//! `huifang serve`: the daemon (SIP, dialer, uploader and, with an `[http]`
//! section, the web door).

use anyhow::Context;
use tracing::{info, warn};

use super::ServeArgs;
use super::app::App;
use crate::config::Config;
use crate::dialer::DialerSettings;
use crate::web::{WebServer, WebState};

/// Deadlines up to this many days ahead must fall in the calendar's years.
const CALENDAR_HORIZON_DAYS: i64 = 60;

/// Warns when the trading calendar ends before the deadlines of the next
/// [`CALENDAR_HORIZON_DAYS`] can be computed (they would fail then).
fn warn_if_calendar_ends_soon(cal: &crate::domain::calendar::Calendar) {
    use chrono::Datelike;
    let horizon = (chrono::Utc::now() + chrono::Duration::days(CALENDAR_HORIZON_DAYS)).year();
    if let Some(&last) = cal.years().keys().next_back()
        && last < horizon
    {
        warn!(
            last_year = last,
            "the trading calendar ends with {last}: deadlines after it cannot be computed; \
             update [calendar] holidays (or huifang) before the new year"
        );
    }
}

/// Loads the configuration, starts huifang (store, recovery, SIP endpoint,
/// uploader, dialer) and runs until SIGINT or SIGTERM, then shuts down:
/// the dialer first (calls finish within `dialer.shutdown_deadline_secs`),
/// then the uploader and the endpoint within `sip.shutdown_grace_ms`.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    // the dialer's settings (and the trading calendar) are checked before anything starts
    let dialer = if cfg.dialer.enabled { Some(DialerSettings::from_config(&cfg)?) } else { None };
    warn_if_calendar_ends_soon(&cfg.load_calendar()?);
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let mut app = App::start(&cfg).await?;
        app.spawn_uploader();
        match dialer {
            Some(settings) => {
                app.spawn_dialer(settings);
            }
            None => info!("dialer disabled (dialer.enabled = false)"),
        }
        let web = if cfg.http.enabled {
            let state =
                WebState::new(&cfg, app.services.store.clone(), app.archive.clone(), app.hub.clone())?
                    .with_endpoint(app.services.endpoint.clone())
                    .with_dialer(app.dialer_handle());
            Some(WebServer::start(&cfg, state).await?)
        } else {
            info!("web door disabled (no [http] section, or http.enabled = false)");
            None
        };
        // `huifang dial` on this configuration places its calls here
        let control =
            super::control::Control::start(&cfg.spool_path(), app.services.clone(), app.stopping()).await;
        info!(listen = %app.local, "huifang {} serving", env!("CARGO_PKG_VERSION"));
        super::shutdown_signal().await;
        info!("shutting down");
        if let Some(c) = control {
            c.stop();
        }
        if let Some(web) = web {
            // no new requests; those in flight finish; plays are audited
            web.shutdown(std::time::Duration::from_millis(cfg.sip.shutdown_grace_ms)).await;
        }
        app.shutdown().await?;
        info!("stopped");
        anyhow::Ok(())
    })
}
