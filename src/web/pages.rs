//! The pages: `/login`, `/agent`, and `/` sending each person to theirs.
//! Server-rendered HTML in Chinese (zh-CN) or English — `?lang=en|zh`
//! (remembered in a cookie), else the browser's `Accept-Language`, else
//! Chinese — with small JavaScript modules and one stylesheet embedded in
//! the binary (`/static/…`; no CDN, no build step). The strings the
//! scripts show travel in the page as a JSON block (`#i18n`), which the
//! CSP (`default-src 'self'`) lets through because it is never executed.
//!
//! `/login` and `/static/…` are open (they hold no data; a person must
//! reach the login form before having a session); every other page needs
//! a session: without one a browser is sent to `/login?next=…`.

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::WebState;
use super::auth::{Credential, peer};
use super::error::ApiError;
use crate::ops::access::{Person, Role};

/// The page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 中文 (default).
    Zh,
    /// English.
    En,
}

const LANG_COOKIE: &str = "huifang_lang";

impl Lang {
    pub(super) fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// `?lang=`, then the cookie, then `Accept-Language`'s first choice.
    fn of(h: &HeaderMap, asked: Option<&str>) -> Lang {
        let pick = |s: &str| {
            let s = s.trim().to_ascii_lowercase();
            if s.starts_with("en") {
                Some(Lang::En)
            } else if s.starts_with("zh") {
                Some(Lang::Zh)
            } else {
                None
            }
        };
        if let Some(l) = asked.and_then(pick) {
            return l;
        }
        let cookie = h
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| {
                c.trim().strip_prefix(LANG_COOKIE).and_then(|r| r.strip_prefix('=')).and_then(pick)
            });
        if let Some(l) = cookie {
            return l;
        }
        h.get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|first| pick(first.split(';').next().unwrap_or("")))
            .unwrap_or(Lang::Zh)
    }

    /// A string of the page.
    pub(super) fn t(self, key: &str) -> &'static str {
        STRINGS
            .iter()
            .find(|(k, ..)| *k == key)
            .map(|(_, zh, en)| if self == Lang::En { *en } else { *zh })
            .unwrap_or("?")
    }

    /// Every string, for the scripts.
    fn dictionary(self) -> String {
        let mut m: serde_json::Map<String, serde_json::Value> = STRINGS
            .iter()
            .map(|(k, zh, en)| (k.to_string(), json!(if self == Lang::En { en } else { zh })))
            .collect();
        // the kinds of callback by name (`k_new_account`: 新开户回访)
        for k in crate::domain::kinds::TaskKind::ALL {
            let words = if self == Lang::En { k.as_str().replace('_', " ") } else { k.zh().to_string() };
            m.insert(format!("k_{}", k.as_str()), json!(words));
        }
        // `</` cannot end the block early
        serde_json::Value::Object(m).to_string().replace("</", "<\\/")
    }
}

