// The event log: newest first, at most MAX_ROWS rows, de-duplicated after a snapshot (a
// reconnect may repeat events already shown). Also counts expired returns for the Returns card.

import { $, cell, span, clear, setText } from './dom.js';
import { fmtClock, fmtInt } from './format.js';
import { noteResource, noteUser } from './names.js';

export const MAX_ROWS = 200;
const MAX_EXPIRIES = 10000;
let expiries = []; // times of expired returns seen (bounded, within retention)

function eventKey(e) {
  return [e.ts_ms, e.kind, e.resource, e.user, e.borrow_id].join('\u0001');
}

function buildRow(e) {
  const tr = document.createElement('tr');
  tr.className = 'fresh';
  tr.dataset.kind = String(e.kind);
  cell(tr, 'time', fmtClock(e.ts_ms, true, true));
  const known = e.kind === 'borrow' || e.kind === 'return' || e.kind === 'failure';
  span(cell(tr, 'kind'), 'badge ' + (known ? e.kind : ''), String(e.kind));
  cell(tr, 'resource', e.resource == null ? '' : String(e.resource));
  cell(tr, 'user', e.user == null ? '' : String(e.user));
  const det = cell(tr, 'details');
  if (e.kind === 'borrow') {
    if (e.overage) span(det, 'tag-overage', 'overage');
    else span(det, 'muted', 'within commit');
  } else if (e.kind === 'failure') {
    span(det, 'tag-reason', e.reason == null ? 'failed' : String(e.reason));
  } else if (e.kind === 'return' && e.reason === 'expired') {
    // The application took it back: the borrower's lease ran out.
    span(det, 'tag-expired', 'expired');
  }
  if (e.borrow_id != null && e.borrow_id !== '') {
    span(det, 'muted', (det.firstChild ? ' · ' : '') + 'id ' + String(e.borrow_id));
  }
  if (e.instance != null) span(det, 'tag-instance', '@ ' + String(e.instance));
  tr._key = eventKey(e);
  return tr;
}

/** Adds `events` (any order); with `dedupe` (a snapshot) skips rows already shown. */
export function addEvents(events, dedupe, retention) {
  const body = $('events-body');
  let seen = null;
  if (dedupe) {
    seen = new Set();
    for (const row of body.rows) seen.add(row._key);
  }
  let sorted = events.slice().sort((a, b) => (a.ts_ms || 0) - (b.ts_ms || 0));
  if (sorted.length > MAX_ROWS) sorted = sorted.slice(sorted.length - MAX_ROWS);
  const frag = document.createDocumentFragment();
  let added = 0;
  for (let i = sorted.length - 1; i >= 0; i--) {
    const e = sorted[i];
    if (seen && seen.has(eventKey(e))) continue;
    frag.appendChild(buildRow(e));
    added++;
    if (e.kind === 'return' && e.reason === 'expired') noteExpiry(e.ts_ms, retention);
    noteUser(e.user);
    noteResource(e.resource);
  }
  if (!added) return;
  body.insertBefore(frag, body.firstChild);
  while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  $('events-empty').hidden = body.rows.length > 0;
}

export function clearEvents() {
  expiries = [];
  clear($('events-body'));
  $('events-empty').hidden = false;
}

export function noteOmitted(n) {
  setText('log-note', 'newest first · last ' + MAX_ROWS + ' · ' + fmtInt(n) + ' skipped in a burst');
}

function noteExpiry(ts, retention) {
  expiries.push(+ts || 0);
  const horizon = Date.now() - retention * 1000;
  while (expiries.length && (expiries.length > MAX_EXPIRIES || expiries[0] < horizon)) expiries.shift();
}

/** Expired returns seen within the last `seconds`. */
export function expiriesWithin(seconds) {
  const since = Date.now() - seconds * 1000;
  return expiries.filter((t) => t >= since).length;
}
