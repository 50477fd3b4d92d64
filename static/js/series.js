// The time series behind the borrows / overage / failures charts: history buckets from
// `realtime/history`, live `point`s folded in, and the alert annotations derived from them.
// Pure: no DOM (unit tests: realtime-layer/tests/js).

export const WARN_PCT = 15;
export const CRIT_PCT = 30;
const MAX_ALERTS = 60;

// Per bucket: sums and busiest seconds of borrows (b), overage borrows (o), returns (r),
// failures (f), and the peak borrowed level (pMax).
const ARRAYS = ['bSum', 'bMax', 'oSum', 'oMax', 'rSum', 'rMax', 'fSum', 'fMax', 'pMax'];

export function emptySeries(bucket, t) {
  const s = { bucket, t: t || [], origin: t && t.length ? t[0] : 0, maxPeriod: 1 };
  for (const k of ARRAYS) s[k] = [];
  return s;
}

function num(a, i) { return a && a[i] != null ? +a[i] : 0; }

/** A `realtime/history` answer as a series; `zero` keeps the buckets but not the counts. */
export function seriesFromHistory(h, zero) {
  const s = emptySeries(h.bucket_seconds || 1, (h.t || []).slice());
  const z = zero ? 0 : 1;
  const src = {
    bSum: h.borrows && h.borrows.sum, bMax: h.borrows && h.borrows.max,
    oSum: h.overage_borrows && h.overage_borrows.sum, oMax: h.overage_borrows && h.overage_borrows.max,
    rSum: h.returns && h.returns.sum, rMax: h.returns && h.returns.max,
    fSum: h.failures && h.failures.sum, fMax: h.failures && h.failures.max,
    pMax: h.peak_borrowed && h.peak_borrowed.max,
  };
  for (let i = 0; i < s.t.length; i++) {
    for (const k of ARRAYS) s[k].push(z * num(src[k], i));
  }
  s.origin = s.t.length ? s.t[0] : (h.start || 0);
  // What `max` is the largest of: a second (live buffer), a minute or an hour (usage tier).
  s.maxPeriod = h.max_period_seconds || 1;
  return s;
}

/** Without history: an empty, zero-filled window of ~360 buckets ending now. */
export function syntheticSeries(range, nowMs) {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  const bucket = steps.find((b) => range / b <= 360) || steps[steps.length - 1];
  const now = Math.floor(nowMs / 1000);
  const end = now - (now % bucket);
  const n = Math.max(1, Math.floor(range / bucket));
  const t = [];
  for (let k = n - 1; k >= 0; k--) t.push(end - k * bucket);
  return seriesFromHistory({ bucket_seconds: bucket, t, start: t[0], end: now }, true);
}

function pushBucket(s, t) {
  s.t.push(t);
  for (const k of ARRAYS) s[k].push(0);
}

function shiftBucket(s) {
  s.t.shift();
  for (const k of ARRAYS) s[k].shift();
}

function mod(a, b) { return ((a % b) + b) % b; }

/**
 * Folds one per-second `point` into `s` (in place): into the current bucket when buckets are
 * longer than a second (sums add, busiest seconds take the max), opening new buckets as time
 * moves on and dropping the oldest beyond `range`. Returns false for a point not newer than
 * `lastT` (the caller keeps `lastT`, the newest second already counted).
 */
export function addPoint(s, p, range, lastT) {
  if (!s || !p || p.t == null || p.t <= lastT) return false;
  const b = s.bucket;
  const bt = p.t - mod(p.t - s.origin, b);
  const n = s.t.length;
  const last = n ? s.t[n - 1] : null;
  if (last === null || bt > last) {
    let next = last === null ? bt : last + b;
    const maxBuckets = Math.max(1, Math.floor(range / b));
    if ((bt - next) / b > maxBuckets) next = bt - (maxBuckets - 1) * b;
    for (; next <= bt; next += b) pushBucket(s, next);
    while (s.t.length > maxBuckets) shiftBucket(s);
  }
  const idx = Math.round((bt - s.t[0]) / b);
  if (idx >= 0 && idx < s.t.length) {
    const add = (sum, max, v) => {
      v = +v || 0;
      s[sum][idx] += v;
      s[max][idx] = Math.max(s[max][idx], v);
    };
    add('bSum', 'bMax', p.borrows);
    add('oSum', 'oMax', p.overage_borrows);
    add('rSum', 'rMax', p.returns);
    add('fSum', 'fMax', p.failures);
    s.pMax[idx] = Math.max(s.pMax[idx], +p.peak_borrowed || 0);
  }
  return true;
}

/**
 * The rolling (~60 s) overage share per bucket, and alert annotations: the overage rate crossing
 * 15 % / 30 % upwards (with hysteresis), and failure spikes (a bucket well above the recent mean).
 */
export function analyse(s) {
  const n = s.t.length, b = s.bucket;
  const w = Math.max(1, Math.round(60 / b));
  const pct = new Array(n);
  let alerts = [];
  let winB = 0, winO = 0, winF = 0, level = 0, last = 0, prevSpike = false, lastSpike = -Infinity;
  for (let i = 0; i < n; i++) {
    // failure spike, judged against the window *before* this bucket
    const prevBuckets = Math.min(i, w);
    const base = prevBuckets ? winF / prevBuckets : 0;
    const spike = s.fSum[i] >= 5 && s.fSum[i] >= 3 * base + 3;
    if (spike && !prevSpike && i - lastSpike > w) {
      lastSpike = i;
      alerts.push({ t: s.t[i], level: 'spike', short: '✕' + s.fSum[i],
        text: 'Failure spike: ' + s.fSum[i] + ' failures (' + s.fMax[i] + ' in one second)' });
    }
    prevSpike = spike;

    winB += s.bSum[i]; winO += s.oSum[i]; winF += s.fSum[i];
    if (i >= w) { winB -= s.bSum[i - w]; winO -= s.oSum[i - w]; winF -= s.fSum[i - w]; }
    last = winB > 0 ? 100 * winO / winB : 0;
    pct[i] = Math.round(last * 10) / 10;
    if (winB === 0) { level = 0; continue; }
    if (winB < 4) continue; // too few borrows to judge
    let next = last > CRIT_PCT ? 2 : last > WARN_PCT ? 1 : 0;
    // hysteresis: only step down once clearly below the threshold
    if (next < level && last >= (level === 2 ? CRIT_PCT - 3 : WARN_PCT - 3)) next = level;
    if (next > level) {
      alerts.push({ t: s.t[i], level: next === 2 ? 'crit' : 'warn', short: Math.round(last) + '%',
        text: 'Overage rate crossed ' + (next === 2 ? CRIT_PCT : WARN_PCT) + ' % (' + last.toFixed(1) + ' %)' });
    }
    level = next;
  }
  if (alerts.length > MAX_ALERTS) alerts = alerts.slice(alerts.length - MAX_ALERTS);
  return { pct, alerts };
}

/** A frozen copy of `s` with its analysis, for the charts and their tooltips. */
export function renderedSeries(s) {
  const a = analyse(s);
  const r = { bucket: s.bucket, t: s.t.slice(), alerts: a.alerts, pct: a.pct, maxPeriod: s.maxPeriod || 1 };
  for (const k of ARRAYS) r[k] = s[k].slice();
  return r;
}