/// `(key, 中文, English)`.
const STRINGS: &[(&str, &str, &str)] = &[
    ("title_agent", "坐席工作台", "Agent console"),
    ("title_login", "登录", "Sign in"),
    ("brand", "回访 huifang", "huifang 回访"),
    ("login_sub", "证券客户回访 · 强制留痕", "Recorded client callbacks"),
    ("login", "用户名", "Login"),
    ("password", "密码", "Password"),
    ("sign_in", "登录", "Sign in"),
    ("sign_out", "退出登录", "Sign out"),
    ("bad_login", "用户名或密码错误", "Wrong login or password"),
    ("locked", "登录失败次数过多，请稍后再试", "Too many failed logins; try again later"),
    ("other_lang", "English", "中文"),
    ("other_lang_code", "en", "zh"),
    ("my_state", "我的状态", "My state"),
    ("softphone", "软电话", "Softphone"),
    ("registered", "已注册", "registered"),
    ("unregistered", "未注册", "not registered"),
    ("unknown", "未知", "unknown"),
    ("go_available", "上线 / 接听", "Go available"),
    ("pause", "暂停", "Pause"),
    ("resume", "恢复接听", "Resume"),
    ("log_out", "下线", "Log out"),
    ("pause_reason", "暂停原因", "Pause reason"),
    ("reason_break", "休息", "Break"),
    ("reason_training", "培训", "Training"),
    ("reason_meeting", "会议", "Meeting"),
    ("reason_other", "其他", "Other"),
    ("st_logged_out", "未上线", "Logged out"),
    ("st_available", "空闲，等待分配", "Available"),
    ("st_paused", "暂停", "Paused"),
    ("st_on_call", "通话中", "On a call"),
    ("st_wrap_up", "话后处理", "Wrap-up"),
    ("since", "持续", "for"),
    ("feed", "实时连接", "Live feed"),
    ("feed_up", "已连接", "connected"),
    ("feed_down", "连接中断，正在重连…", "disconnected, reconnecting…"),
    (
        "waiting",
        "暂无回访任务。上线后，系统分配任务时此处将自动弹出客户信息。",
        "No callback yet. When you are available, the client's facts pop up here as soon as a call is assigned to you.",
    ),
    ("idle_banner", "等待分配回访任务", "Waiting for a callback"),
    ("ph_offered", "已分配回访任务，即将呼叫您的软电话", "A callback is assigned: your softphone rings next"),
    ("ph_agent_ringing", "您的软电话正在振铃，请接听", "Your softphone is ringing: answer it"),
    ("ph_client_ringing", "正在呼叫客户…", "Calling the client…"),
    ("ph_connected", "通话中（双方录音）", "Connected (both sides recorded)"),
    ("ph_ended", "通话已结束", "The call has ended"),
    ("ph_wrap_up", "话后处理：请填写回访记录", "Wrap-up: fill in the callback record"),
    ("deadline", "截止", "until"),
    ("client", "客户信息", "Client"),
    ("client_id", "客户号", "Client ID"),
    ("name", "姓名", "Name"),
    ("phone", "手机", "Phone"),
    ("id_number", "证件号码", "ID number"),
    ("branch", "营业部", "Branch"),
    ("risk_level", "风险等级", "Risk level"),
    ("opened_on", "开户日期", "Account opened"),
    ("task", "回访任务", "Callback task"),
    ("kind", "回访类型", "Kind"),
    ("why", "生成原因", "Why"),
    ("due_on", "截止日期", "Due"),
    ("overdue", "已逾期", "overdue"),
    ("compliance", "合规回访", "compliance"),
    ("attempts", "既往尝试", "Earlier attempts"),
    ("no_attempts", "首次呼叫", "first attempt"),
    ("script", "话术", "Script"),
    ("opening", "开场白", "Opening"),
    ("closing", "结束语", "Closing"),
    ("record", "回访记录", "Callback record"),
    ("yes", "是", "Yes"),
    ("no", "否", "No"),
    ("outcome", "回访结果", "Outcome"),
    ("oc_reached", "成功回访", "Reached"),
    ("oc_unreachable", "未联系上", "Unreachable"),
    ("oc_refused", "客户拒绝", "Refused"),
    ("oc_wrong_number", "号码错误", "Wrong number"),
    ("problems", "发现的问题（填写后将开启跟进）", "Problems found (opens a follow-up)"),
    ("notes", "备注", "Notes"),
    ("submit", "提交回访记录", "Submit the record"),
    ("mark_wrong", "号码错误，关闭任务", "Wrong number: close the task"),
    ("mark_refused", "客户拒绝，关闭任务", "Refused: close the task"),
    ("saved", "回访记录已保存", "The callback record is saved"),
    ("closed", "任务已关闭", "The task is closed"),
    ("draft_kept", "草稿已自动保存在本浏览器", "The draft is kept in this browser"),
    ("events", "事件", "Events"),
    ("error", "出错了", "Something went wrong"),
    ("err_missing", "请回答此问题", "Answer this question"),
    ("err_yes_no", "请选择“是”或“否”", "Answer yes or no"),
    (
        "err_problems",
        "有合规问题答“否”：请在“发现的问题”中说明",
        "A compliance question was answered no: describe the problem found",
    ),
    ("recording", "录音", "Recording"),
    ("sealed", "已封存", "sealed"),
    ("ev_snapshot", "已同步当前状态", "State synchronised"),
    ("ev_state", "状态变更", "State changed"),
    ("ev_record_saved", "回访记录已保存", "Record saved"),
    ("ev_ended", "通话结束", "Call ended"),
    ("ev_offered", "新的回访任务", "New callback"),
    ("ev_agent_ringing", "软电话振铃", "Softphone ringing"),
    ("ev_client_ringing", "呼叫客户", "Calling the client"),
    ("ev_connected", "已接通", "Connected"),
    ("ev_wrap_up", "话后处理", "Wrap-up"),
    ("forbidden", "您没有访问此页面的权限", "You may not open this page"),
    ("title_supervisor", "主管工作台", "Supervisor desk"),
    ("title_compliance", "合规工作台", "Compliance desk"),
    ("search_calls", "查询通话", "Find calls"),
    ("agent_id", "坐席工号", "Agent (staff ID)"),
    ("from", "起始日期", "From"),
    ("to", "截止日期", "To"),
    ("any", "全部", "any"),
    ("search", "查询", "Search"),
    ("client_lookup", "按客户查询", "Find a client"),
    ("results", "结果", "Results"),
    ("col_time", "时间", "Time"),
    ("col_agent", "坐席", "Agent"),
    ("col_client", "客户", "Client"),
    ("col_outcome", "结果", "Outcome"),
    ("col_duration", "时长", "Length"),
    ("col_recording", "录音", "Recording"),
    ("play", "播放", "Play"),
    ("player", "录音播放", "Player"),
    ("listen", "收听", "Listen to"),
    ("both", "双方", "Both"),
    ("agent_only", "仅坐席（左声道）", "Agent only (left)"),
    ("client_only", "仅客户（右声道）", "Client only (right)"),
    ("archived", "已归档并校验（不可篡改）", "archived and verified (write-once)"),
    ("not_archived", "待归档", "waiting for the archive"),
    ("retain_until", "保存至", "Kept until"),
    ("legal_hold", "法律保全", "Legal hold"),
    ("none", "无", "none"),
    ("review_queue", "待复核记录", "Records to review"),
    ("approve", "通过", "Approve"),
    ("return", "退回", "Return"),
    ("review_note", "复核意见", "Review note"),
    ("nothing", "暂无", "Nothing"),
    ("timeline", "时间线", "Timeline"),
    ("reveal", "显示完整号码（将记入审计）", "Reveal (audited)"),
    ("export", "导出证据包", "Export evidence"),
    ("verify_run", "运行校验", "Run verify"),
    ("findings", "校验结果", "Findings"),
    ("no_findings", "未发现问题", "No findings"),
    ("hold_set", "设置保全", "Set a hold"),
    ("hold_release", "解除保全", "Release the hold"),
    ("hold_reason", "原因", "Reason"),
    ("accesses", "录音访问记录", "Who accessed the recordings"),
    ("calls", "通话与尝试", "Calls and attempts"),
    ("reports", "报表", "Reports"),
    ("wall", "实时墙", "Live wall"),
    ("dialers", "拨号实例", "Dialers"),
    ("queue", "队列", "Queue"),
    ("agents_t", "坐席", "Agents"),
    ("calls_now", "进行中的通话", "Calls in progress"),
    ("col_state", "状态", "State"),
    ("col_reason", "原因", "Reason"),
    ("col_since", "自", "Since"),
    ("col_phase", "阶段", "Phase"),
    ("q_ready", "待拨", "ready"),
    ("q_retry", "等待重拨", "waiting to retry"),
    ("q_in_call", "通话中", "in a call"),
    ("q_awaiting", "待填记录", "awaiting the record"),
    ("q_overdue", "记录逾期", "record overdue"),
    ("report", "报表", "Report"),
    ("r_coverage", "回访覆盖率", "Coverage"),
    ("r_overdue", "逾期任务", "Overdue tasks"),
    ("r_followups", "逾期跟进", "Late follow-ups"),
    ("r_monthly", "月度报表", "Monthly report"),
    ("month", "月份", "Month"),
    ("show", "显示", "Show"),
    ("w_task.created", "生成回访任务", "Task created"),
    ("w_call", "呼叫", "Call"),
    ("w_record.submitted", "提交回访记录", "Record submitted"),
    ("w_record.reviewed", "复核", "Reviewed"),
    ("w_task.closed", "任务关闭", "Task closed"),
    ("w_recording.played", "播放录音", "Played"),
    ("w_recording.downloaded", "下载录音", "Downloaded"),
    ("w_recording.exported", "导出录音", "Exported"),
    ("w_recording.fetched", "取回录音", "Fetched"),
    ("w_recording.access_denied", "拒绝访问", "Access denied"),
    ("w_hold.set", "设置保全", "Hold set"),
    ("w_hold.released", "解除保全", "Hold released"),
    (
        "wave",
        "波形：上为坐席（左声道），下为客户（右声道）",
        "Waveform: agent (left channel) above, client (right) below",
    ),
    ("wave_help", "点击波形跳转；方向键前后 5 秒。", "Click the waveform to seek; arrow keys move 5 s."),
    ("wave_agent", "坐席", "Agent"),
    ("wave_client", "客户", "Client"),
    ("kind", "回访类型", "Kind"),
    ("more", "加载更多", "Load more"),
    ("spot_checks", "抽检", "Spot-checks"),
    (
        "spot_of",
        "本月抽样 {sampled} / {population} 条已接通记录（{percent}%），种子 {seed}；您可见 {visible} 条，已抽检 {checked} 条。",
        "This month's sample: {sampled} of {population} reached records ({percent}%), seed {seed}; {visible} yours to see, {checked} checked.",
    ),
    ("spot_note", "抽检意见", "Spot-check note"),
    ("pass", "合格", "Pass"),
    ("fail", "不合格", "Fail"),
    ("checked", "已抽检", "Checked"),
    ("no_recording", "无录音", "no recording"),
    ("follow_ups", "跟进事项", "Follow-ups"),
    ("problems_t", "发现的问题", "Problems"),
    ("due", "期限", "Due"),
    ("overdue", "已逾期", "overdue"),
    ("fu_open", "待部门答复", "awaiting the department"),
    ("fu_answered", "待最终答复客户", "awaiting the final answer"),
    ("fu_resolved", "已解决", "resolved"),
    ("fu_mark_answered", "部门已答复", "Department answered"),
    ("fu_mark_resolved", "已答复客户", "Client answered"),
    ("hold_pending", "解除申请待第二人确认，申请人：", "Release awaiting a second person; asked by "),
    ("hold_confirm", "确认解除", "Confirm the release"),
    ("w_hold.release_requested", "申请解除保全", "Hold release asked"),
    ("w_follow_up.opened", "开启跟进", "Follow-up opened"),
    ("w_follow_up.answered", "部门已答复", "Department answered"),
    ("w_follow_up.resolved", "跟进已解决", "Follow-up resolved"),
    ("w_record.spot_checked", "抽检", "Spot-checked"),
    (
        "e_own-record",
        "不能复核或抽检本人制作的记录（相互制衡）。",
        "A record is never reviewed or checked by the person who made it.",
    ),
    (
        "e_two-person",
        "解除保全须由另一位合规人员确认（双人规则）。",
        "A release must be confirmed by another person (two-person rule).",
    ),
    ("e_0", "无法连接服务器", "The server cannot be reached"),
    ("e_400", "请求有误", "The request is malformed"),
    ("e_401", "登录已失效，请重新登录", "Your session ended; sign in again"),
    ("e_403", "无权执行此操作", "You may not do this"),
    ("e_404", "未找到", "Not found"),
    ("e_409", "与当前状态冲突", "This conflicts with what is stored"),
    ("e_416", "录音范围无效", "Outside the recording"),
    ("e_422", "输入有误", "Check the input"),
    ("e_429", "尝试次数过多，请稍后再试", "Too many attempts; try again later"),
    ("e_503", "服务暂不可用，请稍后再试", "The service is unavailable; try again"),
    ("my_tasks", "我的回访任务", "My callback tasks"),
    ("notice", "注意", "Notice"),
    ("next_attempt", "下次拨打", "Next attempt"),
    ("call_now", "立即呼叫", "Call now"),
    ("calling", "呼叫中…", "Calling…"),
    ("callback_at", "客户约定的回拨时间（北京时间）", "Call back at (Beijing time), as the client asked"),
    ("set_callback", "约定回拨", "Call back then"),
    ("callback_set", "已约定回拨：", "Call back set for "),
    (
        "e_agent-busy",
        "坐席不空闲：请先“上线”，且不在通话或话后处理中。",
        "You are not available: go available, and not on a call or in wrap-up.",
    ),
    ("e_not-registered", "坐席的软电话未注册。", "Your softphone is not registered."),
    ("e_lines-full", "外呼线路已全部占用，请稍后再试。", "Every outgoing line is in use; try again shortly."),
    ("e_window-shut", "现在不在允许外呼的时段。", "The calling window is shut now."),
    (
        "e_task-not-callable",
        "该任务现在不能呼叫（已关闭、等待回访记录或正在呼叫）。",
        "This task cannot be called now (closed, waiting for its record, or being called).",
    ),
    (
        "e_avoidance",
        "回避规则（E7）：不能回访自己开发或相关的客户。",
        "Avoidance (E7): you may not call back this client.",
    ),
    ("api_docs", "API 文档", "API docs"),
];

