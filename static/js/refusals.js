// Refused requests (only when the app counts them with `Realtime::refusal_layer`): the card next
// to the failures (refusals per minute over the last poll, the total since start and the top
// reason) and a table by route, reason and status, from the polled stats (`refusals`,
// docs/PROTOCOL.md). Server strings go in as text only.

import { $, cell, clear, setText } from './dom.js';
import { fmtInt, fmtRate } from './format.js';

let prev = null; // {at, total, counts: {"route\0reason\0status": count}}

/** Refusals per minute between two polls (`null` without an earlier poll). */
export function perMinute(before, after, ms) {
  if (before == null || !(ms > 0)) return null;
  return Math.max(0, after - before) * 60000 / ms;
}

export function renderRefusals(st) {
  const rows = Array.isArray(st.refusals) ? st.refusals : null;
  $('card-refusals').hidden = !rows;
  $('panel-refusals').hidden = !rows || rows.length === 0;
  if (!rows) { prev = null; return; }
  const at = st.generated_at_ms;
  const ms = prev ? at - prev.at : 0;
  const counts = {};
  let total = 0;
  const frag = document.createDocumentFragment();
  for (const r of rows) {
    const key = r.route + '\u0000' + r.reason + '\u0000' + r.status;
    counts[key] = r.count;
    total += r.count;
    const tr = document.createElement('tr');
    cell(tr, 'resource', String(r.route));
    cell(tr, 'reason', String(r.reason));
    cell(tr, 'num', String(r.status));
    cell(tr, 'num', fmtInt(r.count));
    const rate = perMinute(prev ? prev.counts[key] || 0 : null, r.count, ms);
    cell(tr, 'num', rate == null ? '–' : fmtRate(rate));
    frag.appendChild(tr);
  }
  const body = $('refusals-body');
  clear(body);
  body.appendChild(frag);
  const rate = perMinute(prev ? prev.total : null, total, ms);
  setText('m-refusals', rate == null ? '–' : fmtRate(rate));
  // Rows come most refused first.
  const top = rows.length ? ' · most: ' + rows[0].reason + ' (' + rows[0].status + ')' : '';
  setText('m-refusals-sub', fmtInt(total) + ' since start' + top);
  $('card-refusals').dataset.total = String(total);
  prev = { at, total, counts };
}
