// Per-resource charts: utilization now (in commit / in overage / available, ◆ peak in the 60 s
// window), hold times (p50/p90/p99) and time at capacity over the range. Each sits in a
// fixed-height resource panel (resource-panel.js) that shows the top N rows.

import { $, setText } from './dom.js';
import { axisTitle, baseOptions, chartLib, countTicks, legend, nameTicks, tickLimitPlugin } from './chart-kit.js';
import { durationAxis, fmtAxisDuration, fmtDuration, fmtInt, fmtMoney, fmtRange } from './format.js';
import { resourcePanel } from './resource-panel.js';
import { SORTS } from './topn.js';

const charts = {};
const shown = { util: [], holds: [], capacity: [] }; // the rows drawn, for tooltips
let panels = null;
let answersNow = null;

/** The panels' controls; `onChange()` redraws after the viewer changed one. */
export function initResourcePanels(onChange) {
  panels = {
    util: resourcePanel($('panel-util'), 'utilization', onChange),
    holds: resourcePanel($('panel-holds'), 'activity', onChange),
    capacity: resourcePanel($('panel-capacity'), 'exhausted', onChange),
  };
}

export function setResourceNoun(plural) {
  for (const p of Object.values(panels)) p.setNoun(plural);
}

// The cost line of a resource's utilization tooltip (null without pricing).
function costLine(name) {
  const a = answersNow;
  const r = a && a.resources && a.resources.find((x) => x.name === name && x.cost);
  if (!r) return null;
  const c = r.cost;
  return 'Cost in ' + fmtRange(a.window_seconds) + ': ' + fmtMoney(c.total_in_window, c.currency) +
    ' (commit ' + fmtMoney(c.commit_price, c.currency) + ' + overage ' + fmtMoney(c.overage_cost_in_window, c.currency) +
    ') · over commit now ' + fmtMoney(c.overage_cost_now, c.currency);
}

function barOptions(th, footer, extra) {
  return baseOptions(Object.assign({
    indexAxis: 'y',
    interaction: { mode: 'index', intersect: false, axis: 'y' },
    scales: {
      x: { beginAtZero: true, grid: { color: th.grid }, border: { display: false }, ticks: durationTicks(th) },
      y: { grid: { display: false }, border: { color: th.border }, ticks: nameTicks(th) },
    },
    plugins: {
      rtTickLimit: { px: 70, max: 10 },
      legend: legend(th),
      tooltip: { callbacks: {
        // durations were scaled to the axis unit: back to seconds, then in their own unit
        label: (item) => item.dataset.label + ': ' + fmtDuration(item.raw * (item.dataset.factor || 1)),
        footer,
      } },
    },
  }, extra || {}));
}

function bar(th, label, color) {
  return { label, data: [], backgroundColor: th[color], borderRadius: 2, barPercentage: 0.8, maxBarThickness: 14 };
}

/**
 * A duration axis for values up to `maxSeconds`: one unit for the whole axis (data are plotted
 * in it, so ticks fall on round numbers of it), and every tick carries it.
 */
function durationScale(chart, maxSeconds) {
  const { unit, factor } = durationAxis(maxSeconds);
  chart.$unit = unit;
  for (const ds of chart.data.datasets) ds.factor = factor;
  return factor;
}

function durationTicks(th) {
  return { color: th.muted, callback(v) { return fmtAxisDuration(v, this.chart.$unit || 's'); } };
}

export function createResourceCharts(th) {
  const Chart = chartLib();
  const util = barOptions(th, (items) => {
    const res = items.length && shown.util[items[0].dataIndex];
    if (!res) return '';
    const parts = ['Borrowed ' + fmtInt(res.borrowed)];
    if (res.total != null) parts.push('total ' + fmtInt(res.total));
    if (res.commit != null) parts.push('commit ' + fmtInt(res.commit));
    const cost = costLine(res.name);
    return cost ? [parts.join(' · '), cost] : [parts.join(' · ')];
  });
  util.scales.x = Object.assign(util.scales.x, { stacked: true, ticks: countTicks(th), title: axisTitle(th, 'borrowed · available') });
  util.scales.y.stacked = true;
  util.plugins.legend.labels.sort = (a, b) => a.datasetIndex - b.datasetIndex;
  util.plugins.tooltip.callbacks.label = (item) =>
    item.dataset.label + ': ' + fmtInt(item.dataset.type === 'line' ? item.parsed.x : item.raw);
  charts.util = new Chart($('chart-util'), {
    type: 'bar',
    data: { labels: [], datasets: [
      { label: 'In commit', data: [], stack: 'util', maxBarThickness: 28, backgroundColor: th.commit, borderRadius: 2, barPercentage: 0.7 },
      { label: 'In overage', data: [], stack: 'util', maxBarThickness: 28, backgroundColor: th.overage, borderRadius: 2, barPercentage: 0.7 },
      { label: 'Available', data: [], stack: 'util', maxBarThickness: 28, backgroundColor: th.available, borderRadius: 2, barPercentage: 0.7 },
      { label: 'Peak borrowed', type: 'line', data: [], stack: 'peak', order: -1, indexAxis: 'y', showLine: false, clip: false,
        pointStyle: 'rectRot', pointRadius: 7, pointHoverRadius: 9, borderWidth: 2, borderColor: th.panel, backgroundColor: th.peak },
    ] },
    options: util,
    plugins: [tickLimitPlugin],
  });

  charts.holds = new Chart($('chart-holds'), {
    type: 'bar',
    data: { labels: [], datasets: [bar(th, 'p50', 'commit'), bar(th, 'p90', 'overage'), bar(th, 'p99', 'failure')] },
    options: barOptions(th, (items) => {
      const h = items.length && shown.holds[items[0].dataIndex];
      if (!h) return '';
      const lines = [fmtInt(h.count) + ' holds · mean ' + fmtDuration(h.mean_seconds) + ' · longest ' +
        fmtDuration(h.max_seconds) + ' · ' + fmtInt(h.open) + ' out now'];
      const bounds = (answersNow && answersNow.hold_times.bucket_bounds_seconds) || [];
      const hist = [];
      (h.histogram || []).forEach((n, i) => {
        if (n) hist.push((i < bounds.length ? '≤ ' + fmtDuration(bounds[i]) : '> ' + fmtDuration(bounds[bounds.length - 1])) + ': ' + fmtInt(n));
      });
      if (hist.length) lines.push(hist.join(' · '));
      return lines;
    }),
    plugins: [tickLimitPlugin],
  });

  charts.capacity = new Chart($('chart-capacity'), {
    type: 'bar',
    data: { labels: [], datasets: [bar(th, 'At or above commit', 'overage'), bar(th, 'Exhausted', 'crit')] },
    options: barOptions(th, (items) => {
      const c = items.length && shown.capacity[items[0].dataIndex];
      if (!c) return '';
      const lines = [];
      if (c.exhausted_share != null) lines.push((100 * c.exhausted_share).toFixed(1) + ' % of the range exhausted');
      if (c.total != null) lines.push('pool ' + fmtInt(c.total) + ' · commit ' + fmtInt(c.commit));
      const d = Object.keys(c.denials || {}).map((k) => k + ' ' + fmtInt(c.denials[k]));
      lines.push(d.length ? 'refused: ' + d.join(' · ') : 'no refusals');
      return lines;
    }),
    plugins: [tickLimitPlugin],
  });
}

