//! The supervisor's and the compliance officer's pages in headless
//! Chromium (issue 14), on a floor where agent A1 called client C1 three
//! times (two answered, one not). Screenshots under
//! `target/screenshots/desks/`.

use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::console::{browser, chromedriver, shot, text_of, wait_text};
use crate::export::three_attempts;
use crate::floor::WEB_PASSWORD;

async fn log_in(c: &Client, base: &str, page: &str, login: &str) {
    c.goto(&format!("{base}{page}")).await.unwrap();
    c.wait().for_element(Locator::Id("login-form")).await.unwrap();
    c.find(Locator::Id("login")).await.unwrap().send_keys(login).await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys(WEB_PASSWORD).await.unwrap();
    c.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("desk")).await.unwrap();
}

async fn sign_out(c: &Client) {
    c.find(Locator::Id("sign-out")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("login-form")).await.unwrap();
}

/// Clicks "approve" on the first record of the review queue.
async fn approve_first(c: &Client) {
    let b = c.find(Locator::Css("#reviews .review button[data-verdict=approved]")).await.unwrap();
    b.click().await.unwrap();
}

async fn rows(c: &Client, table: &str) -> usize {
    c.find_all(Locator::Css(&format!("#{table} tbody tr button[data-call]"))).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_plays_and_reviews_and_compliance_sees_it_all() {
    let (floor, _agent, recordings) = three_attempts().await;
    let d = chromedriver();
    let c = browser(&d, "zh-CN").await;

    // the supervisor finds A1's calls and plays one: the server answers 206, the time advances
    log_in(&c, &floor.base, "/supervisor", "super1").await;
    // the live wall: their agent A1 (logged out by now), the queue
    wait_text(&c, "#wall-agents tbody", Duration::from_secs(5), |t| t.contains("A1")).await;
    assert!(text_of(&c, "#wall-queue").await.contains("待拨"));
    c.find(Locator::Id("agent-id")).await.unwrap().send_keys("A1").await.unwrap();
    c.find(Locator::Id("calls-search")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#calls tbody", Duration::from_secs(10), |t| t.contains("completed")).await;
    let all = c.find_all(Locator::Css("#calls tbody tr")).await.unwrap().len();
    assert_eq!((all, rows(&c, "calls").await), (3, 2), "every attempt shows; two have recordings");
    c.find(Locator::Css("#calls tbody tr button[data-call]")).await.unwrap().click().await.unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let t = c.execute("return document.getElementById('player').currentTime", vec![]).await.unwrap();
        if t.as_f64().unwrap_or(0.0) > 0.5 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "the player's time does not advance");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let statuses = c
        .execute(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('/audio')).map(e => e.responseStatus)",
            vec![],
        )
        .await
        .unwrap();
    assert!(statuses.as_array().unwrap().iter().any(|s| s == 206), "{statuses}");
    // the waveform of both channels, drawn from the server's peaks; a click on it seeks
    let t0 = std::time::Instant::now();
    loop {
        let n = c
            .execute("return Number(document.getElementById('wave').dataset.points || 0)", vec![])
            .await
            .unwrap();
        if n.as_u64().unwrap_or(0) >= 200 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no waveform");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let inked = c
        .execute(
            "const w = document.getElementById('wave'); const d = w.getContext('2d').getImageData(0, 0, w.width, w.height).data;
             let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] && d[i + 2] > d[i] + 40) n++; return n",
            vec![],
        )
        .await
        .unwrap();
    assert!(inked.as_u64().unwrap() > 500, "the waveform is blank: {inked}");
    let wave = c.find(Locator::Id("wave")).await.unwrap();
    c.execute("document.getElementById('player').pause()", vec![]).await.unwrap();
    let before = c.execute("return document.getElementById('player').currentTime", vec![]).await.unwrap();
    // near the right end: 90% of the recording
    c.execute(
        "const w = document.getElementById('wave'); const r = w.getBoundingClientRect();
         w.dispatchEvent(new MouseEvent('click', {clientX: r.left + r.width * 0.9, clientY: r.top + 10, bubbles: true}))",
        vec![],
    )
    .await
    .unwrap();
    let after = c
        .execute("const p = document.getElementById('player'); return p.currentTime / p.duration", vec![])
        .await
        .unwrap();
    let share = after.as_f64().unwrap();
    assert!(
        (0.85..0.95).contains(&share),
        "seeking by the waveform: from {before} s to {share} of the length"
    );
    drop(wave);
    c.execute("document.getElementById('player').play()", vec![]).await.unwrap();
    // one channel: the agent's
    c.find(Locator::Css("#channel option[value=agent]")).await.unwrap().click().await.unwrap();
    shot(&c, "desks/01-supervisor-player").await;
    // the review queue: two records of A1; super1 approves one
    wait_text(&c, "#reviews", Duration::from_secs(10), |t| t.contains("A1")).await;
    let before = c.find_all(Locator::Css("#reviews .review")).await.unwrap().len();
    assert_eq!(before, 2);
    approve_first(&c).await;
    let t0 = std::time::Instant::now();
    while c.find_all(Locator::Css("#reviews .review")).await.unwrap().len() != 1 {
        assert!(t0.elapsed() < Duration::from_secs(10), "the approved record stays in the queue");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // this month's spot-check sample: ⌈10% of 2⌉ = 1 record
    wait_text(&c, "#spot-summary", Duration::from_secs(10), |t| t.contains("10%")).await;
    assert_eq!(c.find_all(Locator::Css("#spots .review")).await.unwrap().len(), 1);
    c.execute("document.getElementById('player').pause()", vec![]).await.unwrap();
    sign_out(&c).await;

    // a supervisor who made the record (staff A1) may not review it, nor spot-check it: the page says why
    log_in(&c, &floor.base, "/supervisor", "lead1").await;
    wait_text(&c, "#reviews", Duration::from_secs(10), |t| t.contains("A1")).await;
    approve_first(&c).await;
    wait_text(&c, "#reviews .notice", Duration::from_secs(10), |t| t.contains("本人制作的记录")).await;
    wait_text(&c, "#spots", Duration::from_secs(10), |t| t.contains("A1")).await;
    c.find(Locator::Css("#spots button[data-spot=pass]")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#spots .notice", Duration::from_secs(10), |t| t.contains("相互制衡")).await;
    shot(&c, "desks/02-own-record-refused").await;
    sign_out(&c).await;

    // the other supervisor checks it: passed, and it says so
    log_in(&c, &floor.base, "/supervisor", "super1").await;
    wait_text(&c, "#spots", Duration::from_secs(10), |t| t.contains("A1")).await;
    c.find(Locator::Css("#spots button[data-spot=pass]")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#spots", Duration::from_secs(10), |t| t.contains("已抽检")).await;
    c.execute("document.getElementById('h-spot').scrollIntoView()", vec![]).await.unwrap();
    shot(&c, "desks/05-spot-checks").await;
    sign_out(&c).await;

    // the play (of the newest call: the search lists newest first) is
    // written to the audit chain when it has been idle 10 s
    let rec = recordings[1].clone();
    crate::common::dialer::wait_for(Duration::from_secs(20), "the supervisor's play audited", || async {
        let rows = floor.db.store.audit_of(&rec, 0, 100).await.unwrap();
        rows.iter().any(|e| e.action == "recording.played").then_some(())
    })
    .await;

    // compliance: the client, every attempt, who played what; a number revealed; the export
    log_in(&c, &floor.base, "/compliance", "comp1").await;
    c.find(Locator::Id("client-id")).await.unwrap().send_keys("C1").await.unwrap();
    c.find(Locator::Id("client-search")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#d-client_id", Duration::from_secs(10), |t| t == "C1").await;
    assert_eq!(c.find_all(Locator::Css("#client-calls tbody tr")).await.unwrap().len(), 3);
    let timeline = text_of(&c, "#timeline").await;
    assert!(timeline.contains("播放录音") && timeline.contains("super1"), "{timeline}");
    assert!(timeline.contains("复核") && timeline.contains("M1"), "{timeline}");
    assert_eq!(text_of(&c, "#d-phone").await, "139****0001");
    c.find(Locator::Id("reveal-phone")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#d-phone", Duration::from_secs(5), |t| t == "13900000001").await;
    // a legal hold from the page; its release asked by comp1 waits for a second person, and says so
    c.find(Locator::Id("hold-reason")).await.unwrap().send_keys("regulator's inquiry").await.unwrap();
    c.find(Locator::Css("#client-calls button[data-hold=set]")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("#client-calls button[data-hold=release]")).await.unwrap();
    c.find(Locator::Css("#client-calls button[data-hold=release]")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("#client-calls button[data-hold=confirm]")).await.unwrap();
    assert!(text_of(&c, "#client-calls").await.contains("申请人：comp1"));
    c.find(Locator::Css("#client-calls button[data-hold=confirm]")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#hold-error", Duration::from_secs(5), |t| t.contains("双人规则")).await;
    assert!(text_of(&c, "#timeline").await.contains("申请解除保全"));
    let revealed = floor.db.store.audit_of("C1", 0, 100).await.unwrap();
    assert!(revealed.iter().any(|e| e.action == "client.revealed" && e.actor == "comp1"));
    shot(&c, "desks/03-compliance-client").await;
    // a report: the table, the chart drawn on the server, the CSV link
    c.find(Locator::Id("report-show")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#report-table thead", Duration::from_secs(10), |t| t.contains("COVERAGE")).await;
    let t0 = std::time::Instant::now();
    loop {
        let w = c
            .execute(
                "const i = document.getElementById('report-chart'); return i.complete ? i.naturalWidth : 0",
                vec![],
            )
            .await
            .unwrap();
        if w.as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "the chart did not load");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let csv = c.find(Locator::Id("report-csv")).await.unwrap().attr("href").await.unwrap().unwrap();
    assert!(csv.contains("format=csv"), "{csv}");
    c.execute("document.getElementById('h-reports').scrollIntoView()", vec![]).await.unwrap();
    shot(&c, "desks/04-compliance-report").await;
    let export = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.getElementById('export').href).then(async r =>
               done([r.status, r.headers.get('content-type'), (await r.arrayBuffer()).byteLength]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(export[0], 200, "{export}");
    assert_eq!(export[1], "application/zip");
    assert!(export[2].as_u64().unwrap() > 10_000, "{export}");
    c.close().await.unwrap();
}
