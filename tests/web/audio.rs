//! Recording audio: ranges from the spool and the local archive, the
//! audit of plays and downloads, and the CLI agreeing with the API.

use huifang::ops::access::Role;

use crate::fixture::Site;

async fn ranges_serve_the_files_bytes(site: &Site, token: &str) {
    let url = site.url(&format!("/api/v1/recordings/{}/audio", site.recording));
    let n = site.wav.len();
    let whole = site.http.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers().get("accept-ranges").unwrap(), "bytes");
    assert_eq!(whole.headers().get("content-type").unwrap(), "audio/wav");
    assert!(whole.headers().get("content-encoding").is_none());
    assert_eq!(whole.bytes().await.unwrap().as_ref(), &site.wav[..]);
    for (h, a, b) in [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, n - 1), ("bytes=-500", n - 500, n - 1)] {
        let r = site.http.get(&url).bearer_auth(token).header("range", h).send().await.unwrap();
        assert_eq!(r.status(), 206, "{h}");
        assert_eq!(r.headers().get("content-range").unwrap().to_str().unwrap(), format!("bytes {a}-{b}/{n}"));
        assert_eq!(r.bytes().await.unwrap().as_ref(), &site.wav[a..=b], "{h}");
    }
    let r =
        site.http.get(&url).bearer_auth(token).header("range", format!("bytes={n}-")).send().await.unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers().get("content-range").unwrap().to_str().unwrap(), format!("bytes */{n}"));
}

#[tokio::test]
async fn audio_from_the_spool_serves_ranges_and_one_play_is_one_event() {
    let mut site = Site::new().await;
    let token = site.token(Role::Compliance).await;
    ranges_serve_the_files_bytes(&site, &token).await;
    site.stop().await; // writes the play
    let plays = site.audit("recording.played").await;
    assert_eq!(plays.len(), 1, "one play, however many range requests");
    let p = &plays[0];
    assert_eq!(p.actor, "compliance1");
    assert_eq!(p.subject, site.recording.to_string());
    assert_eq!(p.detail["source"], "spool");
    assert_eq!(p.detail["ranges"], serde_json::json!([format!("0-{}", site.wav.len() - 1)]));
    assert!(p.detail["requests"].as_u64().unwrap() >= 4);
    let rows = site.db.store.audit_rows(0).await.unwrap();
    huifang::audit::verify_chain(&rows).expect("the chain is whole");
}

#[tokio::test]
async fn audio_from_the_local_archive_after_drain_and_downloads_are_audited() {
    let site = Site::new().await;
    site.cli(&["archive", "drain", "--timeout", "60"]);
    let token = site.token(Role::Compliance).await;
    ranges_serve_the_files_bytes(&site, &token).await;
    let url = site.url(&format!("/api/v1/recordings/{}/audio?download=1", site.recording));
    let r = site.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cd = r.headers().get("content-disposition").unwrap().to_str().unwrap().to_string();
    assert!(cd.starts_with("attachment;"), "{cd}");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &site.wav[..]);
    let d = site.audit("recording.downloaded").await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].detail["source"], "archive");
    // the API's audit list shows the chain's events of this recording
    let r = site
        .http
        .get(site.url(&format!("/api/v1/audit?recording_id={}", site.recording)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let actions: Vec<&str> =
        v["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(
        actions.contains(&"recording.downloaded") && actions.contains(&"recording.uploaded"),
        "{actions:?}"
    );
    let seqs: Vec<i64> = v["items"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "chain order");
}

#[tokio::test]
async fn a_refused_play_is_audited_with_its_reason() {
    let site = Site::new().await;
    let agent = site.token(Role::Agent).await;
    let url = site.url(&format!("/api/v1/recordings/{}/audio", site.recording));
    let r = site.http.get(&url).bearer_auth(&agent).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let d = site.audit("recording.access_denied").await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].actor, "agent1");
    assert!(d[0].detail["reason"].as_str().unwrap().contains("agents_may_play"));
    // with agents_may_play, the agent plays their own call
    let site = Site::with(true).await;
    let agent = site.token(Role::Agent).await;
    let url = site.url(&format!("/api/v1/recordings/{}/audio", site.recording));
    assert_eq!(site.http.get(&url).bearer_auth(&agent).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_cli_and_the_api_list_the_same_calls_of_a_client() {
    let site = Site::new().await;
    let token = site.token(Role::Compliance).await;
    let api: serde_json::Value = site
        .http
        .get(site.url("/api/v1/clients/C1/calls"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cli: serde_json::Value =
        serde_json::from_str(&site.cli(&["recordings", "--client", "C1", "--json"])).unwrap();
    assert_eq!(&api["items"], &cli, "the same rows through both doors");
}

#[tokio::test]
async fn audio_from_rgw_passes_the_range_through_and_one_play_is_one_event() {
    let rgw = crate::common::s3::rgw();
    let bucket = rgw.new_lock_bucket("hf-web-audio").await;
    let mut site = Site::on_rgw(&rgw, &bucket).await;
    site.cli(&["archive", "drain", "--timeout", "60"]);
    // the spool's copy is gone: every byte comes from the bucket
    let spooled = site.db.store.get_recording(site.recording).await.unwrap().path;
    std::fs::remove_file(spooled).unwrap();
    let token = site.token(Role::Supervisor).await;
    ranges_serve_the_files_bytes(&site, &token).await;
    site.stop().await;
    let plays = site.audit("recording.played").await;
    assert_eq!(plays.len(), 1);
    assert_eq!(plays[0].actor, "supervisor1");
    assert_eq!(plays[0].detail["source"], "archive");
    assert_eq!(plays[0].detail["role"], "supervisor");
    let rows = site.db.store.audit_rows(0).await.unwrap();
    huifang::audit::verify_chain(&rows).expect("the chain is whole");
    // and `huifang verify` proves the chain and the recording afterwards
    let out = site.cli(&["verify", "--deep"]);
    assert!(out.contains("no findings"), "{out}");
}
