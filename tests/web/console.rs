//! The agent console in a real headless browser: Debian's `chromium`
//! driven by `chromedriver` over WebDriver (fantoccini), against `serve`
//! with real softphones and the dialer. Screenshots of each step go to
//! `target/screenshots/agent-console/` for a person to look at.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use huifang::domain::kinds::TaskKind;
use huifang::domain::records::{Form, checklist};

use crate::common::dialer::T;
use crate::floor::{Floor, WEB_PASSWORD};

/// `chromedriver` on a free port, killed when dropped.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    /// chromedriver and the browser it started (its own process group:
    /// a test that fails half-way leaves no browser behind).
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn chromedriver() -> Driver {
    let bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| crate::common::peer_missing("chromedriver", "scripts/install-peers.sh"));
    let port = crate::common::free_port_tcp();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let d = Driver { child, port };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10), "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    d
}

pub async fn browser(d: &Driver, lang: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1440,1100", "--autoplay-policy=no-user-gesture-required",
                     format!("--lang={lang}")],
            "prefs": {"intl.accept_languages": lang},
        }),
    );
    let conn = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(conn)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("a WebDriver session with chromium")
}

/// Saves a screenshot as `target/screenshots/{name}.png` (`name` may hold
/// a folder: `agent-console/01-login`).
pub async fn shot(c: &Client, name: &str) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots").join(format!("{name}.png"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(path, png).unwrap();
}

