// The agent console: state, the live feed (/ws/agent, docs/AGENT_EVENTS.md),
// the screen-pop and the callback record form.
import { $, api, clock, nothingRow, problem, signOut, t, text } from './common.js';

const root = $('console');
const LANG = document.documentElement.lang || 'zh-CN';
signOut();
if (root) start(root.dataset.agent);

function start(agent) {
  const draftKey = (task) => `huifang.draft.${agent}.${task}`;
  // the last seq seen by this page: a reconnect asks for what came after
  // it; a page (re)loaded has nothing on screen yet and asks for a snapshot
  let lastSeq = null;
  let ws = null;
  let backoff = 500;
  let offer = null; // the offered message of the call on screen
  let phase = null;
  let state = { state: 'logged_out', presence: 'logged_out', since: null };
  let connectedAt = null;
  let wrapDeadline = null;

  // ---- the state card ------------------------------------------------
  function setState(s) {
    state = { ...state, ...s };
    const shown = state.presence || state.state;
    const badge = $('state');
    badge.className = `badge ${shown}`;
    text(badge, t(`st_${shown}`) + (state.state === 'paused' && state.reason ? ` · ${state.reason}` : ''));
    $('go-available').disabled = state.state === 'available';
    text('go-available', state.state === 'paused' ? t('resume') : t('go_available'));
    $('go-paused').disabled = state.state !== 'available';
    $('go-logged-out').disabled = state.state === 'logged_out';
  }

  function softphone(v) {
    text('softphone', v === true ? t('registered') : v === false ? t('unregistered') : t('unknown'));
  }

  async function ask(body) {
    text('state-error', '');
    const r = await api('POST', '/api/v1/agent/state', body);
    if (r.ok) {
      setState({ state: r.body.session.state, presence: r.body.presence, reason: r.body.session.reason, since: r.body.session.changed_at });
    } else {
      text('state-error', problem(r));
    }
  }
  $('go-available').addEventListener('click', () => ask({ state: 'available' }));
  $('go-paused').addEventListener('click', () => ask({ state: 'paused', reason: $('pause-reason').value }));
  $('go-logged-out').addEventListener('click', () => ask({ state: 'logged_out' }));

  // the softphone and the state, now and then (registration is no event)
  async function refresh() {
    const r = await api('GET', '/api/v1/agent');
    if (r.status === 401) {
      location.href = '/login?next=/agent';
      return;
    }
    if (r.ok) {
      softphone(r.body.softphone_registered);
      setState({ state: r.body.state, presence: r.body.presence, reason: r.body.reason, since: r.body.since });
    }
  }
  setInterval(refresh, 15000);

  // ---- the event log ---------------------------------------------------
  function log(msg, extra) {
    const li = document.createElement('li');
    const time = document.createElement('time');
    time.textContent = new Date(msg.at || Date.now()).toLocaleTimeString(LANG, { hour12: false });
    li.append(time, `${t(`ev_${msg.type}`)}${extra ? ` · ${extra}` : ''}`);
    const ul = $('events');
    ul.prepend(li);
    while (ul.children.length > 50) ul.lastChild.remove();
  }

  // ---- the call banner -------------------------------------------------
  function setPhase(p, msg) {
    phase = p;
    const banner = $('banner');
    banner.className = 'call-banner' + (p === 'agent_ringing' || p === 'client_ringing' || p === 'offered' ? ' ringing' : p === 'connected' ? ' connected' : p ? ' ended' : '');
    let words = p ? t(`ph_${p}`) : t('idle_banner');
    if (p === 'ended' && msg) {
      words += ` (${msg.outcome}${msg.reason ? `: ${msg.reason}` : ''})`;
      if (msg.recording_id) words += ` · ${t('recording')} ${msg.recording_id.slice(0, 8)}${msg.sealed ? ` ${t('sealed')}` : ''}`;
    }
    if (p === 'wrap_up' && wrapDeadline) words += ` · ${t('deadline')} ${new Date(wrapDeadline).toLocaleTimeString(LANG, { hour12: false })}`;
    text('banner-text', words);
    if (p === 'connected') connectedAt = Date.now();
    if (p !== 'connected') connectedAt = null;
  }

  // ---- the screen-pop ----------------------------------------------------
  function showOffer(o) {
    if (offer && offer.task_id === o.task_id && offer.call_id === o.call_id) return;
    offer = o;
    $('callback-at').value = '';
    text('callback-error', '');
    $('popup').hidden = false;
    $('idle-note').hidden = true;
    const c = o.client || {};
    text('c-client_id', c.client_id);
    text('c-name', c.name);
    text('c-phone', c.phone_masked);
    text('c-id_number', c.id_number_masked || '—');
    text('c-branch', c.branch);
    text('c-risk_level', c.risk_level || '—');
    text('c-opened_on', c.opened_on);
    const lang = document.documentElement.lang;
    text('t-kind', lang === 'en' ? `${o.kind.en} (${o.kind.zh})` : `${o.kind.zh} (${o.kind.en})`);
    const flags = $('t-flags');
    flags.replaceChildren();
    if (o.overdue) flags.append(badge('overdue', t('overdue')));
    if (o.compliance) flags.append(' ', badge('compliance', t('compliance')));
    text('t-due', o.due_on);
    const why = $('t-why');
    why.replaceChildren();
    for (const [k, v] of Object.entries(o.reason || {})) {
      const div = document.createElement('div');
      div.textContent = `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`;
      why.append(div);
    }
    const at = $('t-attempts');
    at.replaceChildren();
    if (!o.attempts?.length) at.textContent = t('no_attempts');
    else {
      const ul = document.createElement('ul');
      ul.className = 'attempts';
      for (const a of o.attempts) {
        const li = document.createElement('li');
        li.textContent = `${new Date(a.started_at).toLocaleString(LANG, { hour12: false })} · ${a.outcome || '…'}`;
        ul.append(li);
      }
      at.append(ul);
    }
    text('form-title', o.form?.title);
    text('s-opening', o.form?.opening);
    text('s-opening-en', lang === 'en' ? o.form?.opening_en : '');
    text('s-closing', lang === 'en' ? o.form?.closing_en : o.form?.closing);
    buildQuestions(o.checklist || []);
    resetForm();
    restoreDraft();
  }

  function badge(cls, words) {
    const s = document.createElement('span');
    s.className = `badge ${cls}`;
    s.textContent = words;
    return s;
  }

  function buildQuestions(items) {
    const box = $('questions');
    box.replaceChildren();
    const lang = document.documentElement.lang;
    for (const q of items) {
      const name = `answers.${q.id}`;
      const err = document.createElement('div');
      err.className = 'error';
      err.id = `err-${name}`;
      if (q.free_text) {
        const div = document.createElement('div');
        div.className = 'field';
        const label = document.createElement('label');
        label.htmlFor = `q-${q.id}`;
        label.textContent = lang === 'en' ? q.question_en : q.question;
        const ta = document.createElement('textarea');
        ta.id = `q-${q.id}`;
        ta.name = name;
        div.append(label, ta, err);
        box.append(div);
        continue;
      }
      const fs = document.createElement('fieldset');
      fs.className = 'q' + (q.compliance ? ' compliance' : '');
      const legend = document.createElement('legend');
      legend.textContent = lang === 'en' ? q.question_en : q.question;
      fs.append(legend);
      if (lang !== 'en') {
        const en = document.createElement('span');
        en.className = 'en';
        en.textContent = q.question_en;
        fs.append(en);
      }
      for (const v of ['yes', 'no']) {
        const label = document.createElement('label');
        const input = document.createElement('input');
        input.type = 'radio';
        input.name = name;
        input.value = v;
        input.id = `q-${q.id}-${v}`;
        label.htmlFor = input.id;
        label.append(input, ` ${t(v)}`);
        fs.append(label);
      }
      fs.append(err);
      box.append(fs);
    }
  }

  function resetForm() {
    $('record-form').reset();
    clearErrors();
    text('form-ok', '');
    text('draft-note', '');
    setFormEnabled(true);
  }

  function setFormEnabled(on) {
    for (const el of $('record-form').querySelectorAll('input, textarea, select, button')) el.disabled = !on;
  }

  function hideOffer() {
    offer = null;
    $('popup').hidden = true;
    $('idle-note').hidden = false;
    setPhase(null);
  }

  // ---- the form and its draft (kept in this browser until submitted) -----
  function collect() {
    const answers = {};
    for (const el of $('questions').querySelectorAll('input[type=radio]:checked, textarea')) {
      const id = el.name.slice('answers.'.length);
      if (el.tagName === 'TEXTAREA') {
        if (el.value.trim()) answers[id] = el.value.trim();
      } else answers[id] = el.value;
    }
    return { answers, outcome: $('outcome').value, problems: $('problems').value, notes: $('notes').value };
  }

  function saveDraft() {
    if (!offer) return;
    localStorage.setItem(draftKey(offer.task_id), JSON.stringify(collect()));
    text('draft-note', t('draft_kept'));
  }

  function restoreDraft() {
    if (!offer) return;
    const raw = localStorage.getItem(draftKey(offer.task_id));
    if (!raw) return;
    let d;
    try {
      d = JSON.parse(raw);
    } catch {
      return;
    }
    for (const [id, v] of Object.entries(d.answers || {})) {
      const ta = $(`q-${id}`);
      if (ta && ta.tagName === 'TEXTAREA') ta.value = v;
      const radio = $(`q-${id}-${v}`);
      if (radio) radio.checked = true;
    }
    if (d.outcome) $('outcome').value = d.outcome;
    $('problems').value = d.problems || '';
    $('notes').value = d.notes || '';
    text('draft-note', t('draft_kept'));
  }

  $('record-form').addEventListener('input', saveDraft);
  $('record-form').addEventListener('change', saveDraft);

  // every error the form shows: beside the fields, and the form's own
  function clearErrors() {
    for (const e of document.querySelectorAll('#record-form .error')) e.textContent = '';
    for (const e of document.querySelectorAll('.has-error')) e.classList.remove('has-error');
    text('form-error', '');
  }

  // a field the agent changes after an error: its error goes
  function clearFieldError(ev) {
    const box = ev.target.closest?.('.has-error');
    if (!box) return;
    box.classList.remove('has-error');
    const err = box.tagName === 'FIELDSET' ? box.querySelector('.error') : box.parentElement.querySelector('.error');
    if (err) err.textContent = '';
  }
  $('record-form').addEventListener('change', clearFieldError);
  $('record-form').addEventListener('input', clearFieldError);

  function showErrors(problem) {
    clearErrors();
    const field = problem?.field;
    const el = field ? $(`err-${field}`) : null;
    if (el) {
      el.textContent = explain(problem);
      const box = el.closest('fieldset') || el.parentElement.querySelector('textarea, select');
      box?.classList.add('has-error');
      (el.closest('fieldset')?.querySelector('input') || box)?.focus?.();
    } else {
      text('form-error', problem?.detail || t('error'));
    }
  }

  // the server's reason in the page's words, where it is a common one
  function explain(problem) {
    const why = problem.reason || problem.detail || '';
    if (why.includes('is not answered')) return t('err_missing');
    if (why.includes('takes yes or no')) return t('err_yes_no');
    if (why.includes('describe the problem')) return t('err_problems');
    return problem.detail || t('error');
  }

  let sending = false;
  $('record-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!offer || sending) return;
    sending = true;
    text('form-error', '');
    const d = collect();
    const body = { task_id: offer.task_id, call_id: offer.call_id, outcome: d.outcome, answers: d.answers };
    if (d.problems.trim()) body.problems = d.problems.trim();
    if (d.notes.trim()) body.notes = d.notes.trim();
    const r = await api('POST', '/api/v1/records', body);
    sending = false;
    if (r.status === 201) saved(offer.task_id);
    else showErrors(r.body);
  });

  async function mark(outcome) {
    if (!offer) return;
    const r = await api('POST', `/api/v1/tasks/${offer.task_id}/mark`, { outcome });
    if (r.ok) {
      localStorage.removeItem(draftKey(offer.task_id));
      setFormEnabled(false);
      text('form-ok', t('closed'));
      setTimeout(() => offer && hideOffer(), 2000);
    } else text('form-error', problem(r));
  }
  $('mark-wrong_number').addEventListener('click', () => mark('wrong_number'));
  $('mark-refused').addEventListener('click', () => mark('refused'));

  function saved(task) {
    localStorage.removeItem(draftKey(task));
    if (!offer || offer.task_id !== task) return;
    setFormEnabled(false);
    clearErrors();
    text('draft-note', '');
    text('form-ok', t('saved'));
    const shown = offer;
    setTimeout(() => offer === shown && hideOffer(), 2500);
  }

  // ---- my tasks: call now; and call back at the client's time -----------
  async function loadTasks() {
    const r = await api('GET', '/api/v1/tasks?status=open&limit=50');
    const body = $('my-tasks').querySelector('tbody');
    body.replaceChildren();
    if (!r.ok) {
      text('tasks-error', problem(r));
      return;
    }
    text('tasks-error', '');
    // Beijing time, as the call-back is set
    const when = (s) =>
      s ? new Date(s).toLocaleString(document.documentElement.lang, { hour12: false, timeZone: 'Asia/Shanghai', dateStyle: 'short', timeStyle: 'short' }) : '—';
    for (const task of r.body.items) {
      const tr = document.createElement('tr');
      tr.dataset.task = task.key;
      for (const v of [`${t(`k_${task.kind}`)} · ${task.client_id}`, task.due_on, when(task.next_attempt_at)]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      const td = document.createElement('td');
      const b = document.createElement('button');
      b.className = 'btn';
      b.type = 'button';
      b.textContent = t('call_now');
      b.dataset.callNow = task.key;
      b.addEventListener('click', async () => {
        b.disabled = true;
        text('tasks-error', '');
        const res = await api('POST', '/api/v1/calls', { task_id: task.id });
        if (res.ok) b.textContent = t('calling');
        else {
          b.disabled = false;
          text('tasks-error', problem(res));
        }
      });
      td.append(b);
      tr.append(td);
      body.append(tr);
    }
    if (!r.body.items.length) nothingRow(body, 4);
  }
  loadTasks();

  $('set-callback').addEventListener('click', async () => {
    if (!offer) return;
    text('callback-error', '');
    const v = $('callback-at').value; // YYYY-MM-DDTHH:MM, Beijing time
    if (!v) {
      text('callback-error', t('e_422'));
      return;
    }
    const r = await api('POST', `/api/v1/tasks/${offer.task_id}/call-back`, { at: `${v}:00+08:00` });
    if (!r.ok) {
      text('callback-error', problem(r));
      return;
    }
    localStorage.removeItem(draftKey(offer.task_id));
    setFormEnabled(false);
    text('form-ok', `${t('callback_set')}${v.replace('T', ' ')}`);
    loadTasks();
    setTimeout(() => offer && hideOffer(), 2000);
  });

  // ---- the feed --------------------------------------------------------
  function handle(m) {
    if (m.type !== 'pong' && typeof m.seq === 'number') {
      lastSeq = m.seq;
    }
    switch (m.type) {
      case 'snapshot':
        softphone(m.softphone_registered);
        setState({ state: m.state, presence: m.presence, reason: m.reason, since: m.since });
        if (m.offer && m.call) {
          showOffer(m.offer);
          if (m.call.wrap_up_deadline) wrapDeadline = m.call.wrap_up_deadline;
          setPhase(m.call.phase || 'offered', { outcome: m.call.outcome, recording_id: m.call.recording_id });
        } else if (offer) hideOffer();
        log(m);
        break;
      case 'state':
        setState({ state: m.state, presence: m.state, reason: m.reason, since: m.since });
        log(m, t(`st_${m.state}`));
        break;
      case 'offered':
        showOffer(m);
        setState({ presence: 'on_call', since: m.at });
        setPhase('offered');
        log(m, `${m.client?.client_id} · ${m.kind?.zh}`);
        break;
      case 'agent_ringing':
      case 'client_ringing':
      case 'connected':
        if (offer && m.call_id === offer.call_id) setPhase(m.type);
        log(m);
        break;
      case 'ended':
        loadTasks();
        if (offer && m.call_id === offer.call_id) {
          setPhase('ended', m);
          if (m.outcome !== 'completed') setFormEnabled(false);
        }
        setState({ presence: state.state });
        log(m, m.outcome);
        break;
      case 'wrap_up':
        wrapDeadline = m.deadline;
        if (offer && m.call_id === offer.call_id) setPhase('wrap_up');
        setState({ presence: 'wrap_up', since: m.at });
        log(m);
        break;
      case 'record_saved':
        loadTasks();
        saved(m.task_id);
        setState({ presence: state.state });
        log(m, m.outcome);
        break;
      default:
        break;
    }
  }

  function conn(up) {
    const el = $('conn');
    el.className = `conn ${up ? 'up' : 'down'}`;
    text(el, `${t('feed')}: ${up ? t('feed_up') : t('feed_down')}`);
  }

  function connect() {
    const since = lastSeq !== null && lastSeq !== undefined ? `?since=${lastSeq}` : '';
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    let opened = false;
    ws = new WebSocket(`${proto}://${location.host}/ws/agent${since}`);
    ws.onopen = () => {
      opened = true;
      backoff = 500;
      conn(true);
    };
    ws.onmessage = (e) => {
      try {
        handle(JSON.parse(e.data));
      } catch (err) {
        console.error('feed message', err);
      }
    };
    ws.onclose = async (e) => {
      conn(false);
      if (e.code === 4401) {
        location.href = '/login?next=/agent';
        return;
      }
      if (!opened) {
        // refused at the upgrade: is the session still there?
        const r = await api('GET', '/api/v1/session');
        if (r.status === 401) {
          location.href = '/login?next=/agent';
          return;
        }
      }
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }

  // clocks
  setInterval(() => {
    if (state.since) text('state-clock', clock((Date.now() - Date.parse(state.since)) / 1000));
    text('call-clock', connectedAt ? clock((Date.now() - connectedAt) / 1000) : '');
  }, 1000);

  setState(state);
  refresh();
  connect();
}
