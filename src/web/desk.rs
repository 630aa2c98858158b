//! The supervisor's and the compliance officer's pages: `/supervisor`
//! (calls by agent or client, the player, the records to review) and
//! `/compliance` (a client's dossier in time order with who accessed each
//! recording, reveals, holds, the evidence export, verify). Rendered like
//! the agent console (`pages.rs`); `assets/desk.js` drives both through
//! the API.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::WebState;
use super::error::ApiError;
use super::pages::{Lang, esc, gate, header_bar, html, page};
use crate::ops::access::Role;

fn player(lang: Lang) -> String {
    let t = |k| lang.t(k);
    format!(
        r#"<section class="card" id="player-card" hidden aria-labelledby="h-player">
  <h2 id="h-player">{player} · <span id="p-call"></span></h2>
  <audio id="player" controls preload="none"></audio>
  <canvas id="wave" class="wave" tabindex="0" role="slider" aria-label="{wave}" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0"></canvas>
  <p class="muted small">{wave_help}</p>
  <div class="field"><label for="channel">{listen}</label>
    <select id="channel"><option value="both">{both}</option><option value="agent">{agent_only}</option>
    <option value="client">{client_only}</option></select></div>
  <dl class="facts">
    <dt>SHA-256</dt><dd id="p-sha" class="hash"></dd>
    <dt>{archived_l}</dt><dd id="p-archived"></dd>
    <dt>{retain_until}</dt><dd id="p-retain"></dd>
    <dt>{legal_hold}</dt><dd id="p-hold"></dd>
  </dl>
</section>"#,
        player = t("player"),
        wave = t("wave"),
        wave_help = t("wave_help"),
        listen = t("listen"),
        both = t("both"),
        agent_only = t("agent_only"),
        client_only = t("client_only"),
        archived_l = t("col_recording"),
        retain_until = t("retain_until"),
        legal_hold = t("legal_hold"),
    )
}

fn calls_table(lang: Lang, id: &str) -> String {
    let t = |k| lang.t(k);
    format!(
        r#"<table class="calls" id="{id}"><thead><tr><th>{time}</th><th>{agent}</th><th>{client}</th><th>{outcome}</th>
<th>{duration}</th><th>{rec}</th></tr></thead><tbody></tbody></table>"#,
        time = t("col_time"),
        agent = t("col_agent"),
        client = t("col_client"),
        outcome = t("col_outcome"),
        duration = t("col_duration"),
        rec = t("col_recording"),
    )
}

fn client_form(lang: Lang) -> String {
    format!(
        r#"<form id="client-form" class="inline"><div class="field"><label for="client-id">{client_id}</label>
  <input type="text" id="client-id" name="client_id" required></div>
  <button class="btn primary" type="submit" id="client-search">{search}</button></form>
<p class="notice bad" id="client-error" role="alert"></p>"#,
        client_id = lang.t("client_id"),
        search = lang.t("search"),
    )
}

