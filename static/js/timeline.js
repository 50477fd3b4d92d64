// Owner of the chart series: loads `realtime/history` for the view (the newest load wins), folds
// the stream's per-second points in (held back while a load is in flight, then replayed), and
// falls back to an empty live-only window when history is unavailable.
//
// The charts section carries `data-range`, `data-history-loads` (loads that arrived) and, set
// by the charts, `data-rendered-loads` (loads drawn): tests and tools wait on them.

import { $, getJson, lower } from './dom.js';
import { fmtClock, fmtRange } from './format.js';
import { addPoint, seriesFromHistory, syntheticSeries } from './series.js';
import { dataUrl } from './url-state.js';

let series = null;
let lastT = 0; // newest second counted in `series`
let range = 1800;
let gen = 0;
let loading = false;
let pending = [];
let loads = 0;
let dirty = true;
let onChange = () => {};

export function currentSeries() { return series; }
export function historyLoads() { return loads; }

/** `fn()` when the series changed (a load landed or a point was added). */
export function onSeriesChange(fn) { onChange = fn; }

/** True once after each change: the charts redraw only then. */
export function takeSeriesDirty() {
  const d = dirty;
  dirty = false;
  return d;
}

export function markSeriesDirty() { dirty = true; }

export function showChartMsg(text) {
  const el = $('chart-msg');
  el.textContent = text || '';
  el.hidden = !text;
}

/** Loads history for `view` (range, resource, scope, instance). */
export async function loadHistory(view, labels) {
  const mine = ++gen;
  range = view.range;
  loading = true;
  pending = [];
  $('charts').setAttribute('aria-busy', 'true');
  try {
    const h = await getJson(dataUrl('history', view));
    if (mine !== gen) return;
    // History is not kept per user: with a user filter the charts start empty and fill live.
    const byUser = !!view.user;
    series = seriesFromHistory(h, byUser);
    const n = series.t.length;
    lastT = h.end != null ? h.end - 1 : (n ? series.t[n - 1] + series.bucket - 1 : 0);
    showChartMsg(byUser ? 'History is not kept per ' + lower(labels.user) + ': charts show live data for “' +
      view.user + '” from ' + fmtClock(Date.now()) + ' on.' : '');
  } catch (err) {
    if (mine !== gen) return;
    series = syntheticSeries(range, Date.now());
    lastT = Math.floor(Date.now() / 1000) - 1;
    showChartMsg('History unavailable (' + err.message + '): charts show live data only.');
  }
  finish();
}

function finish() {
  const held = pending;
  pending = [];
  loading = false;
  for (const p of held) addLivePoint(p);
  loads++;
  const section = $('charts');
  section.removeAttribute('aria-busy');
  section.dataset.range = String(range);
  section.dataset.historyLoads = String(loads);
  const b = series.bucket;
  const note = b > 1 ? 'per ' + fmtRange(b) + ' bucket' : 'per second';
  document.querySelectorAll('.bucket-note').forEach((el) => { el.textContent = note; });
  dirty = true;
  onChange(true);
}

/** A stream `point` (one completed second). */
export function addLivePoint(p) {
  if (loading) { pending.push(p); return; }
  if (addPoint(series, p, range, lastT)) {
    lastT = p.t;
    dirty = true;
    onChange(false);
  }
}
