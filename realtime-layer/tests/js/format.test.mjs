// Units and number formatting (static/js/format.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  durationAxis, ellipsize, fmtAxisDuration, fmtCount, fmtDuration, fmtInt, fmtLatency, fmtMoney,
  fmtPercent, fmtRange, fmtRate, setLocale, trimNum,
} from '../../../static/js/format.js';

setLocale('en-US');

test('durations take the unit their magnitude calls for', () => {
  assert.equal(fmtDuration(0), '0 s');
  assert.equal(fmtDuration(0.00005), '50 µs');
  assert.equal(fmtDuration(0.0004), '400 µs');
  assert.equal(fmtDuration(0.0000012), '1.2 µs');
  assert.equal(fmtDuration(0.0015), '1.5 ms');
  assert.equal(fmtDuration(0.25), '250 ms');
  assert.equal(fmtDuration(1), '1 s');
  assert.equal(fmtDuration(1.25), '1.3 s');
  assert.equal(fmtDuration(42), '42 s');
  assert.equal(fmtDuration(150), '2.5 min');
  assert.equal(fmtDuration(1800), '30 min');
  assert.equal(fmtDuration(4680), '1.3 h');
  assert.equal(fmtDuration(21600), '6 h');
  assert.equal(fmtDuration(null), '–');
  assert.equal(fmtDuration(NaN), '–');
});

test('rounding that reaches the next unit moves up to it', () => {
  assert.equal(fmtDuration(0.9996), '1 s');
  assert.equal(fmtDuration(0.0009999), '1 ms');
  assert.equal(fmtDuration(59.7), '1 min');
  assert.equal(fmtDuration(3599), '1 h');
});

test('an axis picks one unit and its ticks carry it', () => {
  assert.deepEqual(durationAxis(0.0004), { unit: 'µs', factor: 1e-6 });
  assert.deepEqual(durationAxis(0.5), { unit: 'ms', factor: 1e-3 });
  assert.deepEqual(durationAxis(30), { unit: 's', factor: 1 });
  assert.deepEqual(durationAxis(96), { unit: 'min', factor: 60 });
  assert.deepEqual(durationAxis(7200), { unit: 'h', factor: 3600 });
  assert.deepEqual(durationAxis(0), { unit: 's', factor: 1 }, 'an empty axis counts in seconds');
  assert.equal(fmtAxisDuration(0, 'µs'), '0 µs');
  assert.equal(fmtAxisDuration(50, 'µs'), '50 µs');
  assert.equal(fmtAxisDuration(0.25, 'min'), '0.25 min');
  assert.equal(fmtAxisDuration(1.5, 'min'), '1.5 min');
  assert.equal(fmtAxisDuration(12.5, 's'), '12.5 s');
  assert.equal(fmtAxisDuration(400, 'ms'), '400 ms');
});

test('ranges, counts, rates and percentages', () => {
  assert.equal(fmtRange(45), '45 s');
  assert.equal(fmtRange(60), '1 min');
  assert.equal(fmtRange(1800), '30 min');
  assert.equal(fmtRange(3600), '1 h');
  assert.equal(fmtRange(5400), '1.5 h');
  assert.equal(fmtRange(86400), '24 h');
  assert.equal(fmtRange(604800), '7 d');
  assert.equal(fmtRange(2592000), '30 d');
  assert.equal(fmtRange(129600), '36 h');
  assert.equal(fmtInt(1234567), '1,234,567');
  assert.equal(fmtInt(null), '–');
  assert.equal(fmtCount(0), '0');
  assert.equal(fmtCount(2.5), '2.5');
  assert.equal(fmtCount(950), '950');
  assert.equal(fmtCount(1200), '1.2k');
  assert.equal(fmtCount(12000), '12k');
  assert.equal(fmtCount(3400000), '3.4M');
  assert.equal(fmtRate(12.34), '12.3');
  assert.equal(fmtRate(1234.5), '1,235');
  assert.equal(fmtRate(undefined), '–');
  assert.equal(fmtPercent(12.345), '12.3 %');
  assert.equal(trimNum(2.5, 2), '2.5');
  assert.equal(trimNum(3, 1), '3');
});

test('money: cents for small amounts, whole or compact units for large ones', () => {
  assert.equal(fmtMoney(975, 'EUR'), '€975.00');
  assert.equal(fmtMoney(82500, 'EUR'), '€82,500.00');
  assert.equal(fmtMoney(82500, 'EUR', true), '€82,500');
  assert.equal(fmtMoney(0.75, 'USD', true), '$0.75');
  assert.equal(fmtMoney(2500000, 'USD', true), '$2.5M');
  assert.equal(fmtMoney(12, 'NOT-A-CODE'), '12.00 NOT-A-CODE');
  assert.equal(fmtMoney(null, 'EUR'), '–');
});

test('latency buckets and long labels', () => {
  assert.equal(fmtLatency(0.005), '≤ 5 ms');
  assert.equal(fmtLatency(0.0025), '≤ 2.5 ms');
  assert.equal(fmtLatency(2.5), '≤ 2.5 s');
  assert.equal(fmtLatency(null), '> 10 s');
  assert.equal(ellipsize('short', 10), 'short');
  assert.equal(ellipsize('a rather long tool name', 10), 'a rather …');
});
