// The supervisor's and the compliance officer's pages (/supervisor,
// /compliance): search, the player (one channel or both), reviews, a
// client's dossier, reveals, holds, the evidence export, verify.
import { $, api, clock, nothingRow, problem, signOut, t, text } from './common.js';

const root = $('desk');
const LANG = document.documentElement.lang || 'zh-CN';
signOut();
if (root) start(root.dataset.page);

function when(s) {
  return s ? new Date(s).toLocaleString(LANG, { hour12: false }) : '';
}

function start(pageName) {
  // ---- the player ------------------------------------------------------
  const audio = $('player');
  let graph = null;
  function route(mode) {
    if (!graph) {
      // both channels to both ears, each through its own gain
      const ctx = new AudioContext();
      const src = ctx.createMediaElementSource(audio);
      const split = ctx.createChannelSplitter(2);
      const merge = ctx.createChannelMerger(2);
      const left = ctx.createGain();
      const right = ctx.createGain();
      src.connect(split);
      split.connect(left, 0);
      split.connect(right, 1);
      for (const g of [left, right]) {
        g.connect(merge, 0, 0);
        g.connect(merge, 0, 1);
      }
      merge.connect(ctx.destination);
      graph = { ctx, left, right };
    }
    graph.left.gain.value = mode === 'client' ? 0 : 0.5;
    graph.right.gain.value = mode === 'agent' ? 0 : 0.5;
    if (graph.ctx.state === 'suspended') graph.ctx.resume();
  }
  $('channel')?.addEventListener('change', (e) => route(e.target.value));

  // the waveform: both channels' peaks from the server, the played part
  // darker; click or arrow keys to seek
  const wave = $('wave');
  let peaks = null;
  function playedShare() {
    const total = audio.duration || (peaks ? peaks.duration_ms / 1000 : 0);
    return total ? Math.min(1, audio.currentTime / total) : 0;
  }
  function drawWave() {
    if (!wave) return;
    const dpr = window.devicePixelRatio || 1;
    const w = wave.clientWidth;
    const h = wave.clientHeight;
    if (!w || !h) return;
    wave.width = Math.round(w * dpr);
    wave.height = Math.round(h * dpr);
    const g = wave.getContext('2d');
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, h);
    const lane = h / 2;
    g.fillStyle = '#e5e7eb';
    g.fillRect(0, lane - 0.5, w, 1);
    if (!peaks) return;
    const played = playedShare();
    const n = peaks.agent.length;
    const lanes = [[peaks.agent, '#1d4ed8', '#9db7f0'], [peaks.client, '#047857', '#93d4bb']];
    lanes.forEach(([arr, dark, light], i) => {
      const mid = lane * i + lane / 2;
      for (let x = 0; x < n; x++) {
        // on a level scale (−48 dBFS at the midline, 0 dBFS at the edge), so
        // that quiet telephone speech shows as well as loud
        const db = arr[x] > 0 ? 20 * Math.log10(arr[x] / 1000) : -96;
        const amp = Math.max(0, (db + 48) / 48) * (lane / 2 - 3);
        g.fillStyle = x / n < played ? dark : light;
        g.fillRect((x * w) / n, mid - amp, Math.max(1, w / n - 0.3), Math.max(1, amp * 2));
      }
    });
    g.fillStyle = '#111827';
    g.fillRect(played * w, 0, 1.5, h);
    g.font = '12px sans-serif';
    g.fillStyle = '#374151';
    g.fillText(t('wave_agent'), 6, 14);
    g.fillText(t('wave_client'), 6, lane + 14);
    wave.setAttribute('aria-valuenow', String(Math.round(played * 100)));
  }
  async function loadWave(id) {
    peaks = null;
    drawWave();
    const points = Math.max(200, Math.min(2000, Math.round((wave?.clientWidth || 800) * (window.devicePixelRatio || 1))));
    const r = await api('GET', `/api/v1/recordings/${id}/waveform?points=${points}`);
    if (r.ok) {
      peaks = r.body;
      wave.dataset.points = String(peaks.agent.length);
      drawWave();
    }
  }
  function seekTo(share) {
    const total = audio.duration || (peaks ? peaks.duration_ms / 1000 : 0);
    if (total) audio.currentTime = Math.max(0, Math.min(total, share * total));
    drawWave();
  }
  wave?.addEventListener('click', (e) => {
    const r = wave.getBoundingClientRect();
    seekTo((e.clientX - r.left) / r.width);
  });
  wave?.addEventListener('keydown', (e) => {
    const step = { ArrowRight: 5, ArrowLeft: -5 }[e.key];
    if (step === undefined) return;
    e.preventDefault();
    audio.currentTime = Math.max(0, audio.currentTime + step);
    drawWave();
  });
  audio?.addEventListener('timeupdate', drawWave);
  audio?.addEventListener('seeked', drawWave);
  window.addEventListener('resize', drawWave);

  function play(c) {
    $('player-card').hidden = false;
    text('p-call', c.call_id.slice(0, 8));
    text('p-sha', c.sha256 || '');
    text('p-archived', c.archived ? t('archived') : t('not_archived'));
    text('p-retain', c.retain_until ? when(c.retain_until) : '—');
    text('p-hold', c.legal_hold ? holdWords(c) : t('none'));
    audio.src = `/api/v1/recordings/${c.recording_id}/audio`;
    loadWave(c.recording_id);
    if ($('channel').value !== 'both') route($('channel').value);
    audio.play().catch(() => {});
    $('player-card').scrollIntoView({ block: 'nearest' });
  }

  // ---- a table of calls --------------------------------------------------
  function holdWords(c) {
    return c.hold_state === 'release_requested'
      ? `${t('legal_hold')} · ${t('hold_pending')}${c.hold_requested_by || ''}`
      : t('legal_hold');
  }

  function fill(tableId, items, extra, append) {
    const body = $(tableId).querySelector('tbody');
    if (!append) body.replaceChildren();
    if (!items.length && !append) nothingRow(body, 6);
    for (const c of items) {
      const tr = document.createElement('tr');
      const cells = [when(c.started_at), c.agent_id || '', c.client_id || '', c.outcome || '…',
        c.duration_ms ? clock(c.duration_ms / 1000) : ''];
      for (const v of cells) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      const td = document.createElement('td');
      if (c.recording_id && c.sha256) {
        const b = document.createElement('button');
        b.className = 'btn';
        b.type = 'button';
        b.textContent = t('play');
        b.dataset.call = c.call_id;
        b.addEventListener('click', () => play(c));
        td.append(b);
        if (c.legal_hold) td.append(' ', badge(holdWords(c)));
        if (extra) extra(td, c);
      }
      tr.append(td);
      body.append(tr);
    }
  }

  function badge(words) {
    const s = document.createElement('span');
    s.className = 'badge compliance';
    s.textContent = words;
    return s;
  }

  async function clientCalls(id) {
    text('client-error', '');
    const r = await api('GET', `/api/v1/clients/${encodeURIComponent(id)}`);
    if (!r.ok) {
      text('client-error', problem(r));
      return null;
    }
    return r.body;
  }

  // A callback record to judge: its facts and answers, extra controls
  // (`lead`), a note and one button per verdict. `send(verdict, note)`
  // resolves to the API's answer; `done(res)` is called when it is ok.
  function recordCard(rec, { noteLabel, verdicts, lead = [], send, done }) {
    const card = document.createElement('div');
    card.className = 'review';
    card.dataset.record = rec.id;
    const head = document.createElement('p');
    head.textContent = [rec.called_on, rec.client_id, t(`k_${rec.kind}`), rec.agent_id, rec.outcome].filter(Boolean).join(' · ');
    const answers = document.createElement('p');
    answers.className = 'muted';
    answers.textContent = Object.entries(rec.answers || {}).map(([k, v]) => `${k}: ${v}`).join('；');
    const label = document.createElement('label');
    label.textContent = noteLabel;
    const note = document.createElement('input');
    note.type = 'text';
    label.append(' ', note);
    const err = document.createElement('p');
    err.className = 'notice bad';
    err.setAttribute('role', 'alert');
    const buttons = document.createElement('div');
    buttons.className = 'buttons';
    buttons.append(...lead);
    for (const [verdict, words, attr, good] of verdicts) {
      const b = document.createElement('button');
      b.className = good ? 'btn good' : 'btn';
      b.type = 'button';
      b.textContent = words;
      b.dataset[attr] = verdict;
      b.addEventListener('click', async () => {
        const res = await send(verdict, note.value.trim() || undefined);
        if (res.ok) done(res);
        else err.textContent = problem(res);
      });
      buttons.append(' ', b);
    }
    card.append(head, answers, label, buttons, err);
    return card;
  }

  if (pageName === 'supervisor') supervisor();
  else compliance();

  // ---- /supervisor ---------------------------------------------------------
  function supervisor() {
    let query = null;
    let next = null;
    async function search(more) {
      text('calls-error', '');
      const q = new URLSearchParams(query);
      if (more && next) q.set('cursor', next);
      const r = await api('GET', `/api/v1/calls?${q}`);
      if (!r.ok) {
        text('calls-error', problem(r));
        return;
      }
      fill('calls', r.body.items, null, more);
      next = r.body.next;
      $('calls-more').hidden = !next;
    }
    $('calls-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      query = {};
      for (const [k, id] of [['agent_id', 'agent-id'], ['client_id', 's-client'], ['kind', 'kind'], ['from', 'from'], ['to', 'to'], ['outcome', 'outcome']]) {
        const v = $(id).value.trim();
        if (v) query[k] = v;
      }
      search(false);
    });
    $('calls-more').addEventListener('click', () => search(true));
    loadReviews();
    spotChecks();
    followUps();
    wall();
  }

  // ---- spot-checks (抽检) ---------------------------------------------------
  function spotChecks() {
    const month = $('spot-month');
    const now = new Date(Date.now() + 8 * 3600 * 1000);
    month.value = now.toISOString().slice(0, 7);
    $('spot-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      load();
    });
    async function load() {
      text('spot-error', '');
      const r = await api('GET', `/api/v1/spot-checks?month=${encodeURIComponent(month.value)}`);
      const box = $('spots');
      box.replaceChildren();
      if (!r.ok) {
        text('spot-error', problem(r));
        return;
      }
      const q = r.body;
      const checked = q.items.filter((i) => i.check).length;
      const words = t('spot_of')
        .replace('{sampled}', q.sampled).replace('{population}', q.population)
        .replace('{percent}', q.draw.percent).replace('{seed}', q.draw.seed.slice(0, 12) + '…')
        .replace('{visible}', q.items.length).replace('{checked}', checked);
      text('spot-summary', words);
      $('spot-summary').title = q.draw.seed;
      if (!q.items.length) {
        const p = document.createElement('p');
        p.className = 'muted';
        p.textContent = t('nothing');
        box.append(p);
      }
      for (const item of q.items) box.append(spotCard(item));
    }
    function spotCard(item) {
      const rec = item.record;
      const lead = [];
      if (item.call && item.call.recording_id && item.call.sha256) {
        const b = document.createElement('button');
        b.className = 'btn';
        b.type = 'button';
        b.textContent = t('play');
        b.dataset.call = item.call.call_id;
        b.addEventListener('click', () => play(item.call));
        lead.push(b);
      } else {
        const m = document.createElement('span');
        m.className = 'muted';
        m.textContent = t('no_recording');
        lead.push(m);
      }
      if (item.check) {
        const s = document.createElement('span');
        s.className = `badge ${item.check.verdict === 'pass' ? 'available' : 'paused'}`;
        s.textContent = `${t('checked')} · ${t(item.check.verdict)} · ${item.check.checker_id}${item.check.note ? ` · ${item.check.note}` : ''}`;
        lead.push(' ', s);
      }
      const card = recordCard({ ...rec, outcome: undefined }, {
        noteLabel: t('spot_note'),
        verdicts: item.check ? [] : [['pass', t('pass'), 'spot', true], ['fail', t('fail'), 'spot', false]],
        lead,
        send: (verdict, note) => api('POST', `/api/v1/spot-checks/${rec.id}`, { verdict, note }),
        // the summary counts it too
        done: () => load(),
      });
      // a checked record takes no more notes
      if (item.check) card.querySelector('label').remove();
      return card;
    }
    load();
  }

  // ---- follow-ups with their deadlines --------------------------------------
  async function followUps() {
    const r = await api('GET', '/api/v1/follow-ups?open=true');
    const body = $('follow-ups').querySelector('tbody');
    body.replaceChildren();
    if (!r.ok) {
      text('follow-error', problem(r));
      return;
    }
    if (!r.body.items.length) nothingRow(body, 5);
    for (const f of r.body.items) {
      const tr = document.createElement('tr');
      tr.dataset.followUp = f.id;
      if (f.overdue) tr.className = 'late';
      for (const v of [f.client_id, f.problems, t(`fu_${f.state}`)]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      const due = document.createElement('td');
      due.textContent = f.due_on || '';
      if (f.overdue) due.append(' ', badge(t('overdue')));
      tr.append(due);
      const act = document.createElement('td');
      const step = f.state === 'open' ? 'answered' : 'resolved';
      const b = document.createElement('button');
      b.className = 'btn';
      b.type = 'button';
      b.dataset.step = step;
      b.textContent = t(`fu_mark_${step}`);
      b.addEventListener('click', async () => {
        const res = await api('POST', `/api/v1/follow-ups/${f.id}`, { step });
        if (res.ok) followUps();
        else text('follow-error', problem(res));
      });
      act.append(b);
      tr.append(act);
      body.append(tr);
    }
  }

  // ---- the live wall (/ws/supervisor) --------------------------------------
  function wall() {
    const box = $('wall');
    if (!box) return;
    let ws = null;
    let backoff = 500;
    let calls = [];
    function cell(tr, v) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.append(td);
    }
    function render(st) {
      const q = st.queue || {};
      text('wall-queue', `${t('q_ready')} ${q.ready ?? 0} · ${t('q_retry')} ${q.waiting_retry ?? 0} · ${t('q_in_call')} ${q.in_call ?? 0} · ${t('q_awaiting')} ${q.awaiting_record ?? 0} · ${t('q_overdue')} ${q.record_overdue ?? 0}`);
      const agents = $('wall-agents').querySelector('tbody');
      agents.replaceChildren();
      for (const a of st.agents || []) {
        const tr = document.createElement('tr');
        cell(tr, a.staff_id);
        const td = document.createElement('td');
        const b = document.createElement('span');
        b.className = `badge ${a.presence}`;
        b.textContent = t(`st_${a.presence}`);
        td.append(b);
        tr.append(td);
        cell(tr, a.reason || '');
        cell(tr, when(a.changed_at));
        agents.append(tr);
      }
      calls = st.calls || [];
      const dialers = (st.dialers || []).map((d) => `${d.instance_id}: ${d.state}`).join(' · ');
      text('wall-dialers', dialers || '—');
      drawCalls();
    }
    function drawCalls() {
      const body = $('wall-calls').querySelector('tbody');
      body.replaceChildren();
      for (const c of calls) {
        const tr = document.createElement('tr');
        cell(tr, c.agent_id || '');
        cell(tr, c.answered_at ? t('ph_connected') : c.agent_answered_at ? t('ph_client_ringing') : t('ph_agent_ringing'));
        cell(tr, clock((Date.now() - Date.parse(c.started_at)) / 1000));
        body.append(tr);
      }
    }
    setInterval(drawCalls, 1000);
    function connect() {
      const proto = location.protocol === 'https:' ? 'wss' : 'ws';
      ws = new WebSocket(`${proto}://${location.host}/ws/supervisor`);
      ws.onopen = () => {
        backoff = 500;
        box.dataset.live = 'yes';
      };
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.type === 'wall') {
          box.dataset.seq = m.seq;
          render(m.status);
        }
      };
      ws.onclose = () => {
        box.dataset.live = 'no';
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 10000);
      };
    }
    connect();
  }


  async function loadReviews() {
    const r = await api('GET', '/api/v1/records?unreviewed=true&limit=50');
    const box = $('reviews');
    if (!r.ok) {
      text('review-error', problem(r));
      return;
    }
    box.replaceChildren();
    if (!r.body.items.length) {
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = t('nothing');
      box.append(p);
    }
    for (const rec of r.body.items) {
      const card = recordCard(rec, {
        noteLabel: t('review_note'),
        verdicts: [['approved', t('approve'), 'verdict', true], ['returned', t('return'), 'verdict', false]],
        send: (verdict, note) => api('POST', `/api/v1/records/${rec.id}/review`, { verdict, note }),
        done: () => card.remove(),
      });
      box.append(card);
    }
  }

  // ---- /compliance ---------------------------------------------------------
  function compliance() {
    let current = null;
    $('client-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const id = $('client-id').value.trim();
      const d = await clientCalls(id);
      if (d) show(d);
    });
    for (const field of ['phone', 'id_number']) {
      // only the roles of [http] reveal_roles may (the server checks too)
      $(`reveal-${field}`).hidden = root.dataset.reveal !== 'yes';
      $(`reveal-${field}`).addEventListener('click', async () => {
        if (!current) return;
        const r = await api('POST', `/api/v1/clients/${encodeURIComponent(current.client.client_id)}/reveal`, { field });
        if (r.ok) text(`d-${field}`, r.body.value || '—');
        else text('client-error', problem(r));
      });
    }
    $('verify').addEventListener('click', async () => {
      $('verify').disabled = true;
      const r = await api('GET', '/api/v1/verify');
      $('verify').disabled = false;
      const ul = $('findings');
      ul.replaceChildren();
      const items = r.ok ? (r.body.findings || []) : [problem(r)];
      if (!items.length) items.push(t('no_findings'));
      if (r.ok) for (const n of r.body.notices || []) items.push(`${t('notice')}: ${n}`);
      for (const f of items) {
        const li = document.createElement('li');
        li.textContent = typeof f === 'string' ? f : JSON.stringify(f);
        ul.append(li);
      }
    });

    $('report-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      text('report-error', '');
      const what = $('report-kind').value;
      const q = new URLSearchParams();
      if ($('report-month').value) q.set('month', $('report-month').value);
      const r = await api('GET', `/api/v1/reports/${what}?${q}`);
      if (!r.ok) {
        text('report-error', problem(r));
        return;
      }
      const table = $('report-table');
      const head = document.createElement('tr');
      for (const c of r.body.columns) {
        const th = document.createElement('th');
        th.textContent = c;
        head.append(th);
      }
      table.querySelector('thead').replaceChildren(head);
      const body = table.querySelector('tbody');
      body.replaceChildren();
      for (const row of r.body.rows) {
        const tr = document.createElement('tr');
        for (const v of row) {
          const td = document.createElement('td');
          td.textContent = v;
          tr.append(td);
        }
        body.append(tr);
      }
      text('report-note', r.body.note || '');
      const chart = $('report-chart');
      chart.src = `/api/v1/reports/${what}/chart.svg?${q}`;
      chart.hidden = false;
      const csv = $('report-csv');
      q.set('format', 'csv');
      csv.href = `/api/v1/reports/${what}?${q}`;
      csv.hidden = false;
    });

    function show(d) {
      current = d;
      $('dossier').hidden = false;
      const c = d.client;
      for (const k of ['client_id', 'name', 'branch', 'risk_level', 'opened_on']) text(`d-${k}`, c[k] ?? '—');
      text('d-phone', c.phone_masked);
      text('d-id_number', c.id_number_masked ?? '—');
      $('reveal-id_number').hidden = !c.id_number_masked || root.dataset.reveal !== 'yes';
      $('export').href = `/api/v1/clients/${encodeURIComponent(c.client_id)}/export`;
      fill('client-calls', d.calls, holdButton);
      const ul = $('timeline');
      ul.replaceChildren();
      for (const e of d.timeline) {
        const li = document.createElement('li');
        li.className = `w-${e.what.replace('.', '-')}`;
        const time = document.createElement('time');
        time.textContent = when(e.at);
        li.append(time, describe(e));
        ul.append(li);
      }
    }

    function describe(e) {
      const what = t(`w_${e.what}`);
      switch (e.what) {
        case 'task.created':
          return `${what} · ${e.key} · ${e.reason?.rule ?? ''} · ${e.due_on}`;
        case 'call':
          return `${what} · ${e.agent_id ?? ''} · ${e.outcome ?? '…'}${e.recording_id ? ` · ${t('col_recording')} ${e.recording_id.slice(0, 8)}` : ''}`;
        case 'record.submitted':
          return `${what} · ${e.agent_id} · ${e.outcome}${e.problems ? ` · ${e.problems}` : ''}`;
        case 'record.reviewed':
          return `${what} · ${e.reviewer_id} · ${e.verdict}`;
        case 'follow_up.opened':
          return `${what} · ${e.problems} · ${t('due')} ${e.answer_due_on} / ${e.resolve_due_on}`;
        case 'follow_up.answered':
        case 'follow_up.resolved':
          return `${what} · ${e.on}`;
        case 'record.spot_checked':
          return `${what} · ${e.checker_id} · ${t(e.verdict)}${e.note ? ` · ${e.note}` : ''}`;
        case 'task.closed':
          return `${what} · ${e.state} · ${e.outcome ?? ''}`;
        default:
          return `${what} · ${e.actor} · ${t('col_recording')} ${String(e.recording_id).slice(0, 8)}`;
      }
    }

    function holdButton(td, c) {
      const b = document.createElement('button');
      b.className = 'btn';
      b.type = 'button';
      const pending = c.hold_state === 'release_requested';
      b.textContent = !c.legal_hold ? t('hold_set') : pending ? t('hold_confirm') : t('hold_release');
      b.dataset.hold = !c.legal_hold ? 'set' : pending ? 'confirm' : 'release';
      b.addEventListener('click', async () => {
        text('hold-error', '');
        const reason = $('hold-reason').value.trim();
        const path = `/api/v1/recordings/${c.recording_id}/hold${c.legal_hold ? '/release' : ''}`;
        const r = await api('POST', path, { reason });
        if (!r.ok) {
          text('hold-error', problem(r));
          return;
        }
        const d = await clientCalls(current.client.client_id);
        if (d) show(d);
      });
      td.append(' ', b);
    }
  }
}
