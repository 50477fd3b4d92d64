// All charts: created once Chart.js is there, rebuilt on a colour-scheme change (cached element
// options in Chart.js do not all follow in-place colour changes), and drawn from the owners'
// state (timeline, live resources, answers) when something changed.

import { $ } from './dom.js';
import { chartLib } from './chart-kit.js';
import { fontFamily, theme } from './theme.js';
import { currentAnswers, markAnswersDirty, takeAnswersDirty } from './answers.js';
import { live } from './live.js';
import { resourceMetrics } from './topn.js';
import { renderedSeries } from './series.js';
import { currentSeries, historyLoads, markSeriesDirty, showChartMsg, takeSeriesDirty } from './timeline.js';
import { createTimeCharts, destroyTimeCharts, renderTimeCharts } from './time-charts.js';
import { createResourceCharts, destroyResourceCharts, renderAnswerCharts, renderUtilization } from './resource-charts.js';

let ready = false;
let resourcesDirty = true;

/** The live resource list changed (or how it is shown). */
export function markResourcesDirty() { resourcesDirty = true; }

export function createCharts() {
  const Chart = chartLib();
  if (!Chart) {
    showChartMsg('Charts unavailable: Chart.js failed to load.');
    return;
  }
  try {
    const th = theme();
    Chart.defaults.font.family = fontFamily();
    Chart.defaults.color = th.muted;
    Chart.defaults.borderColor = th.grid;
    createTimeCharts(th);
    createResourceCharts(th);
    ready = true;
  } catch (err) {
    showChartMsg('Charts unavailable: ' + err.message);
  }
}

export function restyleCharts() {
  if (!ready) return;
  destroyTimeCharts();
  destroyResourceCharts();
  ready = false;
  createCharts();
  markSeriesDirty();
  markAnswersDirty();
  resourcesDirty = true;
  drawCharts(true);
}

/** The renderer (render.js): draws the parts that changed since the last draw. */
export function drawCharts() {
  if (!ready) return;
  if (currentSeries() && takeSeriesDirty()) {
    renderTimeCharts(renderedSeries(currentSeries()));
    // Which history load the charts now show (history lands in the series at once, in the
    // charts at the next frame): lets tests and tools wait for the drawn state.
    $('charts').dataset.renderedLoads = String(historyLoads());
  }
  const answersDirty = takeAnswersDirty();
  if (!answersDirty && !resourcesDirty) return;
  const metrics = resourceMetrics(live().resources, currentAnswers());
  if (answersDirty) renderAnswerCharts(currentAnswers(), metrics);
  // utilization sorts may use the answers (activity, refusals): redraw it with them
  resourcesDirty = false;
  renderUtilization(live().resources, metrics);
}
