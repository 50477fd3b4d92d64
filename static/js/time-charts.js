// The three time charts (borrows, overage borrows, failures) over the selected range, with the
// alert annotations (overage rate crossings, failure spikes) drawn as vertical lines.

import { $ } from './dom.js';
import { axisTitle, baseOptions, chartLib, countTicks, legend, tickLimitPlugin } from './chart-kit.js';
import { fmtBucketTime, fmtInt, fmtRange } from './format.js';
import { alpha, fontFamily, theme } from './theme.js';

const charts = {};
let rendered = null; // the drawn series (renderedSeries), for tooltips and annotations

// Vertical alert lines with short labels; labels that would overlap go to a second row, past
// that only the line is drawn.
const alertPlugin = {
  id: 'rtAlerts',
  afterDatasetsDraw(chart) {
    const r = rendered;
    if (!r || !r.t.length || !chart.scales.x) return;
    const area = chart.chartArea;
    const ctx = chart.ctx;
    const th = theme();
    const kinds = chart.options.plugins.rtAlerts || {};
    ctx.save();
    ctx.font = '600 10px ' + fontFamily();
    ctx.textBaseline = 'top';
    const rowEnds = [-Infinity, -Infinity];
    for (const a of r.alerts) {
      if (a.level === 'spike' ? !kinds.spikes : !kinds.overage) continue;
      const idx = Math.round((a.t - r.t[0]) / r.bucket);
      if (idx < 0 || idx >= r.t.length) continue;
      const x = Math.round(chart.scales.x.getPixelForValue(idx)) + 0.5;
      const color = a.level === 'crit' ? th.crit : a.level === 'warn' ? th.warn : th.failure;
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.setLineDash(a.level === 'spike' ? [2, 3] : [5, 4]);
      ctx.beginPath();
      ctx.moveTo(x, area.top + 14);
      ctx.lineTo(x, area.bottom);
      ctx.stroke();
      ctx.setLineDash([]);
      const w = ctx.measureText(a.short).width + 8;
      const lx = Math.min(Math.max(x - w / 2, area.left), area.right - w);
      const row = lx >= rowEnds[0] + 2 ? 0 : lx >= rowEnds[1] + 2 ? 1 : -1;
      if (row < 0) continue;
      rowEnds[row] = lx + w;
      const ly = area.top + row * 15;
      ctx.fillStyle = color;
      ctx.fillRect(lx, ly, w, 13);
      ctx.fillStyle = a.level === 'warn' ? '#1b2330' : '#ffffff';
      ctx.fillText(a.short, lx + 4, ly + 1.5);
    }
    ctx.restore();
  },
};

function bucketText(r) { return r && r.bucket > 1 ? fmtRange(r.bucket) : '1 s'; }

const tooltip = {
  title(items) {
    const r = rendered;
    if (!items.length || !r) return '';
    const t = r.t[items[0].dataIndex];
    if (t == null) return '';
    const span = r.t.length * r.bucket;
    const s = fmtBucketTime(t, 1, span);
    return r.bucket > 1 ? s + ' – ' + fmtBucketTime(t + r.bucket, 1, span) : s;
  },
  label(item) {
    const v = item.parsed.y;
    const ds = item.dataset;
    const r = rendered;
    if (ds.unit === '%') return ds.label + ': ' + v.toFixed(1) + ' %';
    if (ds.level) return ds.label + ': ' + fmtInt(v);
    let txt = ds.label + ': ' + fmtInt(v) + ' in ' + bucketText(r);
    if (ds.maxOf && r && r.bucket > 1 && r[ds.maxOf]) {
      const unit = r.maxPeriod >= 3600 ? 'hour' : r.maxPeriod >= 60 ? 'minute' : 'second';
      txt += ' (busiest ' + unit + ': ' + fmtInt(r[ds.maxOf][item.dataIndex]) + ')';
    }
    return txt;
  },
  footer(items) {
    const r = rendered;
    if (!items.length || !r) return '';
    const t = r.t[items[0].dataIndex];
    const kinds = items[0].chart.options.plugins.rtAlerts || {};
    return r.alerts.filter((a) => a.t === t && (a.level === 'spike' ? kinds.spikes : kinds.overage))
      .map((a) => '⚠ ' + a.text);
  },
};

