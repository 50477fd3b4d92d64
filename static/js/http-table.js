// HTTP golden signals (only when the app's layer records them): one row per route and method,
// with the request rate since the previous poll.

import { $, cell, clear } from './dom.js';
import { fmtInt, fmtLatency, fmtPercent, fmtRate } from './format.js';

let prev = null; // {at, counts: {"METHOD route": requests}}

export function renderHttp(st) {
  const routes = st.http || [];
  const panel = $('panel-http');
  panel.hidden = routes.length === 0;
  if (!routes.length) return;
  const now = st.generated_at_ms;
  const dt = prev ? (now - prev.at) / 1000 : 0;
  const counts = {};
  const frag = document.createDocumentFragment();
  for (const r of routes) {
    const key = r.method + ' ' + r.route;
    counts[key] = r.requests;
    const tr = document.createElement('tr');
    cell(tr, 'resource', String(r.route));
    cell(tr, '', String(r.method));
    cell(tr, 'num', fmtInt(r.requests));
    const before = prev && prev.counts[key];
    cell(tr, 'num', dt > 0 && before != null ? fmtRate((r.requests - before) / dt) : '–');
    const errors = r.server_errors || 0;
    cell(tr, 'num', fmtInt(errors) + (r.requests ? ' (' + fmtPercent(100 * errors / r.requests) + ')' : ''));
    cell(tr, 'num', fmtLatency(r.p50_seconds));
    cell(tr, 'num', fmtLatency(r.p99_seconds));
    frag.appendChild(tr);
  }
  const body = $('http-body');
  clear(body);
  body.appendChild(frag);
  panel.dataset.routes = String(routes.length);
  prev = { at: now, counts };
}