fn kind_options(lang: Lang) -> String {
    crate::domain::kinds::TaskKind::ALL
        .iter()
        .map(|k| {
            let label = if lang == Lang::En { k.as_str() } else { k.zh() };
            format!(r#"<option value="{}">{}</option>"#, k.as_str(), esc(label))
        })
        .collect()
}

fn outcome_options() -> String {
    crate::store::OUTCOMES.iter().map(|o| format!("<option>{o}</option>")).collect()
}

/// `/supervisor`.
pub async fn supervisor(State(s): State<WebState>, req: Request) -> Result<Response, ApiError> {
    let (lang, asked, p) =
        match gate(&s, req, "/supervisor", "title_supervisor", |p| p.has(Role::Supervisor)).await? {
            Ok(ok) => ok,
            Err(r) => return Ok(r),
        };
    let t = |k| lang.t(k);
    let body = format!(
        r#"{header}
<main id="desk" data-page="supervisor" data-staff="{staff}">
  <div class="grid wide">
    <div>
      <section class="card" aria-labelledby="h-search">
        <h2 id="h-search">{search_calls}</h2>
        <form id="calls-form" class="inline">
          <div class="field"><label for="agent-id">{agent_id}</label><input type="text" id="agent-id" name="agent_id"></div>
          <div class="field"><label for="s-client">{client_id}</label><input type="text" id="s-client" name="client_id"></div>
          <div class="field"><label for="kind">{kind}</label><select id="kind" name="kind"><option value="">{any}</option>{kinds}</select></div>
          <div class="field"><label for="from">{from}</label><input type="date" id="from" name="from"></div>
          <div class="field"><label for="to">{to}</label><input type="date" id="to" name="to"></div>
          <div class="field"><label for="outcome">{outcome}</label><select id="outcome" name="outcome">
            <option value="">{any}</option>{outcomes}</select></div>
          <button class="btn primary" type="submit" id="calls-search">{search}</button>
        </form>
        <p class="notice bad" id="calls-error" role="alert"></p>
        {calls}
        <div class="buttons"><button class="btn" type="button" id="calls-more" hidden>{more}</button></div>
      </section>
      <section class="card" aria-labelledby="h-spot">
        <h2 id="h-spot">{spot_checks}</h2>
        <form id="spot-form" class="inline">
          <div class="field"><label for="spot-month">{month}</label><input type="month" id="spot-month"></div>
          <button class="btn" type="submit" id="spot-show">{show}</button>
        </form>
        <p class="muted" id="spot-summary"></p>
        <p class="notice bad" id="spot-error" role="alert"></p>
        <div id="spots"></div>
      </section>
      <section class="card" aria-labelledby="h-follow">
        <h2 id="h-follow">{follow_ups}</h2>
        <p class="notice bad" id="follow-error" role="alert"></p>
        <table class="calls" id="follow-ups"><thead><tr><th>{col_client}</th><th>{problems}</th><th>{col_state}</th>
          <th>{due}</th><th></th></tr></thead><tbody></tbody></table>
      </section>
    </div>
    <div>
      <section class="card" id="wall" aria-labelledby="h-wall" data-live="no">
        <h2 id="h-wall">{wall}</h2>
        <p><strong>{queue}</strong>: <span id="wall-queue">—</span></p>
        <p class="muted">{dialers}: <span id="wall-dialers">—</span></p>
        <table class="calls" id="wall-agents"><caption>{agents_t}</caption><thead><tr><th>{col_agent}</th><th>{col_state}</th>
          <th>{col_reason}</th><th>{col_since}</th></tr></thead><tbody></tbody></table>
        <table class="calls" id="wall-calls"><caption>{calls_now}</caption><thead><tr><th>{col_agent}</th><th>{col_phase}</th>
          <th>{col_duration}</th></tr></thead><tbody></tbody></table>
      </section>
      {player}
      <section class="card" aria-labelledby="h-review">
        <h2 id="h-review">{review_queue}</h2>
        <p class="notice bad" id="review-error" role="alert"></p>
        <div id="reviews"><p class="muted">{nothing}</p></div>
      </section>
    </div>
  </div>
</main>"#,
        header = header_bar(lang, &p, t("title_supervisor")),
        staff = esc(p.staff_id.as_deref().unwrap_or("")),
        search_calls = t("search_calls"),
        agent_id = t("agent_id"),
        from = t("from"),
        to = t("to"),
        outcome = t("col_outcome"),
        any = t("any"),
        search = t("search"),
        calls = calls_table(lang, "calls"),
        client_id = t("client_id"),
        kind = t("kind"),
        kinds = kind_options(lang),
        outcomes = outcome_options(),
        more = t("more"),
        spot_checks = t("spot_checks"),
        month = t("month"),
        show = t("show"),
        follow_ups = t("follow_ups"),
        col_client = t("col_client"),
        problems = t("problems_t"),
        due = t("due"),
        player = player(lang),
        review_queue = t("review_queue"),
        nothing = t("nothing"),
        wall = t("wall"),
        queue = t("queue"),
        dialers = t("dialers"),
        agents_t = t("agents_t"),
        calls_now = t("calls_now"),
        col_agent = t("col_agent"),
        col_state = t("col_state"),
        col_reason = t("col_reason"),
        col_since = t("col_since"),
        col_phase = t("col_phase"),
        col_duration = t("col_duration"),
    );
    Ok(html(lang, asked, StatusCode::OK, page(lang, t("title_supervisor"), &body, Some("desk.js"))))
}

/// `/compliance`.
pub async fn compliance(State(s): State<WebState>, req: Request) -> Result<Response, ApiError> {
    let (lang, asked, p) =
        match gate(&s, req, "/compliance", "title_compliance", |p| p.has(Role::Compliance)).await? {
            Ok(ok) => ok,
            Err(r) => return Ok(r),
        };
    let t = |k| lang.t(k);
    let body = format!(
        r##"{header}
<main id="desk" data-page="compliance" data-reveal="{may_reveal}">
  <section class="card" aria-labelledby="h-client">
    <h2 id="h-client">{client_lookup}</h2>
    {client_form}
  </section>
  <div id="dossier" hidden>
    <div class="grid wide">
      <div>
        <section class="card" aria-labelledby="h-facts">
          <h2 id="h-facts">{client}</h2>
          <dl class="facts">
            <dt>{client_id}</dt><dd id="d-client_id"></dd>
            <dt>{name}</dt><dd id="d-name"></dd>
            <dt>{phone}</dt><dd><span id="d-phone"></span> <button class="link" type="button" id="reveal-phone">{reveal}</button></dd>
            <dt>{id_number}</dt><dd><span id="d-id_number"></span> <button class="link" type="button" id="reveal-id_number">{reveal}</button></dd>
            <dt>{branch}</dt><dd id="d-branch"></dd>
            <dt>{risk_level}</dt><dd id="d-risk_level"></dd>
            <dt>{opened_on}</dt><dd id="d-opened_on"></dd>
          </dl>
          <div class="buttons"><a class="btn primary" id="export" href="#" download>{export}</a></div>
        </section>
        <section class="card" aria-labelledby="h-calls">
          <h2 id="h-calls">{calls_t}</h2>
          {client_calls}
          <div class="field mt"><label for="hold-reason">{hold_reason}</label>
            <input type="text" id="hold-reason"></div>
          <p class="notice bad" id="hold-error" role="alert"></p>
        </section>
        {player}
      </div>
      <div>
        <section class="card" aria-labelledby="h-timeline">
          <h2 id="h-timeline">{timeline}</h2>
          <ul class="events tall" id="timeline"></ul>
        </section>
      </div>
    </div>
  </div>
  <section class="card" aria-labelledby="h-reports">
    <h2 id="h-reports">{reports}</h2>
    <form id="report-form" class="inline">
      <div class="field"><label for="report-kind">{report}</label><select id="report-kind">
        <option value="coverage">{r_coverage}</option><option value="overdue">{r_overdue}</option>
        <option value="followups">{r_followups}</option><option value="monthly">{r_monthly}</option></select></div>
      <div class="field"><label for="report-month">{month}</label><input type="month" id="report-month"></div>
      <button class="btn primary" type="submit" id="report-show">{show}</button>
      <a class="btn" id="report-csv" href="#" download hidden>CSV</a>
    </form>
    <p class="notice bad" id="report-error" role="alert"></p>
    <p class="muted" id="report-note"></p>
    <img id="report-chart" class="chart" alt="{reports}" hidden>
    <table class="calls" id="report-table"><thead></thead><tbody></tbody></table>
  </section>
  <section class="card" aria-labelledby="h-verify">
    <h2 id="h-verify">{findings}</h2>
    <button class="btn" type="button" id="verify">{verify_run}</button>
    <ul class="events" id="findings"></ul>
  </section>
</main>"##,
        header = header_bar(lang, &p, t("title_compliance")),
        may_reveal = if crate::ops::clients::may_reveal(&p, &s.cfg.reveal_roles) { "yes" } else { "no" },
        client_lookup = t("client_lookup"),
        client_form = client_form(lang),
        client = t("client"),
        client_id = t("client_id"),
        name = t("name"),
        phone = t("phone"),
        id_number = t("id_number"),
        branch = t("branch"),
        risk_level = t("risk_level"),
        opened_on = t("opened_on"),
        reveal = t("reveal"),
        export = t("export"),
        calls_t = t("calls"),
        client_calls = calls_table(lang, "client-calls"),
        hold_reason = t("hold_reason"),
        player = player(lang),
        timeline = t("timeline"),
        findings = t("findings"),
        verify_run = t("verify_run"),
        reports = t("reports"),
        report = t("report"),
        r_coverage = t("r_coverage"),
        r_overdue = t("r_overdue"),
        r_followups = t("r_followups"),
        r_monthly = t("r_monthly"),
        month = t("month"),
        show = t("show"),
    );
    Ok(html(lang, asked, StatusCode::OK, page(lang, t("title_compliance"), &body, Some("desk.js"))))
}
