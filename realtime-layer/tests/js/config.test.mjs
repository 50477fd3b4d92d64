// realtime/config answers and their defaults (static/js/config.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LABELS, DEFAULT_RANGES, normalizeConfig } from '../../../static/js/config.js';

test('without an answer: default labels and ranges, 30 min', () => {
  const c = normalizeConfig(null);
  assert.deepEqual(c.labels, DEFAULT_LABELS);
  assert.deepEqual(c.ranges, DEFAULT_RANGES);
  assert.equal(c.defaultRange, 1800);
  assert.equal(c.retention, 21600);
});

test('labels fall back one by one; ranges stay within retention', () => {
  const c = normalizeConfig({
    labels: { title: 'License Server', resource: 'Tool', resources: '', user: 42 },
    retention_seconds: 3600, ranges: [60, 300, 3600, 21600], default_range: 21600,
    resources: ['GPU'], instance: 'web-1', cluster: { instances: ['web-1'] },
  });
  assert.deepEqual(c.labels, { title: 'License Server', resource: 'Tool', resources: 'Resources', user: 'User' });
  assert.deepEqual(c.ranges, [60, 300, 3600]);
  assert.equal(c.defaultRange, 300, 'the middle range when neither the given default nor 30 min is offered');
  assert.deepEqual(c.resources, ['GPU']);
  assert.equal(c.instance, 'web-1');
  assert.deepEqual(normalizeConfig({ retention_seconds: 30, ranges: [60] }).ranges, [30]);
});

test('the usage tier: report windows and the default (the longest), or null', async () => {
  const { normalizeUsage } = await import('../../../static/js/config.js');
  const u = normalizeConfig({ retention_seconds: 2592000, usage: {
    report_windows: [86400, 604800, 2592000], billing_period_seconds: 2592000 } }).usage;
  assert.deepEqual(u, { windows: [86400, 604800, 2592000], defaultWindow: 2592000, billingPeriod: 2592000 });
  assert.equal(normalizeConfig({}).usage, null);
  assert.equal(normalizeUsage({ report_windows: [] }), null);
  assert.deepEqual(normalizeConfig({ retention_seconds: 2592000, ranges: [3600, 86400, 604800, 2592000] }).ranges,
    [3600, 86400, 604800, 2592000]);
});
