// The chart series: history buckets, live points folded in, alerts (static/js/series.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addPoint, analyse, seriesFromHistory, syntheticSeries } from '../../../static/js/series.js';

const HISTORY = {
  window_seconds: 30, bucket_seconds: 10, start: 1000, end: 1025, t: [1000, 1010, 1020],
  borrows: { sum: [3, 0, 1], max: [2, 0, 1] }, overage_borrows: { sum: [1, 0, 0], max: [1, 0, 0] },
  returns: { sum: [2, 1, 0], max: [1, 1, 0] }, failures: { sum: [0, 0, 0], max: [0, 0, 0] },
  peak_borrowed: { max: [17, 16, 16] },
};

test('history becomes buckets; zero keeps the buckets only', () => {
  const s = seriesFromHistory(HISTORY);
  assert.deepEqual(s.t, [1000, 1010, 1020]);
  assert.deepEqual(s.bSum, [3, 0, 1]);
  assert.deepEqual(s.pMax, [17, 16, 16]);
  assert.equal(s.bucket, 10);
  assert.deepEqual(seriesFromHistory(HISTORY, true).bSum, [0, 0, 0]);
});

test('points add into the open bucket, open new ones and drop the oldest', () => {
  const s = seriesFromHistory(HISTORY);
  assert.equal(addPoint(s, { t: 1024, borrows: 2, peak_borrowed: 18 }, 30, 1024), false, 'not newer than lastT');
  assert.equal(addPoint(s, { t: 1025, borrows: 2, failures: 1, peak_borrowed: 18 }, 30, 1024), true);
  assert.deepEqual(s.bSum, [3, 0, 3]);
  assert.deepEqual(s.bMax, [2, 0, 2]);
  assert.deepEqual(s.pMax, [17, 16, 18]);
  addPoint(s, { t: 1031, borrows: 5 }, 30, 1025);
  assert.deepEqual(s.t, [1010, 1020, 1030], 'the window keeps its length');
  assert.deepEqual(s.bSum, [0, 3, 5]);
  // a long gap restarts the window instead of filling thousands of buckets
  addPoint(s, { t: 99999, borrows: 1 }, 30, 1031);
  assert.deepEqual(s.t, [99970, 99980, 99990]);
});

test('a synthetic window ends now with about 360 buckets', () => {
  const s = syntheticSeries(1800, 1_000_003_000);
  assert.equal(s.bucket, 5);
  assert.equal(s.t.length, 360);
  assert.equal(s.t[359], 1_000_000);
  assert.ok(s.bSum.every((v) => v === 0));
});

test('overage crossings and failure spikes become alerts', () => {
  const n = 20;
  const s = seriesFromHistory({ bucket_seconds: 60, t: Array.from({ length: n }, (_, i) => i * 60) }, true);
  for (let i = 0; i < n; i++) s.bSum[i] = 10;
  for (let i = 5; i < 10; i++) s.oSum[i] = 2; // 20 %: warn
  for (let i = 10; i < 15; i++) s.oSum[i] = 4; // 40 %: crit
  s.fSum[17] = 9;
  s.fMax[17] = 4;
  const { pct, alerts } = analyse(s);
  assert.equal(pct[5], 20);
  assert.deepEqual(alerts.map((a) => [a.t, a.level]), [[300, 'warn'], [600, 'crit'], [1020, 'spike']]);
  assert.equal(alerts[2].text, 'Failure spike: 9 failures (4 in one second)');
});
