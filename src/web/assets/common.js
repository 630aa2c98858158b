// huifang pages: what every page's script shares. ES module, no framework.

/** The page's strings (the server puts them in #i18n, in the page's language). */
export const T = JSON.parse(document.getElementById('i18n')?.textContent || '{}');

/** A string of the page, or the key itself. */
export function t(key) {
  return T[key] ?? key;
}

/** Shortcut for getElementById. */
export function $(id) {
  return document.getElementById(id);
}

/** A JSON request to the API with the session cookie. Resolves to
 *  {ok, status, body}; body is the parsed JSON (a problem+json on errors). */
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    return { ok: false, status: 0, body: { detail: String(e) } };
  }
  let parsed = null;
  const text = await r.text();
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { detail: text };
  }
  return { ok: r.ok, status: r.status, body: parsed };
}

/** What a refused request says to the person, in the page's language:
 *  the rule's own words when the server names it (`code`), else the kind
 *  of refusal with the server's detail. */
export function problem(r) {
  const b = r.body || {};
  if (b.code && T[`e_${b.code}`]) return T[`e_${b.code}`];
  const head = T[`e_${r.status}`] || T.error || 'error';
  return b.detail ? `${head} — ${b.detail}` : head;
}

/** A table body's one row saying there is nothing, across `cols` columns. */
export function nothingRow(body, cols) {
  const tr = document.createElement('tr');
  const td = document.createElement('td');
  td.colSpan = cols;
  td.className = 'muted';
  td.textContent = t('nothing');
  tr.append(td);
  body.append(tr);
}

/** Sets an element's text (never HTML: data is never markup). */
export function text(id, value) {
  const el = typeof id === 'string' ? $(id) : id;
  if (el) el.textContent = value ?? '';
}

/** Wires the header's sign-out button. */
export function signOut() {
  const b = $('sign-out');
  if (!b) return;
  b.addEventListener('click', async () => {
    await api('DELETE', '/api/v1/session');
    location.href = '/login';
  });
}

/** `hh:mm:ss` (or `mm:ss`) of a number of seconds. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n) => String(n).padStart(2, '0');
  return (h > 0 ? `${h}:` : '') + `${two(m)}:${two(s % 60)}`;
}
