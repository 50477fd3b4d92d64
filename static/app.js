// realtime-layer dashboard.
//
// Wire contract: docs/PROTOCOL.md. All URLs are relative (`realtime/...`) so the page works under
// any mount prefix. Every string that comes from the server (resource, user, reason, labels) is
// inserted with `textContent` / `value`, never as HTML. No inline scripts or styles (strict CSP).
(function () {
  'use strict';

  var MAX_ROWS = 200;
  var MAX_ATTEMPTS = 10;
  var BASE_DELAY_MS = 1000;
  var MAX_DELAY_MS = 30000;
  var MAX_USERS_LISTED = 500;
  var MAX_ALERTS = 60;
  var WARN_PCT = 15;
  var CRIT_PCT = 30;
  var DEFAULT_RANGES = [60, 300, 600, 1800, 3600, 10800, 21600];
  var DEFAULT_LABELS = { title: 'Realtime', resource: 'Resource', resources: 'Resources', user: 'User' };

  function $(id) { return document.getElementById(id); }

  var state = {
    labels: DEFAULT_LABELS,
    ranges: DEFAULT_RANGES,
    range: 1800,
    retention: 21600,
    resource: '',
    user: '',
    // cluster mode: '' is the whole cluster, else one instance's id
    instance: '',
    cluster: null,
    paused: false,
    // connection
    es: null,
    gen: 0,
    attempt: 0,
    timer: null,
    countdown: null,
    status: 'connecting',
    needHistoryOnSnapshot: false,
    // latest frame values (absent fields in a delta keep these)
    rates: null,
    resources: [],
    buffer: null,
    // chart series (per history bucket)
    series: null,
    lastT: 0,
    historyGen: 0,
    historyLoading: false,
    historyLoads: 0,
    pending: [],
    alerts: [],
    // table
    rowCount: 0,
    users: new Set(),
    knownResources: new Set(),
    // rendering
    seriesDirty: true,
    utilDirty: true,
    renderQueued: false,
    rendered: null,
    // answers (hold times, time at capacity, cost) from realtime/stats, polled
    answers: null,
    answersDirty: false,
    answersGen: 0,
    answersTimer: null,
    // previous HTTP request counts per route and method, for a rate between polls
    httpPrev: null,
  };

  var charts = {};

  // ---------------------------------------------------------------- formatting

  function pad(n, w) { var s = String(n); while (s.length < (w || 2)) s = '0' + s; return s; }

  function fmtClock(ms, withSeconds, withMs) {
    var d = new Date(ms);
    var s = pad(d.getHours()) + ':' + pad(d.getMinutes());
    if (withSeconds !== false) s += ':' + pad(d.getSeconds());
    if (withMs) s += '.' + pad(d.getMilliseconds(), 3);
    return s;
  }

  function fmtRange(s) {
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.round(s / 60) + ' min';
    var h = s / 3600;
    return (Number.isInteger(h) ? h : h.toFixed(1)) + ' h';
  }

  function fmtRate(v) {
    if (v == null || !isFinite(v)) return '–';
    return v >= 100 ? Math.round(v).toLocaleString() : v.toFixed(1);
  }

  function fmtInt(v) { return v == null ? '–' : Number(v).toLocaleString(); }

  function lower(s) { return String(s).toLowerCase(); }

  // ---------------------------------------------------------------- theme

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function alpha(color, a) {
    var m = /^#([0-9a-f]{6})$/i.exec(color);
    if (!m) return color;
    var n = parseInt(m[1], 16);
    return 'rgba(' + (n >> 16 & 255) + ',' + (n >> 8 & 255) + ',' + (n & 255) + ',' + a + ')';
  }

  function theme() {
    return {
      text: cssVar('--text'), muted: cssVar('--muted'), grid: cssVar('--grid'), panel: cssVar('--panel'),
      commit: cssVar('--commit'), overage: cssVar('--overage'), available: cssVar('--available'),
      returns: cssVar('--returns'), failure: cssVar('--failure'), peak: cssVar('--peak'),
      warn: cssVar('--warn'), crit: cssVar('--crit'), border: cssVar('--border'),
    };
  }

  // ---------------------------------------------------------------- charts

  // Vertical alert lines (overage crossings, failure spikes) drawn on the time charts.
  var alertPlugin = {
    id: 'rtAlerts',
    afterDatasetsDraw: function (chart) {
      var r = state.rendered;
      if (!r || !r.t.length || !chart.scales.x) return;
      var area = chart.chartArea;
      var ctx = chart.ctx;
      var th = theme();
      ctx.save();
      ctx.font = '600 10px ' + getComputedStyle(document.body).fontFamily;
      ctx.textBaseline = 'top';
      var kinds = chart.options.plugins.rtAlerts || {};
      var rowEnds = [-Infinity, -Infinity];
      for (var i = 0; i < r.alerts.length; i++) {
        var a = r.alerts[i];
        if (a.level === 'spike' ? !kinds.spikes : !kinds.overage) continue;
        var idx = Math.round((a.t - r.t[0]) / r.bucket);
        if (idx < 0 || idx >= r.t.length) continue;
        var x = Math.round(chart.scales.x.getPixelForValue(idx)) + 0.5;
        var color = a.level === 'crit' ? th.crit : a.level === 'warn' ? th.warn : th.failure;
        ctx.strokeStyle = color;
        ctx.lineWidth = 1.5;
        ctx.setLineDash(a.level === 'spike' ? [2, 3] : [5, 4]);
        ctx.beginPath();
        ctx.moveTo(x, area.top + 14);
        ctx.lineTo(x, area.bottom);
        ctx.stroke();
        ctx.setLineDash([]);
        var w = ctx.measureText(a.short).width + 8;
        var lx = Math.min(Math.max(x - w / 2, area.left), area.right - w);
        // labels that would overlap go to a second row; past that only the line is drawn
        var row = lx >= rowEnds[0] + 2 ? 0 : lx >= rowEnds[1] + 2 ? 1 : -1;
        if (row < 0) continue;
        rowEnds[row] = lx + w;
        var ly = area.top + row * 15;
        ctx.fillStyle = color;
        ctx.fillRect(lx, ly, w, 13);
        ctx.fillStyle = a.level === 'warn' ? '#1b2330' : '#ffffff';
        ctx.fillText(a.short, lx + 4, ly + 1.5);
      }
      ctx.restore();
    },
  };

  function timeChartOptions(opts) {
    var th = theme();
    var scales = {
      x: {
        type: 'category',
        grid: { display: false },
        border: { color: th.border },
        ticks: { autoSkip: true, maxTicksLimit: 8, maxRotation: 0, color: th.muted },
      },
      y: {
        beginAtZero: true,
        grace: '5%',
        grid: { color: th.grid },
        border: { display: false },
        ticks: { precision: 0, color: th.muted },
      },
    };
    if (opts.y1) {
      scales.y1 = {
        position: 'right',
        beginAtZero: true,
        grid: { display: false },
        border: { display: false },
        ticks: { precision: 0, color: th.muted },
        title: { display: true, text: opts.y1, color: th.muted, font: { size: 11 } },
      };
      if (opts.y1Max) scales.y1.suggestedMax = opts.y1Max;
    }
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      normalized: true,
      interaction: { mode: 'index', intersect: false },
      layout: { padding: { top: 4 } },
      scales: scales,
      plugins: {
        rtAlerts: { overage: !!opts.overage, spikes: !!opts.spikes },
        legend: {
          position: 'top', align: 'end',
          labels: { boxWidth: 10, boxHeight: 10, usePointStyle: true, pointStyle: 'rectRounded', color: th.text },
        },
        tooltip: {
          callbacks: {
            title: function (items) {
              var r = state.rendered;
              if (!items.length || !r) return '';
              var t = r.t[items[0].dataIndex];
              if (t == null) return '';
              var s = fmtClock(t * 1000);
              return r.bucket > 1 ? s + ' – ' + fmtClock((t + r.bucket) * 1000) : s;
            },
            label: function (item) {
              var v = item.parsed.y;
              var suffix = item.dataset.unit || '';
              var txt = item.dataset.label + ': ' + (suffix === ' %' ? v.toFixed(1) : fmtInt(v)) + suffix;
              var maxArr = item.dataset.maxOf;
              var r = state.rendered;
              if (maxArr && r && r.bucket > 1 && r[maxArr]) {
                txt += '  (busiest second: ' + fmtInt(r[maxArr][item.dataIndex]) + ')';
              }
              return txt;
            },
            footer: function (items) {
              var r = state.rendered;
              if (!items.length || !r) return '';
              var t = r.t[items[0].dataIndex];
              var kinds = items[0].chart.options.plugins.rtAlerts || {};
              return r.alerts.filter(function (a) { return a.t === t && (a.level === 'spike' ? kinds.spikes : kinds.overage); }).map(function (a) { return '⚠ ' + a.text; });
            },
          },
        },
      },
    };
  }

  function lineDataset(label, color, extra) {
    var ds = {
      label: label, data: [], borderColor: color, backgroundColor: alpha(color, 0.15),
      borderWidth: 2, pointRadius: 0, pointHoverRadius: 4, cubicInterpolationMode: 'monotone', fill: false,
    };
    for (var k in extra) ds[k] = extra[k];
    return ds;
  }

  function createCharts() {
    if (typeof Chart === 'undefined') {
      showChartMsg('Charts unavailable: Chart.js failed to load.');
      return;
    }
    var th = theme();
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = th.muted;
    Chart.defaults.borderColor = th.grid;

    charts.borrows = new Chart($('chart-borrows'), {
      type: 'line',
      data: { labels: [], datasets: [
        lineDataset('Borrows', th.commit, { fill: 'origin', maxOf: 'bMax', key: 'bSum', color: 'commit' }),
        lineDataset('Returns', th.returns, { maxOf: 'rMax', key: 'rSum', color: 'returns' }),
        lineDataset('Active (peak)', th.peak, { key: 'pMax', yAxisID: 'y1', borderDash: [5, 4], borderWidth: 1.5, tension: 0, stepped: true, color: 'peak' }),
      ] },
      options: timeChartOptions({ y1: 'active', overage: true, spikes: true }),
      plugins: [alertPlugin],
    });
    charts.overage = new Chart($('chart-overage'), {
      type: 'line',
      data: { labels: [], datasets: [
        lineDataset('Overage borrows', th.overage, { fill: 'origin', maxOf: 'oMax', key: 'oSum', color: 'overage' }),
        lineDataset('Overage rate (60 s)', th.warn, { key: 'pct', yAxisID: 'y1', borderWidth: 1.5, borderDash: [5, 4], unit: ' %', color: 'warn' }),
      ] },
      options: timeChartOptions({ y1: '%', y1Max: 40, overage: true }),
      plugins: [alertPlugin],
    });
    charts.failures = new Chart($('chart-failures'), {
      type: 'bar',
      data: { labels: [], datasets: [
        { label: 'Failures', data: [], key: 'fSum', maxOf: 'fMax', color: 'failure',
          backgroundColor: alpha(th.failure, 0.75), borderColor: th.failure, borderWidth: 0,
          barPercentage: 1, categoryPercentage: 0.9, minBarLength: 0 },
      ] },
      options: timeChartOptions({ spikes: true }),
      plugins: [alertPlugin],
    });

    var utilOpts = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      indexAxis: 'y',
      interaction: { mode: 'index', intersect: false, axis: 'y' },
      scales: {
        x: { stacked: true, beginAtZero: true, grid: { color: th.grid }, border: { display: false },
             ticks: { precision: 0, color: th.muted } },
        y: { stacked: true, grid: { display: false }, border: { color: th.border },
             ticks: { color: th.text, autoSkip: false } },
      },
      plugins: {
        legend: { position: 'top', align: 'end',
                  labels: { boxWidth: 10, boxHeight: 10, usePointStyle: true, pointStyle: 'rectRounded', color: th.text,
                            sort: function (a, b) { return a.datasetIndex - b.datasetIndex; } } },
        tooltip: {
          callbacks: {
            label: function (item) {
              var v = item.dataset.type === 'line' ? item.parsed.x : item.raw;
              return item.dataset.label + ': ' + fmtInt(v);
            },
            footer: function (items) {
              if (!items.length) return '';
              var res = state.resources[items[0].dataIndex];
              if (!res) return '';
              var parts = [];
              parts.push('Borrowed ' + fmtInt(res.borrowed));
              if (res.total != null) parts.push('total ' + fmtInt(res.total));
              if (res.commit != null) parts.push('commit ' + fmtInt(res.commit));
              var lines = [parts.join(' · ')];
              var cost = answerCost(res.name);
              if (cost) lines.push(cost);
              return lines;
            },
          },
        },
      },
    };
    charts.util = new Chart($('chart-util'), {
      type: 'bar',
      data: { labels: [], datasets: [
        { label: 'In commit', data: [], stack: 'util', color: 'commit', backgroundColor: th.commit, borderRadius: 2, barPercentage: 0.7 },
        { label: 'In overage', data: [], stack: 'util', color: 'overage', backgroundColor: th.overage, borderRadius: 2, barPercentage: 0.7 },
        { label: 'Available', data: [], stack: 'util', color: 'available', backgroundColor: th.available, borderRadius: 2, barPercentage: 0.7 },
        { label: 'Peak borrowed', type: 'line', data: [], stack: 'peak', order: -1, indexAxis: 'y', showLine: false, clip: false, color: 'peak',
          pointStyle: 'rectRot', pointRadius: 7, pointHoverRadius: 9, borderWidth: 2,
          borderColor: th.panel, backgroundColor: th.peak },
      ] },
      options: utilOpts,
    });
    createAnswerCharts(th);
  }

  // Colour scheme changed: rebuild the charts with the new palette (cached element options in
  // Chart.js do not all follow in-place colour changes), then refill them from the model.
  function restyleCharts() {
    if (typeof Chart === 'undefined' || !charts.util) return;
    Object.keys(charts).forEach(function (name) { charts[name].destroy(); delete charts[name]; });
    var box = $('chart-util').parentNode;
    delete box.dataset.h;
    createCharts();
    state.seriesDirty = true;
    state.utilDirty = true;
    state.answersDirty = true;
    renderCharts(true);
  }

  function showChartMsg(text) {
    var el = $('chart-msg');
    el.textContent = text || '';
    el.hidden = !text;
  }

  // ---------------------------------------------------------------- series model

  function emptySeries(bucket, t) {
    return { bucket: bucket, t: t || [], bSum: [], bMax: [], oSum: [], oMax: [], rSum: [], rMax: [],
             fSum: [], fMax: [], pMax: [] };
  }

  function num(a, i) { return a && a[i] != null ? +a[i] : 0; }

  function seriesFromHistory(h, zero) {
    var s = emptySeries(h.bucket_seconds || 1, (h.t || []).slice());
    for (var i = 0; i < s.t.length; i++) {
      var z = zero ? 0 : 1;
      s.bSum.push(z * num(h.borrows && h.borrows.sum, i));
      s.bMax.push(z * num(h.borrows && h.borrows.max, i));
      s.oSum.push(z * num(h.overage_borrows && h.overage_borrows.sum, i));
      s.oMax.push(z * num(h.overage_borrows && h.overage_borrows.max, i));
      s.rSum.push(z * num(h.returns && h.returns.sum, i));
      s.rMax.push(z * num(h.returns && h.returns.max, i));
      s.fSum.push(z * num(h.failures && h.failures.sum, i));
      s.fMax.push(z * num(h.failures && h.failures.max, i));
      s.pMax.push(z * num(h.peak_borrowed && h.peak_borrowed.max, i));
    }
    s.origin = s.t.length ? s.t[0] : (h.start || 0);
    return s;
  }

  // When history is unavailable, start from an empty, zero-filled window at ~360 buckets.
  function syntheticSeries(range) {
    var steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    var bucket = steps[steps.length - 1];
    for (var i = 0; i < steps.length; i++) { if (range / steps[i] <= 360) { bucket = steps[i]; break; } }
    var now = Math.floor(Date.now() / 1000);
    var end = now - (now % bucket);
    var n = Math.max(1, Math.floor(range / bucket));
    var t = [];
    for (var k = n - 1; k >= 0; k--) t.push(end - k * bucket);
    var h = { bucket_seconds: bucket, t: t, start: t[0], end: now };
    return seriesFromHistory(h, true);
  }

  function pushBucket(s, t) {
    s.t.push(t);
    s.bSum.push(0); s.bMax.push(0); s.oSum.push(0); s.oMax.push(0); s.rSum.push(0); s.rMax.push(0);
    s.fSum.push(0); s.fMax.push(0); s.pMax.push(0);
  }

  function shiftBucket(s) {
    s.t.shift();
    s.bSum.shift(); s.bMax.shift(); s.oSum.shift(); s.oMax.shift(); s.rSum.shift(); s.rMax.shift();
    s.fSum.shift(); s.fMax.shift(); s.pMax.shift();
  }

  function mod(a, b) { return ((a % b) + b) % b; }

  // Fold one per-second `point` into the series (accumulating into the current bucket when the
  // history bucket is larger than one second: sum for counts, max for per-second peaks).
  function addPoint(p) {
    if (!p || p.t == null) return;
    if (state.historyLoading) { state.pending.push(p); return; }
    var s = state.series;
    if (!s || p.t <= state.lastT) return;
    var b = s.bucket;
    var bt = p.t - mod(p.t - s.origin, b);
    var n = s.t.length;
    var last = n ? s.t[n - 1] : null;
    if (last === null || bt > last) {
      var next = last === null ? bt : last + b;
      var maxBuckets = Math.max(1, Math.floor(state.range / b));
      if ((bt - next) / b > maxBuckets) next = bt - (maxBuckets - 1) * b;
      for (; next <= bt; next += b) pushBucket(s, next);
      while (s.t.length > maxBuckets) shiftBucket(s);
    }
    var idx = Math.round((bt - s.t[0]) / b);
    if (idx >= 0 && idx < s.t.length) {
      var borrows = +p.borrows || 0, over = +p.overage_borrows || 0, ret = +p.returns || 0,
          fail = +p.failures || 0, peak = +p.peak_borrowed || 0;
      s.bSum[idx] += borrows; s.bMax[idx] = Math.max(s.bMax[idx], borrows);
      s.oSum[idx] += over; s.oMax[idx] = Math.max(s.oMax[idx], over);
      s.rSum[idx] += ret; s.rMax[idx] = Math.max(s.rMax[idx], ret);
      s.fSum[idx] += fail; s.fMax[idx] = Math.max(s.fMax[idx], fail);
      s.pMax[idx] = Math.max(s.pMax[idx], peak);
    }
    state.lastT = p.t;
    state.seriesDirty = true;
  }

  // Rolling (~60 s) overage share per bucket, and alert annotations: the overage rate crossing
  // 15 % / 30 % upwards, and failure spikes (busiest second well above the recent rate).
  function analyse(s) {
    var n = s.t.length, b = s.bucket;
    var w = Math.max(1, Math.round(60 / b));
    var pct = new Array(n);
    var alerts = [];
    var winB = 0, winO = 0, winF = 0, level = 0, last = 0, prevSpike = false, lastSpike = -Infinity;
    for (var i = 0; i < n; i++) {
      // failure spike, judged against the window *before* this bucket
      var prevBuckets = Math.min(i, w);
      var base = prevBuckets ? winF / prevBuckets : 0; // mean failures per bucket before this one
      var spike = s.fSum[i] >= 5 && s.fSum[i] >= 3 * base + 3;
      if (spike && !prevSpike && i - lastSpike > w) {
        lastSpike = i;
        alerts.push({ t: s.t[i], level: 'spike', short: '✕' + s.fSum[i],
                      text: 'Failure spike: ' + s.fSum[i] + ' failures (' + s.fMax[i] + ' in one second)' });
      }
      prevSpike = spike;

      winB += s.bSum[i]; winO += s.oSum[i]; winF += s.fSum[i];
      if (i >= w) { winB -= s.bSum[i - w]; winO -= s.oSum[i - w]; winF -= s.fSum[i - w]; }
      if (winB > 0) last = 100 * winO / winB; else last = 0;
      pct[i] = Math.round(last * 10) / 10;
      if (winB === 0) { level = 0; continue; }
      if (winB < 4) continue; // too few borrows to judge
      var next = last > CRIT_PCT ? 2 : last > WARN_PCT ? 1 : 0;
      // hysteresis: only step down once clearly below the threshold
      if (next < level) {
        var floor = level === 2 ? CRIT_PCT - 3 : WARN_PCT - 3;
        if (last >= floor) next = level;
      }
      if (next > level) {
        alerts.push({ t: s.t[i], level: next === 2 ? 'crit' : 'warn', short: Math.round(last) + '%',
                      text: 'Overage rate crossed ' + (next === 2 ? CRIT_PCT : WARN_PCT) + ' % (' + last.toFixed(1) + ' %)' });
      }
      level = next;
    }
    if (alerts.length > MAX_ALERTS) alerts = alerts.slice(alerts.length - MAX_ALERTS);
    return { pct: pct, alerts: alerts };
  }

  // ---------------------------------------------------------------- history

  function historyUrl() {
    var u = 'realtime/history?window=' + state.range;
    if (state.resource) u += '&resource=' + encodeURIComponent(state.resource);
    if (state.instance) u += '&instance=' + encodeURIComponent(state.instance);
    return u;
  }

  function loadHistory() {
    var gen = ++state.historyGen;
    state.historyLoading = true;
    state.pending = [];
    var section = $('charts');
    section.setAttribute('aria-busy', 'true');
    return fetch(historyUrl(), { cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (h) {
        if (gen !== state.historyGen) return;
        var byUser = !!state.user;
        state.series = seriesFromHistory(h, byUser);
        state.lastT = h.end != null ? h.end - 1 : (state.series.t.length ? state.series.t[state.series.t.length - 1] + state.series.bucket - 1 : 0);
        showChartMsg(byUser ? 'History is not kept per ' + lower(state.labels.user) + ': charts show live data for “' + state.user + '” from ' + fmtClock(Date.now()) + ' on.' : '');
        finishHistory(gen);
      })
      .catch(function (err) {
        if (gen !== state.historyGen) return;
        state.series = syntheticSeries(state.range);
        state.lastT = Math.floor(Date.now() / 1000) - 1;
        showChartMsg('History unavailable (' + err.message + '): charts show live data only.');
        finishHistory(gen);
      });
  }

  function finishHistory(gen) {
    var pend = state.pending;
    state.pending = [];
    state.historyLoading = false;
    for (var i = 0; i < pend.length; i++) addPoint(pend[i]);
    state.historyLoads++;
    var section = $('charts');
    section.removeAttribute('aria-busy');
    section.dataset.range = String(state.range);
    section.dataset.historyLoads = String(state.historyLoads);
    var b = state.series.bucket;
    var note = b > 1 ? 'per ' + fmtRange(b) + ' bucket' : 'per second';
    document.querySelectorAll('.bucket-note').forEach(function (el) { el.textContent = note; });
    state.seriesDirty = true;
    scheduleRender(true);
  }

  // ---------------------------------------------------------------- rendering

  function scheduleRender(force) {
    if (state.paused && !force) return;
    if (state.renderQueued) return;
    state.renderQueued = true;
    var run = function () { state.renderQueued = false; renderCharts(force); };
    // rAF stops in background tabs; a timer keeps charts current when the tab is hidden.
    if (document.hidden) setTimeout(run, 250); else requestAnimationFrame(run);
  }

  function renderCharts(force) {
    if ((state.paused && !force) || !charts.util) return;
    var s = state.series;
    if (state.seriesDirty && s) {
      state.seriesDirty = false;
      var a = analyse(s);
      var withSeconds = s.bucket < 60;
      var labels = s.t.map(function (t) { return fmtClock(t * 1000, withSeconds); });
      var r = { bucket: s.bucket, t: s.t.slice(), alerts: a.alerts, pct: a.pct,
                bSum: s.bSum.slice(), bMax: s.bMax.slice(), oSum: s.oSum.slice(), oMax: s.oMax.slice(),
                rSum: s.rSum.slice(), rMax: s.rMax.slice(), fSum: s.fSum.slice(), fMax: s.fMax.slice(),
                pMax: s.pMax.slice() };
      state.rendered = r;
      state.alerts = a.alerts;
      ['borrows', 'overage', 'failures'].forEach(function (name) {
        var c = charts[name];
        c.data.labels = labels;
        c.data.datasets.forEach(function (ds) { ds.data = r[ds.key]; });
        c.update('none');
      });
      // Which history load the charts now show (history lands in the series at once, in the
      // charts at the next frame): lets tests and tools wait for the drawn state.
      $('charts').dataset.renderedLoads = String(state.historyLoads);
    }
    if (state.answersDirty) {
      state.answersDirty = false;
      renderAnswers();
    }
    if (state.utilDirty) {
      state.utilDirty = false;
      var res = state.resources;
      var c = charts.util;
      c.data.labels = res.map(function (x) { return x.name; });
      c.data.datasets[0].data = res.map(function (x) { return x.in_commit != null ? x.in_commit : Math.max(0, (x.borrowed || 0) - (x.overage || 0)); });
      c.data.datasets[1].data = res.map(function (x) { return x.overage || 0; });
      c.data.datasets[2].data = res.map(function (x) { return x.available != null ? Math.max(0, x.available) : 0; });
      c.data.datasets[3].data = res.map(function (x) { return { x: x.peak_borrowed != null ? x.peak_borrowed : (x.borrowed || 0), y: x.name }; });
      // one comfortable row per resource
      var box = $('chart-util').parentNode;
      var h = Math.max(260, res.length * 34 + 70);
      if (box.dataset.h !== String(h)) { box.style.height = h + 'px'; box.dataset.h = String(h); }
      c.update('none');
    }
  }

  function setCard(id, text) { var el = $(id); if (el.textContent !== text) el.textContent = text; }

  function renderCards() {
    var r = state.rates;
    if (r) {
      setCard('m-borrows', fmtRate(r.borrows_per_min));
      setCard('m-returns', fmtRate(r.returns_per_min));
      setCard('m-failures', fmtRate(r.failures_per_min));
      var pct = +r.overage_percent || 0;
      setCard('m-overage', pct.toFixed(1) + ' %');
      var card = $('card-overage');
      card.classList.toggle('warn', pct > WARN_PCT && pct <= CRIT_PCT);
      card.classList.toggle('crit', pct > CRIT_PCT);
      var win = r.window_seconds ? 'last ' + fmtRange(r.window_seconds) : '';
      setCard('m-borrows-sub', win);
      var expired = r.window_seconds ? expiriesWithin(r.window_seconds) : 0;
      setCard('m-returns-sub', expired ? win + ' · ' + fmtInt(expired) + ' expired' : win);
      setCard('m-failures-sub', 'denial rate ' + (r.denial_rate != null ? (100 * r.denial_rate).toFixed(1) + ' %' : '–'));
    }
    var res = state.resources || [];
    var active = 0, total = 0, totalKnown = res.length > 0, over = 0;
    res.forEach(function (x) {
      active += x.borrowed || 0;
      over += x.overage || 0;
      if (x.total == null) totalKnown = false; else total += x.total;
    });
    setCard('m-active', fmtInt(active));
    var sub = totalKnown ? 'of ' + fmtInt(total) + ' · ' : '';
    sub += fmtInt(over) + ' over commit';
    setCard('m-active-sub', res.length ? sub : 'borrowed now');
    var b = state.buffer;
    if (b) {
      setCard('m-buffer', fmtInt(b.total_events));
      var bs = b.oldest_event_ms ? 'since ' + fmtClock(b.oldest_event_ms, false) : 'events retained';
      bs += ' · ' + fmtRange(state.retention) + ' kept';
      if (b.folded_names) bs += ' · ' + fmtInt(b.folded_names) + ' folded';
      setCard('m-buffer-sub', bs);
    }
  }

  function pulse(id) {
    var el = $(id);
    el.classList.remove('pulse');
    void el.offsetWidth; // restart the animation
    el.classList.add('pulse');
  }

  // ---------------------------------------------------------------- answers
  //
  // Hold times, time at capacity and overage cost over the selected range come from
  // realtime/stats (docs/PROTOCOL.md), polled every ANSWERS_POLL_MS and on every range or filter
  // change; a stale answer (from before a change) is dropped.

  var ANSWERS_POLL_MS = 5000;

  function fmtDuration(s) {
    if (s == null || !isFinite(s)) return '–';
    if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + ' s';
    if (s < 3600) return (s / 60).toFixed(1) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }

  function fmtMoney(v, currency) {
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency: String(currency) }).format(v);
    } catch (err) {
      return (+v).toFixed(2) + ' ' + String(currency);
    }
  }

  // The cost line of a resource's utilization tooltip (null without pricing).
  function answerCost(name) {
    var a = state.answers;
    if (!a || !a.resources) return null;
    for (var i = 0; i < a.resources.length; i++) {
      var r = a.resources[i];
      if (r.name !== name || !r.cost) continue;
      var c = r.cost;
      return 'Cost in ' + fmtRange(a.window_seconds) + ': ' + fmtMoney(c.total_in_window, c.currency) +
        ' (commit ' + fmtMoney(c.commit_price, c.currency) + ' + overage ' + fmtMoney(c.overage_cost_in_window, c.currency) +
        ') · over commit now ' + fmtMoney(c.overage_cost_now, c.currency);
    }
    return null;
  }

  function statsUrl() {
    var u = 'realtime/stats?window=' + state.range;
    if (state.resource) u += '&resource=' + encodeURIComponent(state.resource);
    if (state.user) u += '&user=' + encodeURIComponent(state.user);
    return u;
  }

  function loadAnswers() {
    var gen = ++state.answersGen;
    if (state.answersTimer) clearTimeout(state.answersTimer);
    state.answersTimer = setTimeout(loadAnswers, ANSWERS_POLL_MS);
    fetch(statsUrl(), { cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
      .then(function (st) {
        if (gen !== state.answersGen) return;
        state.answers = st;
        state.answersDirty = true;
        renderCostCard();
        renderHttp(st);
        scheduleRender(); // the answer charts pause with the others
      })
      .catch(function () { /* keep the last answers; the next poll tries again */ });
  }

  function renderCostCard() {
    var a = state.answers;
    var card = $('card-cost');
    var cur = a && a.cost && a.cost.currencies;
    card.hidden = !(cur && cur.length);
    if (card.hidden) return;
    setCard('m-cost', cur.map(function (c) { return fmtMoney(c.overage_in_window, c.currency); }).join(' + '));
    setCard('m-cost-sub', 'last ' + fmtRange(a.window_seconds) + ' · now ' +
      cur.map(function (c) { return fmtMoney(c.overage_now, c.currency); }).join(' + ') + ' over commit');
  }

  function fmtLatency(s) {
    if (s == null) return '> 10 s';
    return s < 1 ? '≤ ' + Math.round(s * 1000) + ' ms' : '≤ ' + s + ' s';
  }

  // HTTP golden signals (only when the app's layer records them): a table, one row per route and
  // method, with the request rate since the previous poll.
  function renderHttp(st) {
    var routes = st.http || [];
    var panel = $('panel-http');
    panel.hidden = routes.length === 0;
    if (!routes.length) return;
    var now = st.generated_at_ms;
    var prev = state.httpPrev;
    var dt = prev ? (now - prev.at) / 1000 : 0;
    var counts = {};
    var body = $('http-body');
    var frag = document.createDocumentFragment();
    routes.forEach(function (r) {
      var key = r.method + ' ' + r.route;
      counts[key] = r.requests;
      var tr = document.createElement('tr');
      cell(tr, 'resource', String(r.route));
      cell(tr, '', String(r.method));
      cell(tr, 'num', fmtInt(r.requests));
      var before = prev && prev.counts[key];
      cell(tr, 'num', dt > 0 && before != null ? fmtRate((r.requests - before) / dt) : '–');
      var errors = r.server_errors || 0;
      cell(tr, 'num', fmtInt(errors) + (r.requests ? ' (' + (100 * errors / r.requests).toFixed(1) + ' %)' : ''));
      cell(tr, 'num', fmtLatency(r.p50_seconds));
      cell(tr, 'num', fmtLatency(r.p99_seconds));
      frag.appendChild(tr);
    });
    while (body.firstChild) body.removeChild(body.firstChild);
    body.appendChild(frag);
    panel.dataset.routes = String(routes.length);
    state.httpPrev = { at: now, counts: counts };
  }

  function createAnswerCharts(th) {
    var barOpts = function (unitLabel, footer) {
      return {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: 'y',
        interaction: { mode: 'index', intersect: false, axis: 'y' },
        scales: {
          x: { beginAtZero: true, grid: { color: th.grid }, border: { display: false },
               title: { display: true, text: unitLabel, color: th.muted, font: { size: 11 } },
               ticks: { color: th.muted } },
          y: { grid: { display: false }, border: { color: th.border }, ticks: { color: th.text, autoSkip: false } },
        },
        plugins: {
          legend: { position: 'top', align: 'end',
                    labels: { boxWidth: 10, boxHeight: 10, usePointStyle: true, pointStyle: 'rectRounded', color: th.text } },
          tooltip: { callbacks: {
            label: function (item) { return item.dataset.label + ': ' + fmtDuration(item.raw * (item.dataset.scale || 1)); },
            footer: footer,
          } },
        },
      };
    };
    var bar = function (label, color, extra) {
      var ds = { label: label, data: [], color: color, backgroundColor: th[color], borderRadius: 2, barPercentage: 0.8 };
      for (var k in extra) ds[k] = extra[k];
      return ds;
    };
    charts.holds = new Chart($('chart-holds'), {
      type: 'bar',
      data: { labels: [], datasets: [
        bar('p50', 'commit', { scale: 60 }), bar('p90', 'overage', { scale: 60 }), bar('p99', 'failure', { scale: 60 }),
      ] },
      options: barOpts('minutes', function (items) {
        var h = items.length && state.answers && state.answers.hold_times.resources[items[0].dataIndex];
        if (!h) return '';
        var lines = [fmtInt(h.count) + ' holds · mean ' + fmtDuration(h.mean_seconds) + ' · longest ' + fmtDuration(h.max_seconds) + ' · ' + fmtInt(h.open) + ' out now'];
        var bounds = state.answers.hold_times.bucket_bounds_seconds || [];
        var hist = [];
        (h.histogram || []).forEach(function (n, i) {
          if (n) hist.push((i < bounds.length ? '≤ ' + fmtDuration(bounds[i]) : '> ' + fmtDuration(bounds[bounds.length - 1])) + ': ' + fmtInt(n));
        });
        if (hist.length) lines.push(hist.join(' · '));
        return lines;
      }),
    });
    charts.capacity = new Chart($('chart-capacity'), {
      type: 'bar',
      data: { labels: [], datasets: [
        bar('At or above commit', 'overage', { scale: 60 }), bar('Exhausted', 'crit', { scale: 60 }),
      ] },
      options: barOpts('minutes', function (items) {
        var c = items.length && capacityRows()[items[0].dataIndex];
        if (!c) return '';
        var lines = [];
        if (c.exhausted_share != null) lines.push((100 * c.exhausted_share).toFixed(1) + ' % of the range exhausted');
        if (c.total != null) lines.push('pool ' + fmtInt(c.total) + ' · commit ' + fmtInt(c.commit));
        var d = Object.keys(c.denials || {}).map(function (k) { return k + ' ' + fmtInt(c.denials[k]); });
        lines.push(d.length ? 'refused: ' + d.join(' · ') : 'no refusals');
        return lines;
      }),
    });
  }

  // Resources with known pool sizes, as the server sorted them (most time exhausted first).
  function capacityRows() {
    var a = state.answers;
    return a && a.capacity ? a.capacity.filter(function (c) { return c.seconds_exhausted != null; }) : [];
  }

  function sizeBox(canvasId, rows) {
    var box = $(canvasId).parentNode;
    var h = Math.max(160, rows * 30 + 80);
    if (box.dataset.h !== String(h)) { box.style.height = h + 'px'; box.dataset.h = String(h); }
  }

  function renderAnswers() {
    var a = state.answers;
    if (!a || !charts.holds) return;
    var win = 'last ' + fmtRange(a.window_seconds);
    var holds = (a.hold_times && a.hold_times.resources) || [];
    var hc = charts.holds;
    hc.data.labels = holds.map(function (h) { return h.resource; });
    var minutes = function (v) { return v == null ? 0 : v / 60; };
    hc.data.datasets[0].data = holds.map(function (h) { return minutes(h.p50_seconds); });
    hc.data.datasets[1].data = holds.map(function (h) { return minutes(h.p90_seconds); });
    hc.data.datasets[2].data = holds.map(function (h) { return minutes(h.p99_seconds); });
    sizeBox('chart-holds', holds.length);
    hc.update('none');
    var counted = holds.reduce(function (n, h) { return n + (h.count || 0); }, 0);
    $('holds-empty').hidden = counted > 0;
    $('panel-holds').dataset.resources = String(holds.length);
    setCard('holds-note', win + ' · ' + fmtInt(counted) + ' holds');

    var rows = capacityRows();
    var cc = charts.capacity;
    cc.data.labels = rows.map(function (c) { return c.resource; });
    cc.data.datasets[0].data = rows.map(function (c) { return (c.seconds_at_commit || 0) / 60; });
    cc.data.datasets[1].data = rows.map(function (c) { return (c.seconds_exhausted || 0) / 60; });
    sizeBox('chart-capacity', rows.length);
    cc.update('none');
    $('capacity-empty').hidden = rows.length > 0;
    $('panel-capacity').dataset.resources = String(rows.length);
    setCard('capacity-note', win + ' · most time exhausted first');
  }

  // ---------------------------------------------------------------- event log

  function cell(tr, cls, text) {
    var td = document.createElement('td');
    if (cls) td.className = cls;
    if (text != null) td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function span(parent, cls, text) {
    var el = document.createElement('span');
    el.className = cls;
    el.textContent = text;
    parent.appendChild(el);
    return el;
  }

  function eventKey(e) {
    return [e.ts_ms, e.kind, e.resource, e.user, e.borrow_id].join('\u0001');
  }

  function buildRow(e) {
    var tr = document.createElement('tr');
    tr.className = 'fresh';
    tr.dataset.kind = String(e.kind);
    cell(tr, 'time', fmtClock(e.ts_ms, true, true));
    var kind = cell(tr, 'kind');
    span(kind, 'badge ' + (e.kind === 'borrow' || e.kind === 'return' || e.kind === 'failure' ? e.kind : ''), String(e.kind));
    cell(tr, 'resource', e.resource == null ? '' : String(e.resource));
    cell(tr, 'user', e.user == null ? '' : String(e.user));
    var det = cell(tr, 'details');
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

  // `events` may arrive in any order; the table shows newest first. On a snapshot (after a
  // reconnect) events already shown are skipped.
  function addEvents(events, dedupe) {
    var body = $('events-body');
    var seen = null;
    if (dedupe) {
      seen = new Set();
      for (var k = 0; k < body.rows.length; k++) seen.add(body.rows[k]._key);
    }
    var sorted = events.slice().sort(function (a, b) { return (a.ts_ms || 0) - (b.ts_ms || 0); });
    if (sorted.length > MAX_ROWS) sorted = sorted.slice(sorted.length - MAX_ROWS);
    var frag = document.createDocumentFragment();
    var added = 0;
    for (var i = sorted.length - 1; i >= 0; i--) {
      var e = sorted[i];
      if (seen && seen.has(eventKey(e))) continue;
      frag.appendChild(buildRow(e));
      added++;
      if (e.kind === 'return' && e.reason === 'expired') noteExpiry(e.ts_ms);
      noteUser(e.user);
      noteResource(e.resource);
    }
    if (!added) return;
    body.insertBefore(frag, body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    $('events-empty').hidden = body.rows.length > 0;
  }

  // Times of expired returns seen, for the Returns card (bounded; older than retention dropped).
  var MAX_EXPIRIES = 10000;
  function noteExpiry(ts) {
    var list = state.expiries || (state.expiries = []);
    list.push(+ts || 0);
    var horizon = Date.now() - state.retention * 1000;
    while (list.length && (list.length > MAX_EXPIRIES || list[0] < horizon)) list.shift();
  }

  function expiriesWithin(seconds) {
    var since = Date.now() - seconds * 1000, n = 0;
    (state.expiries || []).forEach(function (t) { if (t >= since) n++; });
    return n;
  }

  function clearEvents() {
    state.expiries = [];
    var body = $('events-body');
    while (body.firstChild) body.removeChild(body.firstChild);
    $('events-empty').hidden = false;
  }

  function noteUser(u) {
    if (u == null || u === '' || state.users.has(u) || state.users.size >= MAX_USERS_LISTED) return;
    state.users.add(u);
    var opt = document.createElement('option');
    opt.value = String(u);
    $('user-list').appendChild(opt);
  }

  function noteResource(name) {
    if (name == null || name === '' || state.knownResources.has(name)) return;
    state.knownResources.add(name);
    var sel = $('resource-filter');
    var opt = document.createElement('option');
    opt.value = String(name);
    opt.textContent = String(name);
    // keep options sorted by name after the "All" entry
    var before = null;
    for (var i = 1; i < sel.options.length; i++) {
      if (sel.options[i].value.localeCompare(name) > 0) { before = sel.options[i]; break; }
    }
    sel.insertBefore(opt, before);
  }

  // ---------------------------------------------------------------- stream

  function streamUrl() {
    var q = [];
    if (state.resource) q.push('resource=' + encodeURIComponent(state.resource));
    if (state.user) q.push('user=' + encodeURIComponent(state.user));
    if (state.instance) q.push('instance=' + encodeURIComponent(state.instance));
    return 'realtime/stream' + (q.length ? '?' + q.join('&') : '');
  }

  function setStatus(s, text) {
    state.status = s;
    var el = $('status');
    el.dataset.state = s;
    el.dataset.attempt = String(state.attempt);
    $('status-text').textContent = text;
    $('retry').hidden = s !== 'failed';
  }

  function closeStream() {
    if (state.timer) { clearTimeout(state.timer); state.timer = null; }
    if (state.countdown) { clearInterval(state.countdown); state.countdown = null; }
    if (state.es) {
      state.es.onopen = state.es.onmessage = state.es.onerror = null;
      state.es.close();
      state.es = null;
    }
  }

  function connect() {
    closeStream();
    var gen = ++state.gen;
    if (state.attempt === 0) setStatus('connecting', 'Connecting…');
    else setStatus('reconnecting', 'Reconnecting (attempt ' + state.attempt + '/' + MAX_ATTEMPTS + ')…');
    var es = new EventSource(streamUrl());
    state.es = es;
    es.onopen = function () {
      if (gen !== state.gen) return;
      state.attempt = 0;
      setStatus('connected', 'Connected');
    };
    es.onmessage = function (ev) {
      if (gen !== state.gen) return;
      var f;
      try { f = JSON.parse(ev.data); } catch (err) { return; }
      if (state.status !== 'connected') { state.attempt = 0; setStatus('connected', 'Connected'); }
      handleFrame(f);
    };
    es.onerror = function () {
      if (gen !== state.gen) return;
      // Take over reconnection from the browser so that backoff and the attempt limit are ours,
      // and never leave two connections open.
      closeStream();
      state.needHistoryOnSnapshot = true;
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (state.attempt >= MAX_ATTEMPTS) {
      setStatus('failed', 'Disconnected: gave up after ' + MAX_ATTEMPTS + ' attempts');
      return;
    }
    state.attempt++;
    var delay = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * Math.pow(2, state.attempt - 1));
    delay = Math.round(delay * (0.85 + Math.random() * 0.3));
    var at = Date.now() + delay;
    var show = function () {
      var left = Math.max(0, Math.ceil((at - Date.now()) / 1000));
      setStatus('reconnecting', 'Reconnecting (attempt ' + state.attempt + '/' + MAX_ATTEMPTS + ')' + (left ? ' in ' + left + ' s…' : '…'));
    };
    show();
    state.countdown = setInterval(show, 1000);
    state.timer = setTimeout(function () { state.timer = null; connect(); }, delay);
  }

  function reconnectNow() {
    state.attempt = 0;
    connect();
  }

  // A delta's `res`: for each listed resource, only the fields that changed.
  // A delta's `res`: each entry is `{i: position in the resource list, ...changed fields}`
  // (servers before the positions sent `name` instead: still understood, e.g. while replicas of
  // two versions serve one dashboard behind a load balancer).
  function applyResourceChanges(changes) {
    var list = state.resources.slice();
    changes.forEach(function (c) {
      var i = c.i;
      if (typeof i !== 'number') {
        i = list.findIndex(function (r) { return r.name === c.name; });
      }
      if (i < 0 || !list[i]) return;
      var merged = Object.assign({}, list[i], c);
      delete merged.i;
      list[i] = merged;
    });
    state.resources = list;
    state.utilDirty = true;
  }

  var KINDS = ['borrow', 'return', 'failure'];

  // A delta's compact event `[dt, kind, resource, user, borrow_id, extra]` as an event object;
  // `resource` is a position in the resource list (applied from the same frame first) or a name.
  function expandEvent(c, frameTs) {
    var kind = KINDS[c[1]] || String(c[1]);
    var res = c[2];
    if (typeof res === 'number') res = state.resources[res] ? state.resources[res].name : '?';
    return {
      ts_ms: (frameTs || 0) + (c[0] || 0),
      kind: kind,
      resource: res,
      user: c[3],
      borrow_id: c[4] == null ? null : c[4],
      overage: kind === 'borrow' && c[5] === 1,
      reason: typeof c[5] === 'string' ? c[5] : null,
      instance: c[6] == null ? undefined : c[6]
    };
  }

  function handleFrame(f) {
    if (f.kind === 'snapshot' && state.needHistoryOnSnapshot) {
      // Fill the gap left by the outage.
      state.needHistoryOnSnapshot = false;
      loadHistory();
    }
    if (f.instance || f.cluster) renderCluster(f.instance, f.cluster);
    if (f.rates) state.rates = f.rates;
    if (f.resources) {
      state.resources = f.resources;
      state.utilDirty = true;
      f.resources.forEach(function (r) { noteResource(r.name); });
    }
    if (f.res) applyResourceChanges(f.res);
    if (f.buffer) state.buffer = f.buffer;
    if (f.ev && f.ev.length) {
      var expanded = f.ev.map(function (c) { return expandEvent(c, f.ts_ms); });
      f.events = (f.events || []).concat(expanded);
    }
    if (f.events && f.events.length) {
      addEvents(f.events, f.kind === 'snapshot');
      if (f.kind !== 'snapshot' && f.events.some(function (e) { return e.kind === 'borrow'; })) pulse('card-borrows');
    }
    if (f.events_omitted) {
      $('log-note').textContent = 'newest first · last ' + MAX_ROWS + ' · ' + fmtInt(f.events_omitted) + ' skipped in a burst';
    }
    if (f.point) addPoint(f.point);
    renderCards();
    if (f.ts_ms) $('last-update').textContent = 'Updated ' + fmtClock(f.ts_ms);
    if (state.seriesDirty || state.utilDirty) scheduleRender();
  }

  // ---------------------------------------------------------------- controls

  function csvUrl() {
    var u = 'realtime/events.csv?window=' + state.range;
    if (state.resource) u += '&resource=' + encodeURIComponent(state.resource);
    if (state.user) u += '&user=' + encodeURIComponent(state.user);
    if (state.instance) u += '&instance=' + encodeURIComponent(state.instance);
    return u;
  }

  // ---------------------------------------------------------------- cluster

  // Header badge ("cluster · N instances"), the answering instance, and the degraded banner.
  // Names go in with textContent only.
  function renderCluster(instance, c) {
    if (instance) $('instance-id').textContent = String(instance);
    if (!c) return;
    state.cluster = Object.assign({}, state.cluster || {}, c);
    var badge = $('cluster-badge');
    var n = Number(c.live_instances) || 1;
    badge.hidden = false;
    badge.dataset.state = String(c.state);
    if (c.state === 'degraded') badge.textContent = 'cluster unreachable';
    else if (c.state === 'backfilling') badge.textContent = 'cluster · loading history';
    else badge.textContent = 'cluster · ' + n + (n === 1 ? ' instance' : ' instances');
    $('cluster-banner').hidden = c.state !== 'degraded';
  }

  // The instance selector, from /realtime/config's list (refreshed while the page is open).
  function renderInstances(cluster, self) {
    if (!cluster || !Array.isArray(cluster.instances)) return;
    $('instance-field').hidden = false;
    var sel = $('instance-filter');
    var have = {};
    Array.prototype.forEach.call(sel.options, function (o) { have[o.value] = true; });
    cluster.instances.forEach(function (id) {
      id = String(id);
      if (have[id]) return;
      var o = document.createElement('option');
      o.value = id;
      o.textContent = id + (id === self ? ' (this instance)' : '');
      sel.appendChild(o);
      have[id] = true;
    });
    renderCluster(self, { state: cluster.state, live_instances: cluster.live_instances });
  }

  function refreshInstances() {
    fetch('realtime/config', { cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (res) { return res.ok ? res.json() : null; })
      .catch(function () { return null; })
      .then(function (cfg) { if (cfg) renderInstances(cfg.cluster, cfg.instance); });
  }

  function updateCsv() {
    var a = $('csv');
    a.href = csvUrl();
    var name = 'events-' + state.range + 's' + (state.resource ? '-' + state.resource : '') + (state.user ? '-' + state.user : '');
    a.setAttribute('download', name.replace(/[^A-Za-z0-9._-]+/g, '_') + '.csv');
  }

  function applyFilters() {
    var res = $('resource-filter').value;
    var user = $('user-filter').value.trim();
    var instance = $('instance-filter').value;
    if (res === state.resource && user === state.user && instance === state.instance) return;
    state.resource = res;
    state.user = user;
    state.instance = instance;
    state.rates = null;
    state.resources = [];
    state.utilDirty = true;
    clearEvents();
    updateCsv();
    loadHistory();
    loadAnswers();
    reconnectNow();
  }

  function bindControls() {
    $('range').addEventListener('change', function (ev) {
      var v = parseInt(ev.target.value, 10);
      if (!v || v === state.range) return;
      state.range = v;
      updateCsv();
      loadHistory();
      loadAnswers();
    });
    $('resource-filter').addEventListener('change', applyFilters);
    $('instance-filter').addEventListener('change', applyFilters);
    var userInput = $('user-filter');
    var debounce = null;
    userInput.addEventListener('change', applyFilters);
    userInput.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') applyFilters(); });
    userInput.addEventListener('input', function () {
      clearTimeout(debounce);
      // clearing the field (or picking from the list) applies quickly; typing waits a little
      debounce = setTimeout(applyFilters, userInput.value === '' ? 50 : 600);
    });
    $('pause').addEventListener('click', function () {
      state.paused = !state.paused;
      var btn = $('pause');
      btn.setAttribute('aria-pressed', String(state.paused));
      btn.textContent = state.paused ? 'Resume charts' : 'Pause charts';
      if (!state.paused) scheduleRender();
    });
    $('retry').addEventListener('click', reconnectNow);
    if (window.matchMedia) {
      var mq = window.matchMedia('(prefers-color-scheme: dark)');
      var onScheme = function () { restyleCharts(); };
      if (mq.addEventListener) mq.addEventListener('change', onScheme);
    }
    document.addEventListener('visibilitychange', function () {
      if (!document.hidden && (state.seriesDirty || state.utilDirty)) scheduleRender();
    });
    window.addEventListener('beforeunload', closeStream);
  }

  function applyConfig(cfg) {
    var l = {};
    var src = (cfg && cfg.labels) || {};
    Object.keys(DEFAULT_LABELS).forEach(function (k) {
      l[k] = typeof src[k] === 'string' && src[k] !== '' ? src[k] : DEFAULT_LABELS[k];
    });
    state.labels = l;
    document.title = l.title + ' · Realtime';
    $('title').textContent = l.title;
    $('subtitle-resources').textContent = l.resources;
    $('resource-filter-label').textContent = l.resource;
    $('resource-all').textContent = 'All ' + lower(l.resources);
    $('user-filter-label').textContent = l.user;
    $('user-filter').placeholder = 'All ' + lower(l.user) + 's';
    $('th-resource').textContent = l.resource;
    $('th-user').textContent = l.user;
    $('util-title').textContent = 'Utilization by ' + lower(l.resource);

    if (cfg && cfg.retention_seconds) state.retention = cfg.retention_seconds;
    var ranges = (cfg && Array.isArray(cfg.ranges) && cfg.ranges.length ? cfg.ranges : DEFAULT_RANGES)
      .filter(function (r) { return r > 0 && r <= state.retention; });
    if (!ranges.length) ranges = [Math.min(1800, state.retention)];
    state.ranges = ranges;
    var def = cfg && cfg.default_range;
    state.range = ranges.indexOf(def) >= 0 ? def : (ranges.indexOf(1800) >= 0 ? 1800 : ranges[Math.floor(ranges.length / 2)]);
    var sel = $('range');
    while (sel.firstChild) sel.removeChild(sel.firstChild);
    ranges.forEach(function (r) {
      var o = document.createElement('option');
      o.value = String(r);
      o.textContent = fmtRange(r);
      if (r === state.range) o.selected = true;
      sel.appendChild(o);
    });
    ((cfg && cfg.resources) || []).forEach(noteResource);
    if (cfg && cfg.instance) $('instance-id').textContent = String(cfg.instance);
    if (cfg && cfg.cluster) {
      renderInstances(cfg.cluster, cfg.instance);
      if (!state.instancePoll) state.instancePoll = setInterval(refreshInstances, 10000);
    }
    $('footer-info').textContent = 'realtime-layer · ' + fmtRange(state.retention) + ' retention';
    updateCsv();
  }

  function init() {
    try { createCharts(); } catch (err) { showChartMsg('Charts unavailable: ' + err.message); }
    bindControls();
    applyConfig(null);
    fetch('realtime/config', { cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
      .catch(function () { return null; })
      .then(function (cfg) {
        applyConfig(cfg);
        loadHistory();
        loadAnswers();
        connect();
      });
  }

  init();
})();
