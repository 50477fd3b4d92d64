// realtime-layer dashboard: the entry module. It wires the modules under js/ together; each owns
// one part of the page's state (docs/ARCHITECTURE.md, "The page"):
//
//   view.js      what the page looks at (range, resource, user, scope, instance), kept in the URL
//   live.js      what the stream says now (decoder.js turns frames into it)
//   timeline.js  the chart series (history + live points)
//   answers.js   the polled stats (hold times, capacity, cost, HTTP routes, refusals)
//   usage.js     the usage report and the advisor's cards (with a usage tier)
//   render.js    when charts redraw (animation frames, pause)
//
// Wire contract: docs/PROTOCOL.md. All URLs are relative (`realtime/...`) so the page works under
// any mount prefix. Server strings go in as text only. No inline scripts or styles (strict CSP).

import { $, getJson, lower, setText } from './js/dom.js';
import { fmtClock, fmtRange } from './js/format.js';
import { config, setConfig } from './js/config.js';
import { currentView, initView, onViewChange } from './js/view.js';
import { dataUrl } from './js/url-state.js';
import { applyFrame, live, resetLive } from './js/live.js';
import { initConnection, reconnectNow, setHidden } from './js/connection.js';
import { addLivePoint, loadHistory, onSeriesChange } from './js/timeline.js';
import { loadAnswers, markAnswersDirty, startAnswers } from './js/answers.js';
import { initPause, scheduleRender, setRenderer } from './js/render.js';
import { createCharts, drawCharts, markResourcesDirty, restyleCharts } from './js/charts.js';
import { initResourcePanels, setResourceNoun } from './js/resource-charts.js';
import { pulseBorrows, renderCards, renderCostCard } from './js/cards.js';
import { addEvents, clearEvents, expiriesWithin, noteOmitted } from './js/event-log.js';
import { noteResource } from './js/names.js';
import { renderHttp } from './js/http-table.js';
import { renderRefusals } from './js/refusals.js';
import { pollInstances, renderCluster, renderInstances } from './js/cluster.js';
import { bindControls, fillRanges, showView, updateCsv } from './js/controls.js';
import { startUsage } from './js/usage.js';

let needHistoryOnSnapshot = false;

function onFrame(f) {
  const ch = applyFrame(f);
  const state = live();
  if (ch.snapshot && (needHistoryOnSnapshot || ch.instanceChanged)) {
    // Fill the gap the outage left in the charts (or take the history of the replica that
    // answers now, behind a load balancer).
    needHistoryOnSnapshot = false;
    loadHistory(currentView(), config().labels);
  }
  if (f.instance || ch.cluster) renderCluster(state.instance, ch.cluster ? state.cluster : null);
  if (ch.resources) {
    if (Array.isArray(f.resources)) f.resources.forEach((r) => noteResource(r.name));
    markResourcesDirty();
  }
  if (ch.events.length) {
    addEvents(ch.events, ch.snapshot, config().retention);
    if (!ch.snapshot && ch.events.some((e) => e.kind === 'borrow')) pulseBorrows();
  }
  if (ch.omitted) noteOmitted(ch.omitted);
  if (ch.point) addLivePoint(ch.point);
  const win = state.rates && state.rates.window_seconds;
  renderCards(state, win ? expiriesWithin(win) : 0, config().retention);
  if (f.ts_ms) setText('last-update', 'Updated ' + fmtClock(f.ts_ms));
  if (ch.resources) scheduleRender();
}

function onAnswers(st) {
  renderCostCard(st);
  renderHttp(st);
  renderRefusals(st);
  markResourcesDirty();
  scheduleRender(); // the answer charts pause with the others
}

// A control changed the view: reload what depends on what changed.
function onView(view, changed) {
  updateCsv(view);
  const filter = changed.some((k) => k !== 'range');
  if (filter) {
    resetLive();
    markResourcesDirty();
    clearEvents();
  }
  loadHistory(view, config().labels);
  loadAnswers();
  if (filter) reconnectNow(true);
}

function applyConfig(cfg, raw) {
  const l = cfg.labels;
  document.title = l.title + ' · Realtime';
  setText('title', l.title);
  setText('subtitle-resources', l.resources);
  setText('resource-filter-label', l.resource);
  setText('resource-all', 'All ' + lower(l.resources));
  setText('user-filter-label', l.user);
  $('user-filter').placeholder = 'All ' + lower(l.user) + 's';
  setText('th-resource', l.resource);
  setText('th-user', l.user);
  setText('util-title', 'Utilization by ' + lower(l.resource));
  setResourceNoun(l.resources);
  fillRanges(cfg.ranges, cfg.defaultRange);
  cfg.resources.forEach(noteResource);
  if (cfg.instance) setText('instance-id', cfg.instance);
  if (raw && raw.cluster) {
    renderInstances(cfg.cluster, cfg.instance);
    pollInstances();
  }
  setText('footer-info', 'realtime-layer · ' + fmtRange(cfg.retention) + ' retention');
}

async function init() {
  createCharts();
  initResourcePanels(() => {
    markResourcesDirty();
    markAnswersDirty();
    scheduleRender(true);
  });
  setRenderer(drawCharts);
  onSeriesChange((force) => scheduleRender(force));
  initPause();
  bindControls();
  initConnection({
    url: (lastId, hidden) =>
      dataUrl('stream', currentView(), hidden ? [['hidden', '1']] : [['last_event_id', lastId]]),
    onFrame,
    onLost: () => { needHistoryOnSnapshot = true; },
  });
  if (window.matchMedia) {
    const mq = window.matchMedia('(prefers-color-scheme: dark)');
    if (mq.addEventListener) mq.addEventListener('change', restyleCharts);
  }
  // A hidden tab follows a keep-alive-only stream and polls nothing (dashboards left open in
  // background tabs cost the server almost nothing); back in view it catches up.
  document.addEventListener('visibilitychange', () => {
    setHidden(document.hidden);
    if (!document.hidden) {
      loadAnswers();
      scheduleRender();
    }
  });
  applyConfig(config(), null);

  let raw = null;
  try { raw = await getJson('realtime/config'); } catch (err) { /* defaults */ }
  const cfg = setConfig(raw);
  applyConfig(cfg, raw);
  const view = initView(location.search, cfg);
  showView(view);
  onViewChange(onView);
  loadHistory(view, cfg.labels);
  startAnswers(currentView, onAnswers);
  startUsage(cfg.usage);
  if (document.hidden) setHidden(true);
  else reconnectNow(true);
}

init();