pub async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Polls until `css`'s text satisfies `f`; the time it took.
pub async fn wait_text(c: &Client, css: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> Instant {
    let t0 = Instant::now();
    loop {
        let t = text_of(c, css).await;
        if f(&t) {
            return Instant::now();
        }
        assert!(t0.elapsed() < timeout, "{css}: {t:?} after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_takes_a_call_and_submits_the_record_in_the_browser() {
    let (staff, clients) = crate::feed::book();
    let task = T { key: "complaint:E1", kind: TaskKind::Complaint, client: "C1", due: "2026-12-01" };
    let mut floor = Floor::start(&staff, &clients, &[task]).await;
    floor.phone("agent1", Duration::from_millis(500), None).await;
    floor.phone("13900000001", Duration::from_millis(300), Some(Duration::from_millis(2500))).await;
    let d = chromedriver();
    let c = browser(&d, "zh-CN").await;

    // no session: the login page
    c.goto(&format!("{}/agent", floor.base)).await.unwrap();
    c.wait().for_element(Locator::Id("login-form")).await.unwrap();
    assert!(c.current_url().await.unwrap().as_str().contains("/login?next="));
    shot(&c, "agent-console/01-login").await;
    c.find(Locator::Id("login")).await.unwrap().send_keys("agent1").await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys("wrong password").await.unwrap();
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#login-error", Duration::from_secs(5), |t| t.contains("错误")).await;
    c.find(Locator::Id("password")).await.unwrap().send_keys(WEB_PASSWORD).await.unwrap();
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("console")).await.unwrap();
    wait_text(&c, "#conn", Duration::from_secs(10), |t| t.contains("已连接")).await;
    wait_text(&c, "#softphone", Duration::from_secs(10), |t| t == "已注册").await;
    shot(&c, "agent-console/02-console-logged-out").await;

    // available: the dialer claims the task, the page pops up within a second
    c.find(Locator::Id("go-available")).await.unwrap().click().await.unwrap();
    let popped = wait_text(&c, "#c-client_id", Duration::from_secs(20), |t| t == "C1").await;
    let popped_at = chrono::Utc::now() - chrono::Duration::from_std(popped.elapsed()).unwrap();
    let offered = floor.db.store.feed_latest("A1", "offered").await.unwrap().expect("an offered event");
    let after = (popped_at - offered.at).to_std().unwrap_or_default();
    assert!(after < Duration::from_secs(1), "the screen-pop came {after:?} after the claim");
    assert_eq!(text_of(&c, "#t-kind").await, "投诉回访 (Complaint callback)");
    assert_eq!(text_of(&c, "#c-phone").await, "139****0001");
    shot(&c, "agent-console/03-offered").await;

    // the call: connected, then over and in wrap-up
    wait_text(&c, "#banner-text", Duration::from_secs(20), |t| t.contains("通话中")).await;
    shot(&c, "agent-console/04-connected").await;
    wait_text(&c, "#banner-text", Duration::from_secs(30), |t| t.contains("话后处理")).await;

    // the form: half filled, the page reloads, nothing is lost
    let questions: Vec<_> =
        checklist(Form::for_kind(TaskKind::Complaint)).iter().filter(|q| !q.free_text).collect();
    let (first, rest) = questions.split_first().unwrap();
    c.find(Locator::Id(&format!("q-{}-yes", first.id))).await.unwrap().click().await.unwrap();
    c.find(Locator::Id("notes")).await.unwrap().send_keys("客户确认投诉已处理").await.unwrap();
    c.refresh().await.unwrap();
    wait_text(&c, "#c-client_id", Duration::from_secs(10), |t| t == "C1").await;
    let kept = c.find(Locator::Id(&format!("q-{}-yes", first.id))).await.unwrap();
    assert_eq!(kept.prop("checked").await.unwrap().as_deref(), Some("true"), "the draft survived the reload");
    assert_eq!(
        c.find(Locator::Id("notes")).await.unwrap().prop("value").await.unwrap().as_deref(),
        Some("客户确认投诉已处理")
    );
    // submitting with answers missing: the error beside the question
    c.find(Locator::Id("submit-record")).await.unwrap().click().await.unwrap();
    let missing = format!("#err-answers\\.{}", rest[0].id);
    wait_text(&c, &missing, Duration::from_secs(5), |t| !t.is_empty()).await;
    shot(&c, "agent-console/05-form-error").await;
    for q in rest {
        c.find(Locator::Id(&format!("q-{}-yes", q.id))).await.unwrap().click().await.unwrap();
    }
    // answering the question takes its error away, before any submit
    wait_text(&c, &missing, Duration::from_secs(5), |t| t.is_empty()).await;
    c.find(Locator::Id("submit-record")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#form-ok", Duration::from_secs(10), |t| t.contains("已保存")).await;
    let stale = c.find_all(Locator::Css("#record-form .error, #form-error")).await.unwrap();
    for e in stale {
        assert_eq!(e.text().await.unwrap(), "", "no error is left beside a saved record");
    }
    shot(&c, "agent-console/06-saved").await;

    // the record is in the database
    let task = floor.db.store.task_by_key("complaint:E1").await.unwrap();
    assert_eq!(task.state, "done");
    let rec = floor.db.store.record_of_task(task.id).await.unwrap().expect("the record");
    assert_eq!((rec.agent_id.as_str(), rec.notes.as_deref()), ("A1", Some("客户确认投诉已处理")));
    assert_eq!(rec.call_id, task.last_call_id.map(|c| c.to_string()));

    // English by the switch
    c.goto(&format!("{}/agent?lang=en", floor.base)).await.unwrap();
    wait_text(&c, "#h-state", Duration::from_secs(5), |t| t == "My state").await;
    shot(&c, "agent-console/07-english").await;
    c.close().await.unwrap();
}

/// Issue 15 in the browser: the client asks to be called back at another
/// time (the task waits for then), and the agent calls the task now from
/// their list — through `serve`'s dialer, the screen-pop again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sets_a_call_back_and_then_calls_now_from_the_console() {
    let (staff, clients) = crate::feed::book();
    let task = T { key: "complaint:E1", kind: TaskKind::Complaint, client: "C1", due: "2026-12-01" };
    let mut floor = Floor::build(&staff, &clients, &[task], 0).await;
    floor.phone("agent1", Duration::from_millis(300), None).await;
    floor.phone("13900000001", Duration::from_millis(300), Some(Duration::from_millis(2000))).await;
    let d = chromedriver();
    let c = browser(&d, "zh-CN").await;
    c.goto(&format!("{}/agent", floor.base)).await.unwrap();
    c.wait().for_element(Locator::Id("login-form")).await.unwrap();
    c.find(Locator::Id("login")).await.unwrap().send_keys("agent1").await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys(WEB_PASSWORD).await.unwrap();
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("console")).await.unwrap();
    wait_text(&c, "#softphone", Duration::from_secs(10), |t| t == "已注册").await;
    c.find(Locator::Id("go-available")).await.unwrap().click().await.unwrap();
    // the dialer's call: the client answers, then says "call me tomorrow at three"
    wait_text(&c, "#c-client_id", Duration::from_secs(20), |t| t == "C1").await;
    wait_text(&c, "#banner-text", Duration::from_secs(20), |t| t.contains("结束") || t.contains("话后处理"))
        .await;
    c.execute(
        "const i = document.getElementById('callback-at'); i.value = '2026-12-08T15:00'; i.dispatchEvent(new Event('input'))",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Id("set-callback")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#form-ok", Duration::from_secs(5), |t| t.contains("已约定回拨")).await;
    let t = floor.db.store.task_by_key("complaint:E1").await.unwrap();
    assert_eq!(t.next_attempt_at.map(|x| x.to_rfc3339()), Some("2026-12-08T07:00:00+00:00".into()));
    // the task in the agent's list, with its next attempt; "call now" places the call
    wait_text(&c, "#my-tasks tbody", Duration::from_secs(10), |t| t.contains("投诉回访") && t.contains("C1"))
        .await;
    shot(&c, "agent-console/08-call-back-set").await;
    let before = floor.db.store.task_calls(t.id).await.unwrap().len();
    c.find(Locator::Css("#my-tasks button[data-call-now]")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#banner-text", Duration::from_secs(20), |t| t.contains("通话中")).await;
    wait_text(&c, "#c-client_id", Duration::from_secs(5), |t| t == "C1").await;
    shot(&c, "agent-console/09-called-now").await;
    let after = floor.db.store.task_calls(t.id).await.unwrap().len();
    assert_eq!(after, before + 1, "one more call of the task");
    c.close().await.unwrap();
}
