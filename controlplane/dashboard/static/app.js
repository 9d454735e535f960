// Gatehouse dashboard. Every request goes to the admin REST API on this page's own origin
// with the operator's admin token, which lives in sessionStorage only (gone when the tab
// closes). The DOM is built with textContent only, never parsed from strings, so names from
// the API cannot inject markup.
'use strict';

const TOKEN_KEY = 'gatehouse.adminToken';
const $ = (id) => document.getElementById(id);

// api GETs one admin REST path (always under /v1/ on this origin).
async function api(path) {
  if (!path.startsWith('/v1/')) throw new Error('refusing a non-API path');
  const resp = await fetch(path, {
    headers: { 'Authorization': 'Bearer ' + sessionStorage.getItem(TOKEN_KEY) },
    credentials: 'omit',
    cache: 'no-store',
    referrerPolicy: 'no-referrer',
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error(path + ': ' + (body.message || resp.statusText) + ' (HTTP ' + resp.status + ')');
    err.status = resp.status;
    throw err;
  }
  return body;
}

// list follows next_page_token until the last page and returns the items under key.
async function list(path, key) {
  const items = [];
  let token = '';
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api(path + sep + 'page_size=1000' + (token ? '&page_token=' + encodeURIComponent(token) : ''));
    items.push(...(page[key] || []));
    token = page.next_page_token || '';
  } while (token);
  return items;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

// table fills t with a header row and rows of cells (strings or elements).
function table(t, header, rows) {
  t.replaceChildren();
  const h = el('tr');
  header.forEach((c) => h.append(el('th', c)));
  t.append(h);
  if (rows.length === 0) {
    const r = el('tr');
    const td = el('td', 'none', 'muted');
    td.colSpan = header.length;
    r.append(td);
    t.append(r);
  }
  rows.forEach((cells) => {
    const r = el('tr');
    cells.forEach((c) => {
      const td = el('td');
      if (c instanceof Node) td.append(c); else td.textContent = c === undefined || c === '' ? '-' : String(c);
      r.append(td);
    });
    t.append(r);
  });
}

function yesNo(b) { return b ? el('span', 'active', 'ok') : el('span', 'inactive', 'muted'); }
function ms(d) { return d ? (parseFloat(d) * 1000).toFixed(1) + ' ms' : '-'; }
function when(ts) { return ts ? new Date(ts).toLocaleString() : '-'; }
function statusCell(s) {
  const n = Number(s || 0);
  return el('span', n || '-', n >= 500 || n === 0 ? 'bad' : n >= 400 ? 'warn' : 'ok');
}
function nameOf(names, id) { return id ? (names.get(id) || id) : '-'; }

async function loadResources() {
  const [collections, clients] = await Promise.all([
    list('/v1/collections', 'collections'),
    list('/v1/clients', 'clients'),
  ]);
  const names = new Map();
  collections.forEach((c) => names.set(c.id, c.name));
  clients.forEach((c) => names.set(c.id, c.name));

  const endpoints = await Promise.all(collections.map((c) =>
    list('/v1/collections/' + encodeURIComponent(c.id) + '/endpoints', 'endpoints')));
  const box = $('collections');
  box.replaceChildren();
  if (collections.length === 0) box.append(el('p', 'No collections yet.', 'muted'));
  collections.forEach((c, i) => {
    box.append(el('h3', c.name + ' ' + c.version + '  /' + c.path));
    endpoints[i].forEach((e) => names.set(e.id, c.name + ' ' + e.method + ' ' + e.path));
    const t = el('table');
    table(t, ['Endpoint', 'Method', 'Path', 'Recipe', 'State'],
      endpoints[i].map((e) => [e.name, e.method, '/' + c.path + e.path, e.recipe_id, yesNo(e.active === true)]));
    box.append(t);
  });

  const profiles = await Promise.all(clients.map((c) =>
    list('/v1/clients/' + encodeURIComponent(c.id) + '/access-profiles', 'access_profiles')));
  const rows = [];
  clients.forEach((c, i) => {
    const ps = profiles[i];
    if (ps.length === 0) rows.push([c.name, yesNo(c.active !== false), '-', '-', '-', '-']);
    ps.forEach((p, j) => rows.push([
      j === 0 ? c.name : '', j === 0 ? yesNo(c.active !== false) : '',
      p.name, p.jwt ? 'jwt' : 'api_token',
      (p.collection_ids || []).map((id) => nameOf(names, id)).join(', '),
      yesNo(p.active !== false),
    ]));
  });
  table($('clients'), ['Client', 'Client state', 'Profile', 'Auth', 'Collections', 'Profile state'], rows);
  return names;
}

async function loadCalls(names) {
  const [summary, calls] = await Promise.all([
    api('/v1/calls:summary?window=3600s'),
    api('/v1/calls?page_size=50'),
  ]);
  const cards = $('summary');
  cards.replaceChildren();
  [['Total', summary.total], ['2xx', summary.status_2xx], ['4xx', summary.status_4xx],
    ['5xx', summary.status_5xx], ['Other', summary.status_other],
    ['p50', ms(summary.p50_duration)], ['p99', ms(summary.p99_duration)]].forEach(([label, v]) => {
    const c = el('div', null, 'card');
    c.append(el('b', v === undefined ? 0 : v), el('span', label));
    cards.append(c);
  });
  const counts = (l) => (l || []).map((x) => [nameOf(names, x.key), Number(x.count)]);
  table($('top-endpoints'), ['Endpoint', 'Calls'], counts(summary.top_endpoints));
  table($('top-clients'), ['Client', 'Calls'], counts(summary.top_clients));
  table($('by-details'), ['Details', 'Calls'], (summary.by_details || []).map((x) => [x.key, Number(x.count)]));
  table($('calls'), ['Time', 'Status', 'Method', 'Path', 'Client', 'Endpoint', 'Duration', 'Details', 'Request id'],
    (calls.calls || []).map((c) => [when(c.time), statusCell(c.status), c.method, c.path,
      nameOf(names, c.client_id), nameOf(names, c.endpoint_id), ms(c.duration), c.details, el('code', c.request_id)]));
}

async function loadStatus() {
  const s = await api('/v1/status/nodes');
  let text = s.published_revision ? 'Published revision ' + s.published_revision + '.' : 'Nothing published yet.';
  if (Number(s.rejected_publishes || 0) > 0) {
    text += ' Refused snapshots: ' + s.rejected_publishes + ', last: ' + (s.last_rejected_error || '');
  }
  $('published').textContent = text;
  const rows = [];
  (s.nodes || []).forEach((n) => {
    const types = n.types && n.types.length ? n.types : [{}];
    types.forEach((t, i) => {
      const nack = t.nacked_version || t.last_error
        ? el('span', (t.nacked_version || '-') + ': ' + (t.last_error || '') + ' (' + when(t.last_error_time) + ')', 'bad')
        : '-';
      rows.push([i === 0 ? n.id : '', i === 0 ? n.cluster : '', i === 0 ? when(n.connected_since) : '',
        (t.type_url || '-').replace(/^.*\//, ''), t.acked_version, nack]);
    });
  });
  table($('nodes'), ['Node', 'Cluster', 'Connected since', 'Type', 'Acked version', 'Last NACK'], rows);
}

function showError(err) {
  $('error').textContent = err ? err.message : '';
  $('error').hidden = !err;
}

// refresh reloads every view; a click while one is running joins it instead of racing it.
let running = null;
function refresh() {
  if (!running) running = load().finally(() => { running = null; });
  return running;
}

async function load() {
  showError(null);
  try {
    const names = await loadResources();
    await Promise.all([loadCalls(names), loadStatus()]);
    $('updated').textContent = 'Updated ' + new Date().toLocaleTimeString();
  } catch (err) {
    if (err.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      show();
    }
    showError(err);
  }
}

function show() {
  const signedIn = !!sessionStorage.getItem(TOKEN_KEY);
  $('login').hidden = signedIn;
  $('session').hidden = !signedIn;
  $('main').hidden = !signedIn;
}

document.addEventListener('DOMContentLoaded', () => {
  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('token').value.trim();
    $('token').value = '';
    if (!v) return;
    sessionStorage.setItem(TOKEN_KEY, v);
    show();
    refresh();
  });
  $('logout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    show();
    showError(null);
  });
  $('refresh').addEventListener('click', refresh);
  show();
  if (sessionStorage.getItem(TOKEN_KEY)) refresh();
});
