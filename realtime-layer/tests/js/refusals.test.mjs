// The refusal card's rate (static/js/refusals.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { perMinute } from '../../../static/js/refusals.js';

test('refusals per minute need an earlier poll and never go negative', () => {
  assert.equal(perMinute(null, 10, 5000), null);
  assert.equal(perMinute(0, 10, 0), null);
  assert.equal(perMinute(4, 14, 5000), 120);
  // A restarted server (counts since start) reads as no refusals, not a negative rate.
  assert.equal(perMinute(50, 3, 5000), 0);
});
