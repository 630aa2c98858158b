//! The running parts of huifang, assembled from the configuration: the
//! trace store, the recorder threads, start-up recovery, the RTP ports and
//! the SIP endpoint. `serve` and `dial` both start an [`App`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::archive::Archive;
use crate::archive::uploader::{Uploader, UploaderConfig, WorkerStatus};
use crate::call::machine::AutoAnswer;
use crate::call::recover::recover;
use crate::call::task::{CallServices, CallSettings};
use crate::config::Config;
use crate::dialer::{Dialer, DialerHandle, DialerSettings, DialerStatus};
use crate::feed::Hub;
use crate::media::g711::Codec;
use crate::media::ports::PortPool;
use crate::media::recorder::RecorderPool;
use crate::sip::endpoint::{Endpoint, EndpointConfig, bindings};
use crate::sip::msg::Uri;
use crate::store::Store;

/// huifang, started.
pub struct App {
    /// What calls need.
    pub services: CallServices,
    /// The SIP address bound.
    pub local: SocketAddr,
    /// The archive (checked at start: Object Lock and versioning).
    pub archive: Archive,
    /// The agents' event feeds.
    pub hub: Hub,
    stop: watch::Sender<bool>,
    endpoint: JoinHandle<anyhow::Result<()>>,
    uploader: Option<JoinHandle<()>>,
    uploader_cfg: UploaderConfig,
    grace: Duration,
    dialer: Option<(watch::Sender<bool>, JoinHandle<()>, Duration)>,
    dialer_handle: Option<DialerHandle>,
}

