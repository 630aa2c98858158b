// The supervisor's and the compliance officer's pages (/supervisor,
// /compliance): search, the player (one channel or both), reviews, a
// client's dossier, reveals, holds, the evidence export, verify.
import { $, api, clock, signOut, t, text } from './common.js';

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

  function play(c) {
    $('player-card').hidden = false;
    text('p-call', c.call_id.slice(0, 8));
    text('p-sha', c.sha256 || '');
    text('p-archived', c.archived ? t('archived') : t('not_archived'));
    text('p-retain', c.retain_until ? when(c.retain_until) : '—');
    text('p-hold', c.legal_hold ? t('legal_hold') : t('none'));
    audio.src = `/api/v1/recordings/${c.recording_id}/audio`;
    if ($('channel').value !== 'both') route($('channel').value);
    audio.play().catch(() => {});
    $('player-card').scrollIntoView({ block: 'nearest' });
  }

  // ---- a table of calls --------------------------------------------------
  function fill(tableId, items, extra) {
    const body = $(tableId).querySelector('tbody');
    body.replaceChildren();
    if (!items.length) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 6;
      td.className = 'muted';
      td.textContent = t('nothing');
      tr.append(td);
      body.append(tr);
    }
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
        if (c.legal_hold) td.append(' ', badge(t('legal_hold')));
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
      text('client-error', r.body?.detail || t('error'));
      return null;
    }
    return r.body;
  }

  if (pageName === 'supervisor') supervisor();
  else compliance();

  // ---- /supervisor ---------------------------------------------------------
  function supervisor() {
    $('calls-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      text('calls-error', '');
      const q = new URLSearchParams({ agent_id: $('agent-id').value.trim() });
      for (const k of ['from', 'to', 'outcome']) if ($(k).value) q.set(k, $(k).value);
      const r = await api('GET', `/api/v1/calls?${q}`);
      if (r.ok) fill('calls', r.body.items);
      else text('calls-error', r.body?.detail || t('error'));
    });
    $('client-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const d = await clientCalls($('client-id').value.trim());
      if (d) fill('client-calls', d.calls);
    });
    loadReviews();
    wall();
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
      text('review-error', r.body?.detail || t('error'));
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
      const card = document.createElement('div');
      card.className = 'review';
      card.dataset.record = rec.id;
      const head = document.createElement('p');
      head.textContent = `${rec.called_on} · ${rec.client_id} · ${rec.kind} · ${rec.agent_id} · ${rec.outcome}`;
      const answers = document.createElement('p');
      answers.className = 'muted';
      answers.textContent = Object.entries(rec.answers || {}).map(([k, v]) => `${k}: ${v}`).join('；');
      const label = document.createElement('label');
      label.textContent = t('review_note');
      const note = document.createElement('input');
      note.type = 'text';
      label.append(' ', note);
      const err = document.createElement('p');
      err.className = 'notice bad';
      err.setAttribute('role', 'alert');
      const buttons = document.createElement('div');
      buttons.className = 'buttons';
      for (const [verdict, words] of [['approved', t('approve')], ['returned', t('return')]]) {
        const b = document.createElement('button');
        b.className = verdict === 'approved' ? 'btn good' : 'btn';
        b.type = 'button';
        b.textContent = words;
        b.dataset.verdict = verdict;
        b.addEventListener('click', async () => {
          const body = { verdict };
          if (note.value.trim()) body.note = note.value.trim();
          const res = await api('POST', `/api/v1/records/${rec.id}/review`, body);
          if (res.ok) card.remove();
          else err.textContent = res.body?.detail || t('error');
        });
        buttons.append(b);
      }
      card.append(head, answers, label, buttons, err);
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
      $(`reveal-${field}`).addEventListener('click', async () => {
        if (!current) return;
        const r = await api('POST', `/api/v1/clients/${encodeURIComponent(current.client.client_id)}/reveal`, { field });
        if (r.ok) text(`d-${field}`, r.body.value || '—');
      });
    }
    $('verify').addEventListener('click', async () => {
      $('verify').disabled = true;
      const r = await api('GET', '/api/v1/verify');
      $('verify').disabled = false;
      const ul = $('findings');
      ul.replaceChildren();
      const items = r.ok ? (r.body.findings || []) : [r.body?.detail || t('error')];
      if (!items.length) items.push(t('no_findings'));
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
        text('report-error', r.body?.detail || t('error'));
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
      b.textContent = c.legal_hold ? t('hold_release') : t('hold_set');
      b.addEventListener('click', async () => {
        text('hold-error', '');
        const reason = $('hold-reason').value.trim();
        const path = `/api/v1/recordings/${c.recording_id}/hold${c.legal_hold ? '/release' : ''}`;
        const r = await api('POST', path, { reason });
        if (!r.ok) {
          text('hold-error', r.body?.detail || t('error'));
          return;
        }
        const d = await clientCalls(current.client.client_id);
        if (d) show(d);
      });
      td.append(' ', b);
    }
  }
}