function options(th, opts) {
  const scales = {
    x: {
      type: 'category',
      grid: { display: false },
      border: { color: th.border },
      ticks: { autoSkip: true, autoSkipPadding: 12, maxTicksLimit: 8, maxRotation: 0, color: th.muted },
    },
    y: {
      beginAtZero: true, grace: '5%',
      grid: { color: th.grid }, border: { display: false },
      ticks: countTicks(th),
      title: axisTitle(th, opts.yTitle),
    },
  };
  if (opts.y1) {
    scales.y1 = {
      position: 'right', beginAtZero: true,
      grid: { display: false }, border: { display: false },
      ticks: opts.y1 === '%' ? { color: th.muted, callback: (v) => v + ' %' } : countTicks(th),
      title: axisTitle(th, opts.y1 === '%' ? '' : opts.y1),
    };
    if (opts.y1Max) scales.y1.suggestedMax = opts.y1Max;
  }
  return baseOptions({
    normalized: true,
    interaction: { mode: 'index', intersect: false },
    layout: { padding: { top: 4 } },
    scales,
    plugins: {
      rtAlerts: { overage: !!opts.overage, spikes: !!opts.spikes },
      rtTickLimit: { px: 90 },
      legend: legend(th),
      tooltip: { callbacks: tooltip },
    },
  });
}

function line(label, color, extra) {
  return Object.assign({
    label, data: [], borderColor: color, backgroundColor: alpha(color, 0.15),
    borderWidth: 2, pointRadius: 0, pointHoverRadius: 4, cubicInterpolationMode: 'monotone', fill: false,
  }, extra);
}

export function createTimeCharts(th) {
  const Chart = chartLib();
  const plugins = [alertPlugin, tickLimitPlugin];
  charts.borrows = new Chart($('chart-borrows'), {
    type: 'line',
    data: { labels: [], datasets: [
      line('Borrows', th.commit, { fill: 'origin', maxOf: 'bMax', key: 'bSum' }),
      line('Returns', th.returns, { maxOf: 'rMax', key: 'rSum' }),
      line('Active (peak)', th.peak, { key: 'pMax', level: true, yAxisID: 'y1', borderDash: [5, 4], borderWidth: 1.5, tension: 0, stepped: true }),
    ] },
    options: options(th, { yTitle: 'events', y1: 'active', overage: true, spikes: true }),
    plugins,
  });
  charts.overage = new Chart($('chart-overage'), {
    type: 'line',
    data: { labels: [], datasets: [
      line('Overage borrows', th.overage, { fill: 'origin', maxOf: 'oMax', key: 'oSum' }),
      line('Overage rate (60 s)', th.warn, { key: 'pct', yAxisID: 'y1', borderWidth: 1.5, borderDash: [5, 4], unit: '%' }),
    ] },
    options: options(th, { yTitle: 'borrows', y1: '%', y1Max: 40, overage: true }),
    plugins,
  });
  charts.failures = new Chart($('chart-failures'), {
    type: 'bar',
    data: { labels: [], datasets: [
      { label: 'Failures', data: [], key: 'fSum', maxOf: 'fMax',
        backgroundColor: alpha(th.failure, 0.75), borderColor: th.failure, borderWidth: 0,
        barPercentage: 1, categoryPercentage: 0.9, minBarLength: 0 },
    ] },
    options: options(th, { yTitle: 'failures', spikes: true }),
    plugins,
  });
}

export function destroyTimeCharts() {
  for (const k of Object.keys(charts)) { charts[k].destroy(); delete charts[k]; }
}

/** Draws `r` (a renderedSeries); y titles say what one bucket is (`events / 5 s`). */
export function renderTimeCharts(r) {
  rendered = r;
  const span = r.t.length * r.bucket;
  const labels = r.t.map((t) => fmtBucketTime(t, r.bucket, span));
  const per = ' / ' + bucketText(r);
  for (const [name, what] of [['borrows', 'events'], ['overage', 'borrows'], ['failures', 'failures']]) {
    const c = charts[name];
    if (!c) continue;
    c.data.labels = labels;
    for (const ds of c.data.datasets) ds.data = r[ds.key];
    c.options.scales.y.title.text = what + per;
    c.update('none');
  }
}