export function destroyResourceCharts() {
  for (const k of Object.keys(charts)) { charts[k].destroy(); delete charts[k]; }
}

/** Utilization now, from the live resource list. */
export function renderUtilization(resources, metrics) {
  const c = charts.util;
  if (!c) return;
  const rows = panels.util.select(resources, (r) => r.name, metrics);
  shown.util = rows;
  c.data.labels = rows.map((x) => x.name);
  c.data.datasets[0].data = rows.map((x) => (x.in_commit != null ? x.in_commit : Math.max(0, (x.borrowed || 0) - (x.overage || 0))));
  c.data.datasets[1].data = rows.map((x) => x.overage || 0);
  c.data.datasets[2].data = rows.map((x) => (x.available != null ? Math.max(0, x.available) : 0));
  c.data.datasets[3].data = rows.map((x) => ({ x: x.peak_borrowed != null ? x.peak_borrowed : (x.borrowed || 0), y: x.name }));
  c.update('none');
  setText('util-note', ['now · ◆ peak in 60 s', panels.util.countNote()].filter(Boolean).join(' · '));
}

function sortNote(panel, natural) {
  if (panel.sort === natural[0]) return natural[1];
  const s = SORTS.find((x) => x[0] === panel.sort);
  return s ? 'by ' + s[1] : '';
}

/** Hold times and time at capacity, from the polled stats. */
export function renderAnswerCharts(a, metrics) {
  answersNow = a;
  if (!a || !charts.holds) return;
  const win = 'last ' + fmtRange(a.window_seconds);

  const all = (a.hold_times && a.hold_times.resources) || [];
  const holds = panels.holds.select(all, (h) => h.resource, metrics);
  shown.holds = holds;
  const hc = charts.holds;
  hc.data.labels = holds.map((h) => h.resource);
  const factor = durationScale(hc, Math.max(0, ...holds.map((h) => h.p99_seconds || 0)));
  const q = (k) => holds.map((h) => (h[k] == null ? 0 : h[k] / factor));
  hc.data.datasets[0].data = q('p50_seconds');
  hc.data.datasets[1].data = q('p90_seconds');
  hc.data.datasets[2].data = q('p99_seconds');
  hc.update('none');
  const counted = all.reduce((n, h) => n + (h.count || 0), 0);
  $('holds-empty').hidden = counted > 0;
  setText('holds-note', [win, fmtInt(counted) + ' holds', panels.holds.countNote()].filter(Boolean).join(' · '));

  // resources with known pool sizes, as the server sorted them (most time exhausted first)
  const known = a.capacity ? a.capacity.filter((c) => c.seconds_exhausted != null) : [];
  const rows = panels.capacity.select(known, (c) => c.resource, metrics);
  shown.capacity = rows;
  const cc = charts.capacity;
  cc.data.labels = rows.map((c) => c.resource);
  const f = durationScale(cc, Math.max(0, ...rows.map((c) => Math.max(c.seconds_at_commit || 0, c.seconds_exhausted || 0))));
  cc.data.datasets[0].data = rows.map((c) => (c.seconds_at_commit || 0) / f);
  cc.data.datasets[1].data = rows.map((c) => (c.seconds_exhausted || 0) / f);
  cc.update('none');
  $('capacity-empty').hidden = known.length > 0;
  setText('capacity-note', [win, sortNote(panels.capacity, ['exhausted', 'most time exhausted first']),
    panels.capacity.countNote()].filter(Boolean).join(' · '));
}