pub(super) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A whole page.
pub(super) fn page(lang: Lang, title: &str, body: &str, script: Option<&str>) -> String {
    let script =
        script.map(|s| format!(r#"<script type="module" src="/static/{s}"></script>"#)).unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="{code}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · huifang</title>
<link rel="stylesheet" href="/static/app.css">
<script type="application/json" id="i18n">{dict}</script>
{script}
</head>
<body>
{body}
</body>
</html>
"#,
        code = lang.code(),
        title = esc(title),
        dict = lang.dictionary(),
    )
}

/// The page's answer, remembering a language asked for by `?lang=`.
pub(super) fn html(lang: Lang, asked: bool, status: StatusCode, text: String) -> Response {
    let mut r = (status, Html(text)).into_response();
    if asked {
        let c = format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Strict", lang.code());
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    r
}

/// The query of a page.
#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    /// `zh` or `en`.
    lang: Option<String>,
    /// Login: where to go afterwards (a path of this site).
    next: Option<String>,
}

/// Who asks, if anyone (a page never answers 401: it sends to the login).
async fn who(s: &WebState, req: Request) -> Result<Option<Person>, ApiError> {
    let (parts, _) = req.into_parts();
    let cred = Credential::of(s, &parts.headers, peer(&parts));
    drop(parts);
    Ok(cred.person(s).await?)
}

fn to_login(next: &str) -> Response {
    Redirect::to(&format!("/login?next={}", next.replace('%', "%25").replace('&', "%26").replace('?', "%3F")))
        .into_response()
}

pub(super) fn header_bar(lang: Lang, p: &Person, title: &str) -> String {
    format!(
        r#"<header class="top">
  <span class="brand">{brand}</span><span>{title}</span>
  <span class="who">{login}</span>
  <nav><a class="lang" href="?lang={other_code}" lang="{other_code}">{other}</a>
  <button class="link" type="button" id="sign-out">{sign_out}</button></nav>
</header>"#,
        brand = lang.t("brand"),
        title = esc(title),
        login = esc(&p.login),
        other_code = lang.t("other_lang_code"),
        other = lang.t("other_lang"),
        sign_out = lang.t("sign_out"),
    )
}

/// `/`: each person to their page.
pub async fn home(State(s): State<WebState>, req: Request) -> Result<Response, ApiError> {
    Ok(match who(&s, req).await? {
        None => to_login("/"),
        Some(p) if p.has(Role::Compliance) => Redirect::to("/compliance").into_response(),
        Some(p) if p.has(Role::Supervisor) => Redirect::to("/supervisor").into_response(),
        Some(p) if p.has(Role::Agent) => Redirect::to("/agent").into_response(),
        Some(_) => Redirect::to("/api/docs/").into_response(),
    })
}

/// `/login`: the sign-in form.
pub async fn login(State(_s): State<WebState>, Query(q): Query<PageParams>, headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers, q.lang.as_deref());
    let next = q.next.as_deref().filter(|n| n.starts_with('/') && !n.starts_with("//")).unwrap_or("/");
    let body = format!(
        r#"<main class="login">
  <div class="card">
    <h1>{brand}</h1>
    <p class="sub">{sub}</p>
    <form id="login-form" data-next="{next}" novalidate>
      <div class="field"><label for="login">{login}</label>
        <input type="text" id="login" name="login" autocomplete="username" autofocus required></div>
      <div class="field"><label for="password">{password}</label>
        <input type="password" id="password" name="password" autocomplete="current-password" required></div>
      <p class="notice bad" id="login-error" role="alert"></p>
      <button class="btn primary" type="submit" id="sign-in">{sign_in}</button>
    </form>
    <p class="lang"><a href="?lang={other_code}{next_q}" lang="{other_code}">{other}</a></p>
  </div>
</main>"#,
        brand = lang.t("brand"),
        sub = lang.t("login_sub"),
        next = esc(next),
        login = lang.t("login"),
        password = lang.t("password"),
        sign_in = lang.t("sign_in"),
        other_code = lang.t("other_lang_code"),
        other = lang.t("other_lang"),
        next_q = esc(&format!("&next={}", next.replace('%', "%25").replace('&', "%26"))),
    );
    html(lang, q.lang.is_some(), StatusCode::OK, page(lang, lang.t("title_login"), &body, Some("login.js")))
}

