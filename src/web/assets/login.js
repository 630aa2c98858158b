// The sign-in form: POST /api/v1/session, then on to the page asked for.
import { $, api, t, text } from './common.js';

const form = $('login-form');
form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  text('login-error', '');
  $('sign-in').disabled = true;
  const r = await api('POST', '/api/v1/session', { login: $('login').value.trim(), password: $('password').value });
  $('sign-in').disabled = false;
  if (r.ok) {
    const next = form.dataset.next || '/';
    location.href = next.startsWith('/') && !next.startsWith('//') ? next : '/';
    return;
  }
  text('login-error', r.status === 429 ? t('locked') : r.status === 401 ? t('bad_login') : (r.body?.detail || t('error')));
  $('password').value = '';
  $('password').focus();
});