impl App {
    /// Opens the store, repairs the spool (E4), binds the endpoint and
    /// starts it (registering to the switch when one is configured).
    pub async fn start(cfg: &Config) -> anyhow::Result<App> {
        let store = Store::open(&cfg.database_url()).await.context("opening the database")?;
        // E5: no call is recorded unless the archive can keep it write-once
        let archive = Archive::from_config(cfg).context("the archive")?;
        if let Some(notice) = archive.notice() {
            warn!("{notice}");
        }
        match archive.check().await {
            Ok(()) => info!(archive = %archive.describe(), "archive checked"),
            // An outage must not stop calls: recordings wait in the spool and
            // the uploader drains them when the store is back (issue 4 §4).
            Err(crate::archive::ArchiveError::Unreachable(why)) => {
                warn!(archive = %archive.describe(), %why, "archive unreachable at start-up; recordings will wait in the spool")
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "the archive {} cannot keep recordings (run `huifang archive init`?)",
                        archive.describe()
                    )
                });
            }
        }
        let spool = cfg.spool_path();
        let recorders = RecorderPool::new(spool.clone(), cfg.media.recorder_threads)
            .with_context(|| format!("preparing the spool {}", spool.display()))?;
        let instance = cfg.instance_id();
        let recovered = recover(&store, &spool, Some(&instance)).await.context("start-up recovery")?;
        if recovered.recordings > 0 || recovered.calls > 0 || recovered.leases > 0 {
            warn!(
                recordings = recovered.recordings,
                calls = recovered.calls,
                leases = recovered.leases,
                "recovered from an unclean stop: interrupted recordings sealed, open calls closed, leases given back"
            );
        }
        let range = crate::config::parse_port_range(&cfg.media.rtp_ports).map_err(anyhow::Error::msg)?;
        let ports = PortPool::new(range).context("RTP port range")?;
        let ep_cfg = EndpointConfig::from_config(cfg)?;
        let mut endpoint = Endpoint::bind(ep_cfg).await?;
        let local = endpoint.local_addr();
        let handle = endpoint.handle();
        let (stop, stop_rx) = watch::channel(false);
        if endpoint.is_registrar() {
            // the phones registered before a restart are reachable at once
            let kept = bindings::load(&store, &instance).await;
            let (changes, changes_rx) = mpsc::unbounded_channel();
            endpoint.keep_bindings(kept, changes);
            tokio::spawn(bindings::keep(store.clone(), instance.clone(), changes_rx, stop.subscribe()));
        }
        let endpoint_task = tokio::spawn(endpoint.run(stop_rx));
        let hub = Hub::new(store.clone(), instance.clone());
        tokio::spawn(hub.clone().run(stop.subscribe()));
        let switch = cfg.switch()?;
        let advertised = handle.advertised();
        let (from, credentials) = match &switch {
            Some(sw) => {
                (Uri::sip(Some(&sw.user), &sw.domain, None), Some((sw.user.clone(), sw.password.clone())))
            }
            None => (Uri::sip(Some("huifang"), &advertised.ip().to_string(), Some(advertised.port())), None),
        };
        let c = &cfg.call;
        let settings = CallSettings {
            min_free_mb: cfg.spool.min_free_mb,
            auto_answer: match c.auto_answer.as_str() {
                "alert-info" => AutoAnswer::AlertInfo,
                "both" => AutoAnswer::Both,
                "none" => AutoAnswer::None,
                _ => AutoAnswer::CallInfo,
            },
            agent_ring: Duration::from_secs(c.agent_ring_secs),
            client_ring: Duration::from_secs(c.client_ring_secs),
            max_duration: Duration::from_secs(c.max_call_secs),
            codecs: c.codecs.iter().filter_map(|n| Codec::from_name(n)).collect(),
            telephone_event: c.telephone_event_pt,
            user_agent: cfg.sip.user_agent.clone(),
            credentials,
            from,
        };
        info!(%local, "SIP endpoint up");
        Ok(App {
            services: CallServices {
                endpoint: handle,
                store,
                recorders,
                ports,
                media_ip: cfg.media.address,
                settings,
                sealed: Arc::new(Notify::new()),
                instance,
            },
            local,
            archive,
            hub,
            stop,
            endpoint: endpoint_task,
            uploader: None,
            uploader_cfg: UploaderConfig::from_config(cfg),
            grace: Duration::from_millis(cfg.sip.shutdown_grace_ms),
            dialer: None,
            dialer_handle: None,
        })
    }

    /// Starts the uploader in the background (`serve`; `dial` leaves the
    /// queue to `huifang archive drain`), woken by every seal. It stops with
    /// the app, finishing the uploads in flight within the shutdown grace
    /// period.
    pub fn spawn_uploader(&mut self) -> watch::Receiver<WorkerStatus> {
        let uploader =
            Uploader::new(self.services.store.clone(), self.archive.clone(), self.uploader_cfg.clone())
                .with_nudge(self.services.sealed.clone());
        let status = uploader.status();
        self.uploader = Some(tokio::spawn(uploader.run(self.stop.subscribe(), self.grace)));
        status
    }

    /// Starts the dialer in the background (`serve`, when
    /// `dialer.enabled`). At shutdown it stops first: no new calls, the
    /// calls in progress finish within `dialer.shutdown_deadline_secs`,
    /// leases are given back; only then do the uploader and the endpoint
    /// stop.
    pub fn spawn_dialer(&mut self, settings: DialerSettings) -> watch::Receiver<DialerStatus> {
        let deadline = settings.shutdown_deadline;
        let dialer = Dialer::new(self.services.clone(), settings, self.hub.clone());
        let status = dialer.status();
        self.dialer_handle = Some(dialer.handle());
        let (stop, stop_rx) = watch::channel(false);
        let handle = tokio::spawn(dialer.run(stop_rx));
        self.dialer = Some((stop, handle, deadline));
        status
    }

    /// Where calls placed by hand go (`POST /api/v1/calls`), when the
    /// dialer runs.
    pub fn dialer_handle(&self) -> Option<DialerHandle> {
        self.dialer_handle.clone()
    }

    /// A receiver that turns true when the app is asked to stop.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Asks everything to stop (calls end as interrupted, the endpoint
    /// unregisters).
    pub fn request_stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits up to `timeout` until registered to the switch; `true` when
    /// registered or when there is no switch.
    pub async fn wait_registered(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.services.endpoint.registered().await {
                None | Some(true) => return true,
                Some(false) if tokio::time::Instant::now() >= deadline => return false,
                Some(false) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Stops the dialer, if one runs: no new calls, the calls in progress
    /// get `dialer.shutdown_deadline_secs` and then end as interrupted,
    /// leases are given back. [`shutdown`](Self::shutdown) does it first;
    /// call it alone to stop the calls while the rest (the registrar, the
    /// uploader) keeps running.
    pub async fn stop_dialer(&mut self) {
        if let Some((stop, handle, deadline)) = self.dialer.take() {
            let _ = stop.send(true);
            // the calls get the deadline; hanging up and sealing get a little more
            if tokio::time::timeout(deadline + self.grace + Duration::from_secs(5), handle).await.is_err() {
                warn!("dialer did not stop in time; its leases expire by themselves");
            }
        }
    }

    /// Stops the dialer, then the uploader and the endpoint, each within
    /// its grace period.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop_dialer().await;
        let _ = self.stop.send(true);
        if let Some(uploader) = self.uploader
            && tokio::time::timeout(self.grace + Duration::from_secs(1), uploader).await.is_err()
        {
            warn!("uploader did not stop in time; queued uploads resume at the next start");
        }
        match tokio::time::timeout(self.grace + Duration::from_secs(1), self.endpoint).await {
            Ok(res) => res.context("endpoint task")?,
            Err(_) => {
                warn!("shutdown deadline passed; exiting anyway");
                Ok(())
            }
        }
    }
}