/// Who may open a page: the person and the page's language, or the
/// answer to give instead (to the login without a session; a page saying
/// why with 403 without the role).
pub(super) async fn gate(
    s: &WebState,
    req: Request,
    path: &str,
    title: &str,
    may: impl Fn(&Person) -> bool,
) -> Result<Result<(Lang, bool, Person), Response>, ApiError> {
    let q: PageParams = Query::<PageParams>::try_from_uri(req.uri()).map(|q| q.0).unwrap_or_default();
    let lang = Lang::of(req.headers(), q.lang.as_deref());
    let Some(p) = who(s, req).await? else { return Ok(Err(to_login(path))) };
    if !may(&p) {
        let body = format!(
            r#"{}<main><div class="card"><p>{}</p><p><a href="/">/</a></p></div></main>"#,
            header_bar(lang, &p, lang.t(title)),
            lang.t("forbidden")
        );
        let page = page(lang, lang.t(title), &body, Some("desk.js"));
        return Ok(Err(html(lang, false, StatusCode::FORBIDDEN, page)));
    }
    Ok(Ok((lang, q.lang.is_some(), p)))
}

/// `/agent`: the agent console.
pub async fn agent(State(s): State<WebState>, req: Request) -> Result<Response, ApiError> {
    let may = |p: &Person| p.has(Role::Agent) && p.staff_id.is_some();
    let (lang, asked, p) = match gate(&s, req, "/agent", "title_agent", may).await? {
        Ok(ok) => ok,
        Err(r) => return Ok(r),
    };
    let staff_id = p.staff_id.clone().unwrap_or_default();
    let name = s
        .store
        .staff()
        .await
        .map_err(crate::ops::OpsError::from)?
        .into_iter()
        .find(|st| st.staff_id == staff_id)
        .map(|st| st.name)
        .unwrap_or_default();
    let t = |k| lang.t(k);
    let body = format!(
        r#"{header}
<main id="console" data-agent="{staff}">
  <div class="grid">
    <div>
      <section class="card" aria-labelledby="h-state">
        <h2 id="h-state">{my_state}</h2>
        <p><strong>{name}</strong> <span class="muted">({staff})</span></p>
        <div class="state-line"><span id="state" class="badge logged_out" role="status">{st_logged_out}</span>
          <span class="clock">{since} <span id="state-clock">00:00</span></span></div>
        <p>{softphone}: <span id="softphone">{unknown}</span></p>
        <div class="buttons">
          <button class="btn good" type="button" id="go-available">{go_available}</button>
          <button class="btn" type="button" id="go-paused">{pause}</button>
          <button class="btn" type="button" id="go-logged-out">{log_out}</button>
        </div>
        <div class="field mt"><label for="pause-reason">{pause_reason}</label>
          <select id="pause-reason">
            <option value="{reason_break}">{reason_break}</option>
            <option value="{reason_training}">{reason_training}</option>
            <option value="{reason_meeting}">{reason_meeting}</option>
            <option value="{reason_other}">{reason_other}</option>
          </select></div>
        <p class="notice bad" id="state-error" role="alert"></p>
        <p class="conn down" id="conn">{feed}: {feed_down}</p>
      </section>
      <section class="card" aria-labelledby="h-events">
        <h2 id="h-events">{events}</h2>
        <ul class="events" id="events" aria-live="polite"></ul>
      </section>
      <section class="card" aria-labelledby="h-my-tasks">
        <h2 id="h-my-tasks">{my_tasks}</h2>
        <p class="notice bad" id="tasks-error" role="alert"></p>
        <table class="calls" id="my-tasks"><thead><tr><th>{task}</th><th>{due_on}</th><th>{next_attempt}</th><th></th></tr></thead>
          <tbody></tbody></table>
      </section>
    </div>
    <div>
      <div class="call-banner" id="banner" role="status" aria-live="assertive"><span id="banner-text">{idle_banner}</span><span class="clock" id="call-clock"></span></div>
      <div id="popup" hidden>
        <div class="grid two">
          <section class="card" aria-labelledby="h-client">
            <h2 id="h-client">{client}</h2>
            <dl class="facts">
              <dt>{client_id}</dt><dd id="c-client_id"></dd>
              <dt>{name_l}</dt><dd id="c-name"></dd>
              <dt>{phone}</dt><dd id="c-phone"></dd>
              <dt>{id_number}</dt><dd id="c-id_number"></dd>
              <dt>{branch}</dt><dd id="c-branch"></dd>
              <dt>{risk_level}</dt><dd id="c-risk_level"></dd>
              <dt>{opened_on}</dt><dd id="c-opened_on"></dd>
            </dl>
          </section>
          <section class="card" aria-labelledby="h-task">
            <h2 id="h-task">{task}</h2>
            <dl class="facts">
              <dt>{kind}</dt><dd><span id="t-kind"></span> <span id="t-flags"></span></dd>
              <dt>{due_on}</dt><dd id="t-due"></dd>
              <dt>{why}</dt><dd id="t-why"></dd>
              <dt>{attempts}</dt><dd id="t-attempts"></dd>
            </dl>
          </section>
        </div>
        <section class="card" aria-labelledby="h-record">
          <h2 id="h-record">{record} · <span id="form-title"></span></h2>
          <div class="script"><strong>{opening}</strong><div id="s-opening"></div><div class="en" id="s-opening-en"></div></div>
          <form id="record-form" novalidate>
            <div id="questions"></div>
            <div class="script"><strong>{closing}</strong><div id="s-closing"></div></div>
            <div class="field"><label for="outcome">{outcome}</label>
              <select id="outcome" name="outcome">
                <option value="reached">{oc_reached}</option>
                <option value="unreachable">{oc_unreachable}</option>
              </select><div class="error" id="err-outcome"></div></div>
            <div class="field"><label for="problems">{problems}</label>
              <textarea id="problems" name="problems"></textarea><div class="error" id="err-problems"></div></div>
            <div class="field"><label for="notes">{notes}</label>
              <textarea id="notes" name="notes"></textarea><div class="error" id="err-notes"></div></div>
            <p class="notice bad" id="form-error" role="alert"></p>
            <p class="notice ok" id="form-ok" role="status"></p>
            <p class="muted" id="draft-note"></p>
            <div class="buttons">
              <button class="btn primary" type="submit" id="submit-record">{submit}</button>
              <button class="btn" type="button" id="mark-wrong_number">{mark_wrong}</button>
              <button class="btn" type="button" id="mark-refused">{mark_refused}</button>
            </div>
          </form>
          <div class="field inline mt"><label for="callback-at">{callback_at}</label>
            <input type="datetime-local" id="callback-at">
            <button class="btn" type="button" id="set-callback">{set_callback}</button></div>
          <p class="notice bad" id="callback-error" role="alert"></p>
        </section>
      </div>
      <p class="empty" id="idle-note">{waiting}</p>
    </div>
  </div>
</main>"#,
        header = header_bar(lang, &p, t("title_agent")),
        my_tasks = t("my_tasks"),
        next_attempt = t("next_attempt"),
        callback_at = t("callback_at"),
        set_callback = t("set_callback"),
        staff = esc(&staff_id),
        name = esc(&name),
        my_state = t("my_state"),
        st_logged_out = t("st_logged_out"),
        since = t("since"),
        softphone = t("softphone"),
        unknown = t("unknown"),
        go_available = t("go_available"),
        pause = t("pause"),
        log_out = t("log_out"),
        pause_reason = t("pause_reason"),
        reason_break = t("reason_break"),
        reason_training = t("reason_training"),
        reason_meeting = t("reason_meeting"),
        reason_other = t("reason_other"),
        feed = t("feed"),
        feed_down = t("feed_down"),
        events = t("events"),
        waiting = t("waiting"),
        idle_banner = t("idle_banner"),
        client = t("client"),
        client_id = t("client_id"),
        name_l = t("name"),
        phone = t("phone"),
        id_number = t("id_number"),
        branch = t("branch"),
        risk_level = t("risk_level"),
        opened_on = t("opened_on"),
        task = t("task"),
        kind = t("kind"),
        due_on = t("due_on"),
        why = t("why"),
        attempts = t("attempts"),
        record = t("record"),
        opening = t("opening"),
        closing = t("closing"),
        outcome = t("outcome"),
        oc_reached = t("oc_reached"),
        oc_unreachable = t("oc_unreachable"),
        problems = t("problems"),
        notes = t("notes"),
        submit = t("submit"),
        mark_wrong = t("mark_wrong"),
        mark_refused = t("mark_refused"),
    );
    Ok(html(lang, asked, StatusCode::OK, page(lang, t("title_agent"), &body, Some("agent.js"))))
}

