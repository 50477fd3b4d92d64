// Shared Chart.js pieces. Chart.js itself is the vendored UMD build (vendor/chart.umd.min.js),
// loaded by index.html as a classic deferred script before the modules run, so it is
// `window.Chart`: no bundler, works offline, and the file stays byte-for-byte upstream's.

import { ellipsize, fmtCount } from './format.js';

/** Chart.js, or null when it failed to load (the page then says so and keeps the rest). */
export function chartLib() {
  return typeof window.Chart === 'function' ? window.Chart : null;
}

/**
 * Fewer ticks on narrow charts so labels never overlap: before each layout the x axis may show
 * one tick per `px` pixels of chart width (at most `max`). Options: `plugins.rtTickLimit`.
 */
export const tickLimitPlugin = {
  id: 'rtTickLimit',
  beforeUpdate(chart, args, opts) {
    const axis = chart.options.scales && chart.options.scales[opts.axis || 'x'];
    if (!axis || !chart.width) return;
    axis.ticks.maxTicksLimit = Math.max(2, Math.min(opts.max || 8, Math.floor(chart.width / (opts.px || 90))));
  },
  defaults: { axis: 'x', px: 90, max: 8 },
};

export function legend(th, extra) {
  return Object.assign({
    position: 'top', align: 'end',
    labels: { boxWidth: 10, boxHeight: 10, usePointStyle: true, pointStyle: 'rectRounded', color: th.text },
  }, extra || {});
}

export function axisTitle(th, text) {
  return { display: !!text, text: text || '', color: th.muted, font: { size: 11 } };
}

/** Count ticks: whole numbers, compact when large (1.2k). */
export function countTicks(th) {
  return { precision: 0, color: th.muted, callback: (v) => fmtCount(v) };
}

/**
 * Resource names on a category axis: shortened with an ellipsis to ~35 % of the chart's width
 * (the full name is in the tooltip and the filter).
 */
export function nameTicks(th) {
  return {
    color: th.text,
    autoSkip: false,
    callback(value) {
      const max = Math.max(8, Math.floor((this.chart.width || 300) * 0.35 / 7));
      return ellipsize(this.getLabelForValue(value), max);
    },
  };
}

/** Options every chart shares. */
export function baseOptions(extra) {
  return Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, extra);
}