/// The embedded files under `/static/`.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    ("login.js", "text/javascript; charset=utf-8", include_str!("assets/login.js")),
    ("agent.js", "text/javascript; charset=utf-8", include_str!("assets/agent.js")),
    ("common.js", "text/javascript; charset=utf-8", include_str!("assets/common.js")),
    ("desk.js", "text/javascript; charset=utf-8", include_str!("assets/desk.js")),
];

/// `/static/{file}`: the stylesheet and the scripts.
pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let Some((_, ty, body)) = ASSETS.iter().find(|(name, ..)| *name == file) else {
        return Err(ApiError::NoRoute);
    };
    let mut r = (StatusCode::OK, *body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_comes_from_the_query_the_cookie_or_the_browser() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of(&h, None), Lang::Zh);
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en-US,en;q=0.9,zh;q=0.5"));
        assert_eq!(Lang::of(&h, None), Lang::En);
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; huifang_lang=zh-CN"));
        assert_eq!(Lang::of(&h, None), Lang::Zh);
        assert_eq!(Lang::of(&h, Some("en")), Lang::En);
    }

    #[test]
    fn every_string_has_both_languages_and_no_markup() {
        for (k, zh, en) in STRINGS {
            assert!(!zh.is_empty() && !en.is_empty(), "{k}");
            assert!(!zh.contains('<') && !en.contains('<'), "{k}");
        }
        assert!(!Lang::Zh.dictionary().contains("</"));
    }

    #[test]
    fn no_page_has_inline_styles_or_scripts_the_csp_would_refuse() {
        let attr = concat!("sty", "le=\"");
        let inline = concat!("<scr", "ipt>");
        for (name, src) in [("pages.rs", include_str!("pages.rs")), ("desk.rs", include_str!("desk.rs"))] {
            assert!(!src.contains(attr) && !src.contains(inline), "{name}");
        }
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
